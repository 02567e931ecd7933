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
