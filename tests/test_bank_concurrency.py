"""Several processes on one bank, on both backends: concurrent creation, concurrent ingest, SIGKILL mid-ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nrr_stats.bank import open_bank
from nrr_stats.bank.schema import SCHEMA_VERSION
from nrr_stats.bank.testing import synthetic_rows, synthetic_session

# Each child waits for the barrier file so that all of them hit the bank at the same moment.
_BARRIER_WAIT = """
import os, sys, time
import psycopg  # imported before the barrier so start-up time does not stagger the children
from nrr_stats.bank import open_bank
from nrr_stats.bank.testing import synthetic_rows, synthetic_session
url, barrier = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(barrier):
    time.sleep(0.001)
"""

CREATE_CHILD = (
    _BARRIER_WAIT
    + """
with open_bank(url) as bank:
    print(bank.schema_version(), flush=True)
"""
)

INGEST_CHILD = (
    _BARRIER_WAIT
    + """
count = int(sys.argv[3])
with open_bank(url) as bank, bank.transaction():
    session_id, created = bank.upsert_session(synthetic_session("shared-log"))
    added = bank.insert_experiments(synthetic_rows(session_id, count))
print(int(created), added, flush=True)
"""
)

KILLED_CHILD = """
import sys
from nrr_stats.bank import open_bank
from nrr_stats.bank.testing import synthetic_rows, synthetic_session
url, count = sys.argv[1], int(sys.argv[2])
bank = open_bank(url)
with bank.transaction():
    session_id, _ = bank.upsert_session(synthetic_session("big-log"))
    rows = synthetic_rows(session_id, count)
    bank.insert_experiments(rows[:300])
    print("inserting", flush=True)
    bank.insert_experiments(rows[300:])
print("committed", flush=True)
"""


def _spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run_together(script: str, url: str, tmp_path: Path, processes: int, *extra: str) -> list[str]:
    """Start `processes` children, release them at once, return their stdout (all must exit 0)."""
    barrier = tmp_path / f"go-{time.monotonic_ns()}"
    children = [_spawn(script, url, str(barrier), *extra) for _ in range(processes)]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", (
            child.stderr.read() if child.stderr else ""
        )
    barrier.touch()
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_processes_creating_one_bank_at_once_all_succeed(bank_url, tmp_path):
    outputs = _run_together(CREATE_CHILD, bank_url, tmp_path, 4)
    assert outputs == [str(SCHEMA_VERSION)] * 4
    with open_bank(bank_url) as bank:
        keys = [row["key"] for row in bank.query("SELECT key FROM meta ORDER BY key")]
        assert keys == ["evidence_revision", "nrr_version", "schema_version"]


def test_agents_ingesting_the_same_log_at_once_store_it_once(bank_url, tmp_path):
    open_bank(bank_url).close()
    count = 1500
    outputs = _run_together(INGEST_CHILD, bank_url, tmp_path, 3, str(count))
    created, added = zip(*(map(int, line.split()) for line in outputs), strict=True)
    assert sum(created) == 1
    assert sum(added) == count
    with open_bank(bank_url) as bank:
        assert bank.count_experiments() == count
        assert len(bank.sessions()) == 1
        distinct = bank.query("SELECT COUNT(DISTINCT row_number) AS n FROM experiments")[0]["n"]
        assert distinct == count


def test_sigkill_mid_ingest_leaves_the_bank_as_it_was_and_a_rerun_finishes(bank_url):
    count = 30_000
    with open_bank(bank_url) as bank, bank.transaction():
        session_id, _ = bank.upsert_session(synthetic_session("big-log"))
        bank.insert_experiments(synthetic_rows(session_id, 100))

    child = _spawn(KILLED_CHILD, bank_url, str(count))
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == "inserting", child.stderr.read() if child.stderr else ""
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert "committed" not in out, "the child finished before the kill: raise `count`"

    with open_bank(bank_url) as bank:
        assert bank.count_experiments() == 100
        if bank.location.backend == "sqlite":
            assert bank.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"

    rerun = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, bank_url, str(count)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    with open_bank(bank_url) as bank:
        assert bank.count_experiments() == count
        assert len(bank.sessions()) == 1
        duplicates = bank.query(
            "SELECT COUNT(*) AS n FROM (SELECT session_id, row_number FROM experiments"
            " GROUP BY session_id, row_number HAVING COUNT(*) > 1) AS d"
        )[0]["n"]
        assert duplicates == 0


def test_readers_see_committed_rows_only(bank_url):
    """A reader never sees part of another process's open ingest transaction."""
    with open_bank(bank_url) as writer, open_bank(bank_url) as reader:
        session_id, _ = writer.upsert_session(synthetic_session("s"))
        with writer.transaction():
            writer.insert_experiments(synthetic_rows(session_id, 50))
            assert reader.count_experiments() == 0
        assert reader.count_experiments() == 50


