"""top_k equals brute force: exact indices and scores, ties to the lower index, masks, chunks."""

from __future__ import annotations

import tracemalloc
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.similarity import kernel, top_k


def brute_force(matrix, query, k, mask=None):
    """Full score vector, sorted by score descending then index ascending."""
    scores = matrix @ query
    index = np.arange(matrix.shape[0])
    if mask is not None:
        index, scores = index[mask], scores[mask]
    order = np.lexsort((index, -scores))[:k]
    return index[order], scores[order]


@st.composite
def integer_problems(draw):
    """Small integer entries: dot products are exact in float32, so ties are real ties."""
    n = draw(st.integers(0, 80))
    d = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    matrix = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    queries = rng.integers(-2, 3, size=(draw(st.integers(1, 4)), d)).astype(np.float32)
    mask = None
    if draw(st.booleans()):
        mask = rng.random(n) < draw(st.floats(0.0, 1.0))
    k = draw(st.integers(0, 15))
    chunk_rows = draw(st.integers(1, 90))
    select_columns = draw(st.integers(1, 90))  # the ranking slices inside a chunk
    return matrix, queries, k, mask, chunk_rows, select_columns


@settings(max_examples=300, deadline=None)
@given(integer_problems())
def test_batch_equals_brute_force_with_ties_masks_and_chunks(problem):
    matrix, queries, k, mask, chunk_rows, select_columns = problem
    with mock.patch.object(kernel, "SELECT_COLUMNS", select_columns):
        indices, scores = top_k(matrix, queries, k, mask=mask, chunk_rows=chunk_rows)
    available = matrix.shape[0] if mask is None else int(mask.sum())
    assert indices.shape == scores.shape == (queries.shape[0], min(k, available))
    for row, query in enumerate(queries):
        expected_index, expected_scores = brute_force(matrix, query, k, mask)
        np.testing.assert_array_equal(indices[row], expected_index)
        np.testing.assert_array_equal(scores[row], expected_scores)


@settings(max_examples=200, deadline=None)
@given(integer_problems())
def test_single_query_equals_brute_force(problem):
    matrix, queries, k, mask, chunk_rows, select_columns = problem
    with mock.patch.object(kernel, "SELECT_COLUMNS", select_columns):
        indices, scores = top_k(matrix, queries[0], k, mask=mask, chunk_rows=chunk_rows)
    expected_index, expected_scores = brute_force(matrix, queries[0], k, mask)
    assert indices.ndim == 1
    np.testing.assert_array_equal(indices, expected_index)
    np.testing.assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize("masked", [False, True])
def test_ranking_slices_follow_a_rising_threshold_exactly(masked):
    """Many slices, so later ones rank only the few columns that beat the running k-th best."""
    rng = np.random.default_rng(5)
    matrix = rng.integers(-4, 5, size=(20_000, 6)).astype(np.float32)
    mask = rng.random(20_000) < 0.7 if masked else None
    with (
        mock.patch.object(kernel, "SELECT_COLUMNS", 700),
        mock.patch.object(kernel, "FIRST_SELECT_COLUMNS", 30),
    ):
        for query in matrix[:20]:
            for k in (1, 4, 40):
                got = top_k(matrix, query, k, mask=mask)
                expected = brute_force(matrix, query, k, mask)
                np.testing.assert_array_equal(got[0], expected[0])
                np.testing.assert_array_equal(got[1], expected[1])


