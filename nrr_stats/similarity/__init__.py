"""Similarity: feature rows for experiments, an exact chunked top-k cosine kernel, the
feature store beside the bank, and repeat detection for `nrr check`."""

from nrr_stats.similarity.features import FEATURE_DIM, FeatureSpace
from nrr_stats.similarity.kernel import top_k
from nrr_stats.similarity.repeats import NEAR_REPEAT_SIMILARITY, find_repeats
from nrr_stats.similarity.search import similar_experiments, similar_failures_in_bank
from nrr_stats.similarity.store import (
    FeatureStore,
    Snapshot,
    SyncSummary,
    bank_features,
    sync_bank_features,
)

__all__ = [
    "FEATURE_DIM",
    "NEAR_REPEAT_SIMILARITY",
    "FeatureSpace",
    "FeatureStore",
    "Snapshot",
    "SyncSummary",
    "bank_features",
    "find_repeats",
    "similar_experiments",
    "similar_failures_in_bank",
    "sync_bank_features",
    "top_k",
]
