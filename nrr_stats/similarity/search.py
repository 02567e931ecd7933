"""The past experiments most like a proposal: one feature row, one top-k pass."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nrr_stats.similarity.features import FeatureSpace
from nrr_stats.similarity.kernel import top_k


def similar_experiments(
    space: FeatureSpace,
    matrix: np.ndarray,
    query_description: str,
    query_fields: Mapping[str, str],
    k: int,
    mask: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """(row index, cosine similarity) of the k rows most like the proposal, best first.

    `matrix` must come from the same `space`; `mask` keeps only the rows where it is True.
    """
    query = space.transform([query_description], [query_fields])[0]
    indices, scores = top_k(matrix, query, k, mask=mask)
    return [(int(i), float(np.clip(s, -1.0, 1.0))) for i, s in zip(indices, scores, strict=True)]