def test_opening_a_current_bank_does_not_wait_for_a_writer(bank_url):
    """`nrr check` opens the bank while agents ingest: opening must not queue behind their transactions."""
    import threading

    open_bank(bank_url).close()
    opened = threading.Event()

    def open_and_read():
        with open_bank(bank_url, create=False) as bank:
            bank.count_experiments()
        opened.set()

    with open_bank(bank_url) as writer, writer.transaction():
        session_id, _ = writer.upsert_session(synthetic_session("s"))
        writer.insert_experiments(synthetic_rows(session_id, 10))
        reader = threading.Thread(target=open_and_read, daemon=True)
        reader.start()
        assert opened.wait(timeout=5), "open_bank waited for another process's write transaction"
    reader.join(timeout=70)


def test_a_recorded_decision_returns_its_own_id_while_others_record(bank_url):
    """On PostgreSQL another agent may commit a decision between our INSERT and our reading the id."""
    if bank_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers: no other decision can commit inside ours")
    with open_bank(bank_url) as mine, open_bank(bank_url) as other:
        original = mine.execute

        def execute_then_let_another_agent_record(statement, params=()):
            cursor = original(statement, params)
            if statement.startswith("INSERT INTO decisions"):
                other.record_decision("theirs", None, {"verdict": "proceed", "p_keep": 0.9})
            return cursor

        mine.execute = execute_then_let_another_agent_record
        decision_id = mine.record_decision("mine", None, {"verdict": "avoid", "p_keep": 0.1})
        proposal = other.query("SELECT proposal FROM decisions WHERE id = ?", (decision_id,))
        assert proposal == [{"proposal": "mine"}]


WRITING_CHILD = """
import random, sys, time
from nrr_stats.bank import open_bank
from nrr_stats.bank.testing import synthetic_rows, synthetic_session
url, name, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(name)
with open_bank(url) as bank:
    with bank.transaction():
        session_id, _ = bank.upsert_session(synthetic_session(name))
    rows = synthetic_rows(session_id, 40 * batches)
    for start in range(0, len(rows), 40):
        with bank.transaction():
            bank.insert_experiments(rows[start : start + 20])
            time.sleep(rng.uniform(0.0, 0.01))  # hold ids while another writer commits
            bank.insert_experiments(rows[start + 20 : start + 40])
print("done", flush=True)
"""


def test_a_reading_followed_during_concurrent_writers_equals_a_fresh_one(bank_url):
    """The open bank's reading grows by the rows past the last id it read: that holds only if
    no row ever commits after one with a higher id (PostgreSQL: the insert lock, schema v3)."""
    from nrr_stats.check import Checker
    from nrr_stats.models.data import LEVEL_KEYS
    from nrr_stats.models.evidence import SUM_FIELDS, Evidence

    with open_bank(bank_url) as bank:
        checker = Checker(bank)
        writers = [_spawn(WRITING_CHILD, bank_url, f"log-{i}", "8") for i in range(4)]
        while any(writer.poll() is None for writer in writers):
            checker.reading()
        for writer in writers:
            out, err = writer.communicate(timeout=120)
            assert writer.returncode == 0 and out.strip() == "done", err
        followed = checker.reading().evidence
        with open_bank(bank_url, create=False) as fresh:
            whole = Evidence.from_leaf_sums(fresh.evidence_sums())
    assert len(followed) == len(whole) == 4 * 8 * 40
    for level in LEVEL_KEYS:
        got, want = followed.counts(level), whole.counts(level)
        assert got.key_tuples() == want.key_tuples()
        for name in SUM_FIELDS:
            np.testing.assert_allclose(getattr(got, name), getattr(want, name))
