"""FeatureStore: one committed row per bank experiment, whatever kills the writer and when."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nrr_stats.similarity import FeatureStore
from nrr_stats.similarity.store import row_fields
from nrr_stats.taxonomy import STATUSES

WORDS = ["lr", "dropout", "depth", "width", "warmup", "batch", "adamw", "gelu", "rope", "ema"]
CELLS = [("learning_rate", "increase"), ("regularization", "add"), ("model_depth", "decrease")]


def make_rows(n: int, *, start: int = 1, vocabulary: list[str] = WORDS) -> list[dict]:
    rng = random.Random(start * 7919 + n)
    rows = []
    for offset in range(n):
        category, direction = CELLS[offset % len(CELLS)]
        a, b = rng.sample(vocabulary, 2)
        rows.append(
            {
                "id": start + offset,
                "session_id": 1 + offset // 50,
                "description": f"{direction} {a} {b} to {rng.choice([0.01, 0.02, 0.5, 8])}",
                "category": category,
                "direction": direction,
                "parameter": a.upper(),
                "from_value": "",
                "to_value": str(rng.choice([0.01, 0.02, 0.5, 8])),
                "outcome": rng.choice(["regression", "improvement", "no_improvement", None]),
                "status": rng.choice(["keep", "discard", "discard", "crash", "other"]),
            }
        )
    return rows


def assert_consistent(store: FeatureStore, rows: list[dict], expected_count: int | None = None):
    """Committed rows are exactly the bank's first rows, as the store's own space computes them."""
    space, matrix, ids, status, session = store.snapshot()
    count = matrix.shape[0]
    if expected_count is not None:
        assert count == expected_count
    np.testing.assert_array_equal(ids, [row["id"] for row in rows[:count]])
    np.testing.assert_array_equal(session, [row["session_id"] for row in rows[:count]])
    assert list(status) == [STATUSES.index(row["status"]) for row in rows[:count]]
    expected = space.transform(
        [row["description"] for row in rows[:count]], [row_fields(row) for row in rows[:count]]
    )
    np.testing.assert_array_equal(np.asarray(matrix), expected)


@pytest.fixture
def store(tmp_path):
    return FeatureStore(tmp_path / "bank.features.npy")


def test_appends_keep_store_equal_to_the_bank(store):
    rows = make_rows(3000)
    first = store.sync(rows[:1000])
    assert first.rebuilt and first.committed == 1000
    second = store.sync(rows[:1100])
    assert not second.rebuilt and second.appended == 100
    assert_consistent(store, rows, 1100)
    assert store.sync(iter(rows[:1100])).appended == 0  # a one-shot iterator works too
    store.sync(lambda: reversed(rows))  # order of arrival does not matter: id order is kept
    assert_consistent(store, rows, 3000)
    assert np.load(store.path, mmap_mode="r").shape == (3000, store.space.dim)


def test_changed_outcome_or_status_is_recomputed_in_place(store):
    rows = make_rows(200)
    store.sync(rows)
    before = np.array(store.matrix()[17])
    rows[17] = dict(rows[17], outcome="crash_code")
    rows[18] = dict(rows[18], status="crash" if rows[18]["status"] != "crash" else "keep")
    summary = store.sync(rows)
    assert summary.updated == 2 and not summary.rebuilt
    assert not np.array_equal(store.matrix()[17], before)
    assert_consistent(store, rows, 200)
    failures = store.snapshot().status_mask("discard", "crash")
    assert list(failures) == [row["status"] in ("discard", "crash") for row in rows]


def _recent(store: FeatureStore, rows: list[dict], touched_sessions: set[int], last: int):
    """What an ingest passes: its sessions' rows, the rows past `last`, the bank's count."""
    touched = [row for row in rows if row["session_id"] in touched_sessions]
    fresh = [row for row in rows if row["id"] > last]
    return store.sync_recent(touched, fresh, len(rows), lambda: rows)


def test_a_recent_sync_reads_only_touched_and_new_rows_and_equals_a_whole_sync(store):
    rows = make_rows(300)
    store.sync(rows[:250])
    rows[10] = dict(rows[10], outcome="crash_code")  # session 1: touched by this ingest
    rows[120] = dict(rows[120], outcome="crash_code")  # session 3: not said to be touched
    summary = _recent(store, rows, {1}, last=250)
    assert (summary.appended, summary.updated, summary.rebuilt) == (50, 1, False)
    stored = np.array(store.matrix()[120])  # a copy: the memory map sees rewrites
    assert store.sync(rows).updated == 1  # only the untouched session's change was left
    assert not np.array_equal(np.asarray(store.matrix()[120]), stored)
    assert_consistent(store, rows, 300)


@pytest.mark.parametrize("fault", ["bank holds more rows", "touched row not stored"])
def test_a_recent_sync_falls_back_to_a_whole_sync_when_the_store_is_out_of_step(store, fault):
    rows = make_rows(300)
    store.sync(rows[:200])
    if fault == "bank holds more rows":  # e.g. a lower id committed late on PostgreSQL
        summary = store.sync_recent([], rows[250:], len(rows), lambda: rows)
    else:
        summary = store.sync_recent(rows[195:205], rows[200:], len(rows) + 1, lambda: rows)
    assert summary.committed == 300
    assert_consistent(store, rows, 300)


def test_idf_drift_rebuilds_with_idf_of_the_whole_bank(store):
    rows = make_rows(100) + make_rows(600, start=101, vocabulary=["sgd", "muon", "swiglu", "alibi"])
    store.sync(rows[:100])
    summary = store.sync(rows)
    assert summary.rebuilt and "drift" in summary.reason
    assert store.space.n_docs == 700
    assert_consistent(store, rows, 700)


def test_small_appends_do_not_rebuild(store):
    rows = make_rows(1010)
    store.sync(rows[:1000])
    summary = store.sync(rows)
    assert not summary.rebuilt and summary.drift < 0.10
    assert store.space.n_docs == 1000  # rows keep the idf they were built with


@pytest.mark.parametrize(
    "damage", ["truncate data", "garbage state", "delete keys", "renumbered bank"]
)
def test_damage_is_detected_and_repaired(store, damage):
    rows = make_rows(500)
    store.sync(rows)
    stem = str(store.path)[: -len(".npy")]
    if damage == "truncate data":
        os.truncate(store.path, os.path.getsize(store.path) // 2)
    elif damage == "garbage state":
        with open(stem + ".state.npz", "wb") as handle:
            handle.write(b"not a zip file")
    elif damage == "delete keys":
        os.remove(stem + ".keys.npy")
    else:
        rows = [dict(row, id=row["id"] + 1000) for row in rows]
    if damage != "renumbered bank":
        assert store.committed == 0  # detected: readers see no rows rather than wrong ones
    summary = store.sync(rows)
    assert summary.rebuilt
    assert_consistent(store, rows, 500)


def test_rows_past_the_commit_are_invisible(store):
    rows = make_rows(300)
    store.sync(rows[:200])
    store._data.write(200, np.ones((50, store.space.dim), np.float32), extend_header=True)
    assert store.committed == 200 and store.matrix().shape[0] == 200
    assert_consistent(store, rows, 200)


def test_duplicate_ids_are_refused(store):
    rows = make_rows(3)
    with pytest.raises(ValueError, match="unique"):
        store.sync(rows + rows[:1])


# -- killed writers --------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np
    from nrr_stats.similarity import store as module

    path, rows_file, prefix, total, where = sys.argv[1:6]
    rows = json.load(open(rows_file))
    store = module.FeatureStore(path)
    store.sync(rows[: int(prefix)])

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if where == "before commit":
        module.FeatureStore._commit = die
    elif where == "mid write":
        original = module._RowFile.write
        def half_then_die(self, start, values, *, extend_header):
            original(self, start, np.asarray(values)[: len(values) // 2], extend_header=extend_header)
            die()
        module._RowFile.write = half_then_die
    elif where == "mid rebuild":
        module.DRIFT_THRESHOLD = -1.0
        module._RowFile.create = die
    elif where == "anywhere":
        module.COMMIT_BATCH = 40
        print("ready", flush=True)
        for stop in range(int(prefix), int(total) + 1, 25):
            store.sync(rows[:stop])
        sys.exit(0)
    store.sync(rows[: int(total)])
    """
)


