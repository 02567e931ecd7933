"""The store beside a real SQLite bank, and the similar failures `nrr check` reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.bank import open_bank
from nrr_stats.bank.store import utc_now
from nrr_stats.bank.testing import synthetic_session
from nrr_stats.parser import ParsedChange
from nrr_stats.similarity import bank_features, similar_failures_in_bank, sync_bank_features

CONFIG = {"LEARNING_RATE": "0.01"}


def experiment(
    number, description, status, category, direction, parameter="", to="", config=CONFIG
):
    return {
        "ordinal": number - 1,
        "row_number": number,
        "line_number": number + 1,
        "experiment_id": f"e{number}",
        "metric": None if status == "crash" else 1.0,
        "status": status,
        "raw_status": status,
        "description": description,
        "category": category,
        "direction": direction,
        "parameter": parameter,
        "from_value": "",
        "to_value": to,
        "outcome": {"keep": "improvement", "discard": "regression", "crash": "crash_code"}[status],
        "delta": None if status == "crash" else -0.01,
        "config_before": json.dumps(config),
        "evidence_weight": 1.0,
        "fields_json": "{}",
        "ingested_at": utc_now(),
    }


SESSION_ROWS = [
    ("increase LR to 0.02", "discard", "learning_rate", "increase", "LEARNING_RATE", "0.02"),
    ("increase LR to 0.03", "keep", "learning_rate", "increase", "LEARNING_RATE", "0.03"),
    ("add dropout 0.1", "discard", "regularization", "add", "DROPOUT", "0.1"),
    ("switch optimizer to AdamW", "crash", "optimizer", "replace", "OPTIMIZER", "adamw"),
    ("use GELU activation", "discard", "activation", "replace", "ACTIVATION", "gelu"),
]


@pytest.fixture
def bank(tmp_path):
    opened = open_bank(tmp_path / "bank.db")
    with opened.transaction():
        session_id, _ = opened.upsert_session(synthetic_session("s1"))
        opened.insert_experiments(
            [
                experiment(i + 1, *fields) | {"session_id": session_id}
                for i, fields in enumerate(SESSION_ROWS)
            ]
        )
    yield opened
    opened.close()


def change(category, direction, parameter="", to=""):
    return ParsedChange(category, direction, parameter, "", to)


def test_store_follows_the_bank(bank):
    snapshot = bank_features(bank)
    assert snapshot.matrix.shape == (5, 128)
    assert bank.features_path.exists()
    with bank.transaction():
        session_id = bank.sessions()[0]["id"]
        bank.insert_experiments(
            [
                experiment(6, "depth 8 to 12", "discard", "model_depth", "increase")
                | {"session_id": session_id}
            ]
        )
    assert bank_features(bank).matrix.shape == (6, 128)  # a newer id in the bank triggers a sync
    assert sync_bank_features(bank).appended == 0


def test_similar_failures_are_failures_best_first(bank):
    history = bank.experiments(bank.sessions()[0]["id"])
    similar, exact, near = similar_failures_in_bank(
        bank,
        "increase LR to 0.02",
        change("learning_rate", "increase", "LEARNING_RATE", "0.02"),
        CONFIG,
        history,
        k=3,
    )
    ids_by_description = {row["description"]: row["id"] for row in history}
    assert similar[0]["id"] == ids_by_description["increase LR to 0.02"]
    assert similar[0]["repeat"] == "exact" and exact is True and near == 0
    assert all(row["outcome"] in ("regression", "crash_code") for row in similar)
    scores = [row["similarity"] for row in similar]
    assert scores == sorted(scores, reverse=True) and len(similar) == 3


def test_kept_configuration_change_turns_exact_into_near(bank):
    history = bank.experiments(bank.sessions()[0]["id"])
    now = {"LEARNING_RATE": "0.03"}
    _, exact, near = similar_failures_in_bank(
        bank,
        "increase LR to 0.02",
        change("learning_rate", "increase", "LEARNING_RATE", "0.02"),
        now,
        history,
    )
    assert exact is False and near == 1


def test_unwritable_store_falls_back_to_memory(bank, monkeypatch):
    from nrr_stats.similarity import store as module

    def refuse(self, rows, **options):
        raise PermissionError("read-only")

    monkeypatch.setattr(module.FeatureStore, "sync", refuse)
    snapshot = bank_features(bank)
    assert snapshot.matrix.shape == (5, 128)
    np.testing.assert_allclose(np.linalg.norm(snapshot.matrix, axis=1), 1.0, atol=1e-5)


def test_empty_bank_has_no_similar_failures(tmp_path):
    empty = open_bank(tmp_path / "empty.db")
    try:
        found = similar_failures_in_bank(
            empty, "add dropout", change("regularization", "add", "DROPOUT"), {}, [], k=5
        )
    finally:
        empty.close()
    assert found == ([], False, 0)


def test_rows_missing_from_the_store_still_get_a_verdict(bank):
    """History rows the store has not seen (a race with ingest) are judged without similarity."""
    history = bank.experiments(bank.sessions()[0]["id"])
    ghost = dict(history[0], id=999)
    _, exact, _ = similar_failures_in_bank(
        bank,
        "increase LR to 0.02",
        change("learning_rate", "increase", "LEARNING_RATE", "0.02"),
        CONFIG,
        [ghost],
    )
    assert exact is True


@pytest.mark.parametrize(
    "proposal, parsed",
    [
        ("increase LR to 0.02", change("learning_rate", "increase", "LEARNING_RATE", "0.02")),
        ("increase LR to 0.05", change("learning_rate", "increase", "LEARNING_RATE", "0.05")),
        ("add dropout 0.1", change("regularization", "add", "DROPOUT", "0.1")),
        ("use GELU activation", change("activation", "replace", "ACTIVATION", "gelu")),
        ("try something new", change("other", "other")),
    ],
)
def test_only_possible_repeats_are_examined_and_none_is_missed(bank, proposal, parsed):
    """The search hands find_repeats only the session's failures in the proposal's cell or
    above the near-repeat similarity: the verdict equals find_repeats over every row."""
    from nrr_stats.similarity.repeats import find_repeats
    from nrr_stats.similarity.search import proposal_vector

    history = bank.experiments(bank.sessions()[0]["id"])
    _, exact, near = similar_failures_in_bank(bank, proposal, parsed, CONFIG, history, k=5)
    snapshot = bank_features(bank)
    query = proposal_vector(snapshot.space, proposal, parsed)
    every_row = [
        dict(row, similarity=float(snapshot.matrix[list(snapshot.ids).index(row["id"])] @ query))
        for row in history
    ]
    fields = {
        "category": parsed.category,
        "direction": parsed.direction,
        "parameter": parsed.parameter,
        "to": parsed.to_value,
        "description": proposal,
    }
    brute = find_repeats(fields, every_row, CONFIG)
    assert (exact, near) == (brute["exact_repeat"], len(brute["near"]))


def test_filters_pick_one_session_or_one_cell_and_equal_brute_force(bank):
    """Failures only, one session, one cell: each search equals ranking the filtered rows."""
    from nrr_stats.parser import parse_description
    from nrr_stats.similarity.search import proposal_vector, similar_experiments_in_bank

    with bank.transaction():
        other, _ = bank.upsert_session(synthetic_session("s2"))
        bank.insert_experiments(
            [
                experiment(i + 1, *fields) | {"session_id": other}
                for i, fields in enumerate(SESSION_ROWS)
            ]
        )
    first = bank.sessions()[0]["id"]
    description = "increase LR to 0.02"
    snapshot = bank_features(bank)
    query = proposal_vector(snapshot.space, description, parse_description(description))
    rows = {row["id"]: row for row in bank.experiments()}
    cases = [
        ({"failures_only": False, "session_id": other}, lambda r: r["session_id"] == other),
        (
            {"failures_only": True, "cell": ("learning_rate", "increase")},
            lambda r: r["status"] != "keep" and r["category"] == "learning_rate",
        ),
        (
            {"failures_only": True, "session_id": first, "cell": ("optimizer", "replace")},
            lambda r: r["session_id"] == first and r["category"] == "optimizer",
        ),
    ]
    for options, keep in cases:
        found = similar_experiments_in_bank(bank, description, 10, **options)
        wanted = sorted(
            (i for i in snapshot.ids.tolist() if keep(rows[i])),
            key=lambda i: (-float(snapshot.matrix[list(snapshot.ids).index(i)] @ query), i),
        )
        assert [row["id"] for row in found] == wanted, options


def _snapshot_of(matrix, status):
    from nrr_stats.similarity.store import Snapshot

    n = matrix.shape[0]
    return Snapshot(None, matrix, np.arange(1, n + 1), status, np.zeros(n, dtype=np.int64))


def _searching(snapshot, **options):
    from nrr_stats.similarity.search import FailureSearch

    search = FailureSearch(**options)
    search._snapshot = snapshot  # what FailureSearch.snapshot(bank) sets for a bank's store
    return search


@pytest.mark.parametrize("max_copy_bytes", [64 << 20, 0])  # by columns; through the mask
def test_top_failures_are_the_kernels_masked_top_k(max_copy_bytes):
    """The held columns only choose which rows the kernel scores: rows and scores equal a
    fresh masked top_k, with near-ties (duplicated rows, one ulp apart) and k past the count."""
    from nrr_stats.similarity.kernel import top_k

    rng = np.random.default_rng(3)
    base = rng.standard_normal((400, 128)).astype(np.float32) * (rng.random((400, 128)) < 0.4)
    base[200:300] = base[:100]  # exact duplicates tie
    base[300:350] = np.nextafter(base[:50], np.float32(np.inf))  # one ulp from them
    matrix = base / np.linalg.norm(base, axis=1, keepdims=True)
    status = rng.integers(0, 4, 400)
    search = _searching(_snapshot_of(matrix, status), max_copy_bytes=max_copy_bytes)
    failed = (status == 1) | (status == 2)
    queries = [matrix[i] for i in (0, 5, 210, 305)] + [rng.standard_normal(128)]
    for query in queries:
        for k in (1, 5, 50, 1000):
            got_rows, got_scores = search.top_failures(query, k)
            rows, scores = top_k(matrix, query, k, mask=failed)
            assert got_rows.tolist() == rows.tolist() and got_scores.tobytes() == scores.tobytes()
    assert search._columns.ready is (max_copy_bytes > 0)  # the bound answered the later ones


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(-20, 20), min_size=1, max_size=3000),
    k=st.integers(1, 60),
)
def test_the_candidates_threshold_is_at_most_the_kth_best(values, k):
    """kth_lower_bound never exceeds the k-th largest value (ties included), whether it
    selects from every THRESHOLD_STRIDE-th value or from all of them."""
    from nrr_stats.similarity.search import kth_lower_bound

    array = np.asarray(values, dtype=np.float32) / 4
    k = min(k, array.size)
    assert kth_lower_bound(array, k) <= np.sort(array)[::-1][k - 1]


def test_top_failures_on_many_failures_are_the_kernels_masked_top_k():
    """Enough failures for the strided threshold (over 8 x k x stride), near-ties included:
    the same rows and scores as a fresh masked top_k."""
    from nrr_stats.similarity.kernel import top_k

    rng = np.random.default_rng(5)
    base = rng.standard_normal((9000, 128)).astype(np.float32) * (rng.random((9000, 128)) < 0.3)
    base[4000:5000] = base[:1000]  # exact duplicates tie
    base[5000:5500] = np.nextafter(base[:500], np.float32(np.inf))
    matrix = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-6)
    status = rng.integers(0, 4, 9000)
    search = _searching(_snapshot_of(matrix, status))
    failed = (status == 1) | (status == 2)
    queries = [matrix[i] for i in (0, 7, 4003, 5001)] + [rng.standard_normal(128)]
    for _ in range(3):  # the columns are complete from the third query of the first round
        for query in queries:
            for k in (5, 50):
                got_rows, got_scores = search.top_failures(query, k)
                rows, scores = top_k(matrix, query, k, mask=failed)
                assert got_rows.tolist() == rows.tolist()
                assert got_scores.tobytes() == scores.tobytes()
    assert search._columns.ready


def test_top_failures_columns_are_copied_a_slice_per_query_from_the_second(monkeypatch):
    from nrr_stats.similarity import search as module
    from nrr_stats.similarity.kernel import top_k

    monkeypatch.setattr(module, "BUILD_ROWS_PER_QUERY", 100)
    rng = np.random.default_rng(4)
    matrix = rng.standard_normal((1000, 128)).astype(np.float32)
    status = np.ones(1000, dtype=np.int64)  # every row a discard
    search = _searching(_snapshot_of(matrix, status))
    query = matrix[7]
    filled = []
    for _ in range(12):
        rows, scores = search.top_failures(query, 50)
        wanted = top_k(matrix, query, 50, mask=status == 1)
        assert rows.tolist() == wanted[0].tolist() and scores.tobytes() == wanted[1].tobytes()
        filled.append(None if search._columns is None else search._columns.filled)
    assert filled == [None, *range(100, 1001, 100), 1000]


def test_top_failures_columns_are_made_once_per_snapshot_and_dropped_with_it(bank):
    """The columns are kept while the snapshot stands; a commit of the store (a new row)
    drops them, and the search then answers as a fresh one does, the new failure included."""
    from nrr_stats.similarity.search import FailureSearch, proposal_vector

    search = FailureSearch()
    snapshot = search.snapshot(bank)
    query = proposal_vector(snapshot.space, "depth 8 to 12", change("model_depth", "increase"))
    search.top_failures(query, 3)
    assert search._columns is None  # a snapshot asked once copies nothing
    search.top_failures(query, 3)
    kept = search._columns
    assert kept.ready
    search.snapshot(bank)
    search.top_failures(query, 3)
    assert search._columns is kept  # the same snapshot: not copied again
    with bank.transaction():
        session_id = bank.sessions()[0]["id"]
        bank.insert_experiments(
            [
                experiment(6, "depth 8 to 12", "discard", "model_depth", "increase")
                | {"session_id": session_id}
            ]
        )
    snapshot = search.snapshot(bank)
    assert search._columns is None  # dropped with the old snapshot
    for _ in range(3):  # masked, masked while copying, then from the columns
        rows, scores = search.top_failures(query, 3)
    assert search._columns.ready and search._columns.index.size == kept.index.size + 1
    fresh = FailureSearch()
    fresh.snapshot(bank)
    fresh_rows, fresh_scores = fresh.top_failures(query, 3)
    assert rows.tolist() == fresh_rows.tolist() and scores.tolist() == fresh_scores.tolist()
    assert int(snapshot.ids[rows[0]]) == max(row["id"] for row in bank.experiments())
