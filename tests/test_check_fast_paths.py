"""The check's shortcuts return what the plain computations return, bit for bit.

- FeatureSpace computes the idf of the n-grams a transform uses, not of all 2^20 ids: rows
  equal those built from the whole idf array.
- history_feature_rows hands back its last answer for the very same row objects, and computes
  anew for any other rows.
"""

from __future__ import annotations

import numpy as np

from nrr_stats.models import similarity_evidence as evidence
from nrr_stats.similarity.features import FINE_SIZE, FeatureSpace, idf_weights

TEXTS = [
    "Increase LR to 0.02",
    "replace relu with gelu in the MLP",
    "depth 8 -> 12, n_embd 512",
    "swap adam for lion (lr 3e-4)",
    "",
]
FIELDS = [
    {"category": "learning_rate", "direction": "increase", "parameter": "LEARNING_RATE"},
    {"category": "activation", "direction": "change", "to": "gelu"},
    {"category": "model_size", "direction": "increase", "from": "8", "to": "12"},
    {"category": "optimizer", "direction": "change"},
    {},
]


def test_transform_with_idf_of_used_ids_equals_the_whole_idf():
    rng = np.random.default_rng(5)
    df = rng.integers(0, 400, FINE_SIZE)
    lazy = FeatureSpace(df=df, n_docs=400)
    rows = lazy.transform(TEXTS, FIELDS)
    assert lazy._idf is None  # the full array was never built
    whole = FeatureSpace(df=df, n_docs=400)
    assert np.array_equal(whole.idf, idf_weights(df, 400))  # builds it: transform reads it
    assert np.array_equal(whole.transform(TEXTS, FIELDS).view(np.int32), rows.view(np.int32))
    ids = rng.integers(0, FINE_SIZE, 1000)
    assert np.array_equal(whole.idf_of(ids), lazy.idf_of(ids))


def _rows(descriptions):
    return [
        {
            "id": i,
            "description": text,
            "category": "learning_rate",
            "direction": "increase",
            "parameter": "LEARNING_RATE",
            "from_value": "0.01",
            "to_value": str(i),
        }
        for i, text in enumerate(descriptions)
    ]


def test_history_feature_rows_reuses_only_for_the_same_rows():
    rows = _rows(TEXTS)
    first = evidence.history_feature_rows(rows)
    want = evidence._history_feature_rows(rows)
    assert np.array_equal(first, want)
    assert evidence.history_feature_rows(list(rows)) is first  # same row objects, new list
    changed = [*rows[:-1], dict(rows[-1], description="halve the batch size")]
    again = evidence.history_feature_rows(changed)
    assert again is not first
    assert np.array_equal(again, evidence._history_feature_rows(changed))
    assert not np.array_equal(again[-1], first[-1])
    shorter = evidence.history_feature_rows(rows[:2])
    assert shorter.shape == (2, first.shape[1])
    assert np.array_equal(shorter, want[:2])