def run_child(store, rows, prefix, total, where, tmp_path, *, kill_after=None):
    rows_file = tmp_path / "rows.json"
    rows_file.write_text(json.dumps(rows))
    args = [
        sys.executable,
        "-c",
        CHILD,
        str(store.path),
        str(rows_file),
        str(prefix),
        str(total),
        where,
    ]
    if kill_after is None:
        return subprocess.run(args, capture_output=True, timeout=60).returncode
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(kill_after)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    return child.returncode


@pytest.mark.parametrize(
    ("where", "committed_after"), [("before commit", 1000), ("mid write", 1000), ("mid rebuild", 0)]
)
def test_sigkill_mid_append_leaves_a_consistent_store(store, tmp_path, where, committed_after):
    rows = make_rows(2000)
    code = run_child(store, rows, 1000, 2000, where, tmp_path)
    assert code == -signal.SIGKILL
    assert_consistent(store, rows, committed_after)
    store.sync(rows)
    assert_consistent(store, rows, 2000)


def test_sigkill_at_random_moments(store, tmp_path):
    rows = make_rows(4000)
    rng = random.Random(5)
    seen = []
    for _ in range(3):
        code = run_child(
            store, rows, 100, 4000, "anywhere", tmp_path, kill_after=rng.uniform(0.05, 0.6)
        )
        assert code in (-signal.SIGKILL, 0)
        assert_consistent(store, rows)
        seen.append(store.committed)
    assert max(seen) > 0
    store.sync(rows)
    assert_consistent(store, rows, 4000)