def _unit_rows(rng, n, d):
    rows = rng.standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(2, 64),
    st.integers(1, 40),
    st.integers(1, 1000),
    st.integers(0, 2**32 - 1),
)
def test_normalised_floats_match_brute_force_and_are_cosines(n, d, k, chunk_rows, seed):
    rng = np.random.default_rng(seed)
    matrix = _unit_rows(rng, n, d)
    queries = _unit_rows(rng, 3, d)
    indices, scores = top_k(matrix, queries, k, chunk_rows=chunk_rows)
    assert np.all(scores <= 1.0 + 1e-5) and np.all(scores >= -1.0 - 1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    for row, query in enumerate(queries):
        expected_index, expected_scores = brute_force(matrix, query, k)
        np.testing.assert_allclose(scores[row], expected_scores, atol=1e-6)
        # Rounding may reorder near-equal scores; the scores at returned rows must agree.
        np.testing.assert_allclose(matrix[indices[row]] @ query, scores[row], atol=1e-6)
        assert len(set(indices[row].tolist())) == indices.shape[1]


def test_a_row_is_its_own_nearest_neighbour():
    rng = np.random.default_rng(7)
    matrix = _unit_rows(rng, 500, 32)
    indices, scores = top_k(matrix, matrix, 1, chunk_rows=64)
    np.testing.assert_array_equal(indices[:, 0], np.arange(500))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_memmap_matrix_gives_same_answer(tmp_path):
    rng = np.random.default_rng(3)
    matrix = rng.integers(-3, 4, size=(1000, 8)).astype(np.float32)
    path = tmp_path / "m.npy"
    np.save(path, matrix)
    mapped = np.load(path, mmap_mode="r")
    query = matrix[10]
    mask = rng.random(1000) < 0.1
    for m in (None, mask):
        got = top_k(mapped, query, 25, mask=m, chunk_rows=97)
        expected = brute_force(matrix, query, 25, m)
        np.testing.assert_array_equal(got[0], expected[0])
        assert type(got[1]) is np.ndarray


@pytest.mark.parametrize("selected", [0.05, 0.6])
def test_mask_does_not_copy_the_matrix(selected):
    """Peak allocation stays near one chunk, far below the matrix, for sparse and dense masks."""
    rng = np.random.default_rng(11)
    matrix = _unit_rows(rng, 200_000, 32)  # 25.6 MB
    mask = rng.random(matrix.shape[0]) < selected
    query = matrix[0]
    tracemalloc.start()
    try:
        indices, _ = top_k(matrix, query, 10, mask=mask, chunk_rows=8192)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000, peak
    assert mask[indices].all()
    np.testing.assert_array_equal(indices, brute_force(matrix, query, 10, mask)[0])


def test_k_beyond_available_rows_returns_fewer():
    matrix = np.eye(4, dtype=np.float32)
    indices, scores = top_k(
        matrix, np.ones(4, dtype=np.float32), 10, mask=np.array([1, 0, 1, 0], bool)
    )
    np.testing.assert_array_equal(indices, [0, 2])
    empty_index, empty_scores = top_k(np.zeros((0, 4), np.float32), np.ones(4, np.float32), 3)
    assert empty_index.shape == (0,) and empty_scores.shape == (0,)


@pytest.mark.parametrize(
    ("matrix", "queries", "k", "mask", "fault"),
    [
        (np.zeros(4, np.float32), np.zeros(4, np.float32), 1, None, "2-D"),
        (np.zeros((3, 4), np.float32), np.zeros(5, np.float32), 1, None, "do not match"),
        (np.zeros((3, 4), np.float32), np.zeros(4, np.float32), -1, None, "non-negative"),
        (np.zeros((3, 4), np.float32), np.zeros(4, np.float32), 1, np.ones(2, bool), "mask"),
        (np.full((3, 4), np.nan, np.float32), np.ones(4, np.float32), 2, None, "non-finite"),
    ],
)
def test_bad_arguments_raise_value_error(matrix, queries, k, mask, fault):
    with pytest.raises(ValueError, match=fault):
        top_k(matrix, queries, k, mask=mask)


def brute_force_row_scores(matrix, query, k, mask=None):
    """brute_force on the kernel's own scores of the whole matrix (one row_scores call)."""
    scores = kernel.row_scores(matrix, query)
    index = np.arange(matrix.shape[0])
    if mask is not None:
        index, scores = index[mask], scores[mask]
    order = np.lexsort((index, -scores))[:k]
    return index[order], scores[order]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 3000),
    st.sampled_from([8, 33, 128]),
    st.integers(1, 60),
    st.integers(1, 1200),
    st.floats(0.0, 1.0),
    st.integers(0, 2**32 - 1),
)
def test_float_rows_rank_exactly_as_brute_force_over_row_scores(
    n, d, k, chunk_rows, selected, seed
):
    """With float rows (rounding, near ties) the chunked, masked and gathered scan returns
    exactly the indices and scores of ranking the whole matrix's row_scores: a row's score
    does not depend on the chunk or gather it was read in."""
    rng = np.random.default_rng(seed)
    matrix = _unit_rows(rng, n, d)
    matrix[rng.integers(0, n, n // 10)] = matrix[0]  # exact duplicates: real ties
    query = _unit_rows(rng, 1, d)[0]
    for mask in (None, rng.random(n) < selected):
        indices, scores = top_k(matrix, query, k, mask=mask, chunk_rows=chunk_rows)
        expected_index, expected_scores = brute_force_row_scores(matrix, query, k, mask)
        np.testing.assert_array_equal(indices, expected_index)
        np.testing.assert_array_equal(scores, expected_scores)
        batch_index, batch_scores = top_k(
            matrix, np.stack([query, query]), k, mask=mask, chunk_rows=chunk_rows
        )
        np.testing.assert_array_equal(batch_index[1], expected_index)
        np.testing.assert_array_equal(batch_scores[1], expected_scores)


def test_row_scores_of_any_slice_or_gather_equal_the_whole_matrix_bit_for_bit(tmp_path):
    """The property the exact scan rests on, and the one similarity every caller reads (the
    bank-wide top-k and the session rows' scores of search.py): offsets, gathers, a memmap and
    a misaligned copy all give each row the same float32 score; it is the dot product."""
    rng = np.random.default_rng(21)
    matrix = _unit_rows(rng, 5000, 128)
    query = matrix[17] * 0.5 + matrix[4000] * 0.5
    whole = kernel.row_scores(matrix, query)
    assert whole.dtype == np.float32
    np.testing.assert_allclose(whole, matrix.astype(np.float64) @ query, atol=1e-6)
    for start in (1, 7, 63, 4095):
        np.testing.assert_array_equal(kernel.row_scores(matrix[start:], query), whole[start:])
    picked = np.sort(rng.choice(5000, 700, replace=False))
    np.testing.assert_array_equal(kernel.row_scores(matrix[picked], query), whole[picked])
    raw = np.empty(matrix[:900].nbytes + 4, np.uint8)[4:].view(np.float32).reshape(900, 128)
    raw[:] = matrix[:900]
    np.testing.assert_array_equal(kernel.row_scores(raw, query), whole[:900])
    np.save(tmp_path / "m.npy", matrix)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    np.testing.assert_array_equal(kernel.row_scores(mapped[100:2100], query), whole[100:2100])
