"""Exact top-k by dot product over a row matrix, chunked so memory stays bounded.

With L2-normalised rows (FeatureSpace output) the dot product is the cosine similarity.
One pass over the matrix: the scores of a chunk, then a threshold test against the running
k-th best score, so most chunks never reach `argpartition`. Scores are summed by numpy's own
loop (`row_scores`), not BLAS: one pass is memory-bound either way, and a multi-threaded BLAS
leaves its helper threads spinning after every call (2-4x the check's CPU time at 100k rows).
"""

from __future__ import annotations

import numpy as np

# Rows per chunk by default: one query's score buffer stays at 4 MB.
DEFAULT_CHUNK_ROWS = 1 << 20
# Scores are ranked in slices of this many columns (256 KB of one query's scores); a small
# first slice sets the running k-th best cheaply, then most later columns fail against it.
SELECT_COLUMNS = 1 << 16
FIRST_SELECT_COLUMNS = 1 << 12
# Score buffer bound: a chunk of a batch holds at most this many float scores (64 MB float32).
MAX_CHUNK_SCORES = 1 << 24
# Gathered (copied) rows per chunk for sparse masks: 32 MB of 128-dim float32.
GATHER_CHUNK_ROWS = 1 << 16
# Below this fraction of selected rows, a mask gathers the selected rows (a bounded copy of
# those rows only); above it, whole chunks are scored and the masked-out scores set to -inf.
GATHER_BELOW = 0.25
_NO_INDEX = np.iinfo(np.int64).max


def top_k(
    matrix: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    mask: np.ndarray | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `matrix` with the highest dot product with each query, best first.

    Returns (indices, scores): shape (k,) for a 1-D query, (q, k) for a (q, d) batch, fewer
    columns when fewer than k rows are available. Exact; equal scores rank lower index first.
    `mask` (bool, one per row) keeps only the rows where it is True, without copying the matrix.
    `chunk_rows` rows are scored per step: 4 bytes x rows x queries, capped at 64 MB.
    """
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be 2-D, got shape {matrix.shape}")
    queries = np.asarray(queries)
    single = queries.ndim == 1
    batch = np.ascontiguousarray(
        np.atleast_2d(queries), dtype=np.result_type(matrix.dtype, np.float32)
    )
    if batch.ndim != 2 or batch.shape[1] != matrix.shape[1]:
        raise ValueError(
            f"queries of shape {queries.shape} do not match matrix of width {matrix.shape[1]}"
        )
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    n_rows, n_queries = matrix.shape[0], batch.shape[0]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n_rows,):
            raise ValueError(f"mask must have shape ({n_rows},), got {mask.shape}")
    n_available = n_rows if mask is None else int(np.count_nonzero(mask))
    n_out = min(k, n_available)

    best_scores = np.full((n_queries, max(n_out, 1)), -np.inf, dtype=batch.dtype)
    best_index = np.full((n_queries, max(n_out, 1)), _NO_INDEX, dtype=np.int64)
    if n_out > 0:
        step = max(1, min(chunk_rows, MAX_CHUNK_SCORES // n_queries))
        for block, row_index, keep in _chunks(matrix, mask, n_available, step):
            scores = _score(block, batch)
            for start, stop in _slices(scores.shape[1]):
                best_index, best_scores = _merge_chunk(
                    best_index,
                    best_scores,
                    scores[:, start:stop],
                    row_index[start:stop]
                    if isinstance(row_index, np.ndarray)
                    else row_index + start,
                    None if keep is None else keep[start:stop],
                )

    indices, scores = best_index[:, :n_out], best_scores[:, :n_out]
    if n_out and (indices[:, -1] == _NO_INDEX).any():
        raise ValueError("matrix or queries hold non-finite values: scores cannot be ranked")
    return (indices[0], scores[0]) if single else (indices, scores)


def _chunks(matrix: np.ndarray, mask: np.ndarray | None, n_available: int, step: int):
    """Yield (rows, global index of each row or its offset, in-chunk keep mask or None)."""
    n_rows = matrix.shape[0]
    if mask is not None and n_available < GATHER_BELOW * n_rows:
        selected = np.flatnonzero(mask)
        step = min(step, GATHER_CHUNK_ROWS)
        for start in range(0, selected.size, step):
            picked = selected[start : start + step]
            yield matrix[picked], picked, None
        return
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        keep = None if mask is None else mask[start:stop]
        if keep is not None and not keep.any():
            continue
        yield matrix[start:stop], start, keep


def row_scores(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """The dot product of every row with one query: the similarity every caller reads.

    Summed by einsum's own single-threaded loop, so a row's score depends on that row and the
    query only (never on the chunk, gather or alignment it was read in), and no BLAS helper
    thread is woken: at 100k x 128 float32 this runs at the memory's speed in 2 ms of CPU, where
    OpenBLAS on two threads took 8 ms of CPU and its threads spun ~17 ms more after each call.
    """
    return np.einsum("ij,j->i", np.asarray(matrix), query)


def _score(block: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Scores (q, rows): `row_scores` per query, so a batch ranks exactly as its queries do."""
    block = np.asarray(block)  # a memmap slice scores as a plain array
    if batch.shape[0] == 1:
        return row_scores(block, batch[0])[None, :]
    return np.stack([row_scores(block, query) for query in batch])


def _slices(width: int):
    """(start, stop) of the ranking slices of a chunk's score columns."""
    first = min(FIRST_SELECT_COLUMNS, SELECT_COLUMNS, width)
    yield 0, first
    for start in range(first, width, SELECT_COLUMNS):
        yield start, min(start + SELECT_COLUMNS, width)


def _merge_chunk(best_index, best_scores, scores, row_index, keep):
    """Fold one chunk's scores into the running best (sorted by score desc, index asc).

    `keep` (or None) masks chunk rows out; masked scores are set to -inf only when the chunk
    reaches argpartition, so most chunks pay one comparison and no write.
    """
    n_queries, width = scores.shape
    k = best_scores.shape[1]
    # A chunk row ties with the current k-th best only at a higher index, so strict > suffices.
    beats = scores > best_scores[:, -1:]
    if keep is not None:
        beats &= keep
    counts = np.count_nonzero(beats, axis=1)
    most = int(counts.max())
    if most == 0:
        return best_index, best_scores
    if most <= k:
        rows, cols = np.nonzero(beats)
        slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        cand_cols = np.zeros((n_queries, k), dtype=np.int64)
        cand_scores = np.full((n_queries, k), -np.inf, dtype=scores.dtype)
        filled = np.zeros((n_queries, k), dtype=bool)
        cand_cols[rows, slot] = cols
        cand_scores[rows, slot] = scores[rows, cols]
        filled[rows, slot] = True
    elif n_queries == 1 and most * 8 <= width:  # few beat the k-th best: rank only those
        beating = np.flatnonzero(beats[0])
        cand_cols = beating[_top_columns(scores[:, beating], k)]
        cand_scores = np.take_along_axis(scores, cand_cols, axis=1)
        filled = np.ones(cand_cols.shape, dtype=bool)
    else:
        if keep is not None:
            scores[:, ~keep] = -np.inf
        cand_cols = _top_columns(scores, k)
        cand_scores = np.take_along_axis(scores, cand_cols, axis=1)
        filled = cand_scores > -np.inf
    if isinstance(row_index, np.ndarray):
        cand_index = row_index[cand_cols]
    else:
        cand_index = cand_cols + row_index
    cand_index = np.where(filled, cand_index, _NO_INDEX)
    all_index = np.concatenate([best_index, cand_index], axis=1)
    all_scores = np.concatenate([best_scores, cand_scores], axis=1)
    order = np.lexsort((all_index, -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_index, order, axis=1), np.take_along_axis(
        all_scores, order, axis=1
    )


def _top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k best scores per row; ties at the k-th score go to the lowest columns."""
    width = scores.shape[1]
    if width <= k:
        return np.broadcast_to(np.arange(width), scores.shape).copy()
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, cols, axis=1).min(axis=1)
    at_least = np.count_nonzero(scores >= kth[:, None], axis=1)
    # Ties among -inf (masked-out) scores do not matter: those candidates are dropped.
    for row in np.flatnonzero((at_least > k) & (kth > -np.inf)):
        above = np.flatnonzero(scores[row] > kth[row])
        tied = np.flatnonzero(scores[row] == kth[row])[: k - above.size]
        cols[row] = np.concatenate([above, tied])
    return cols
