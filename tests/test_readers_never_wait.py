"""Issue 16 item 4, readers never wait on writers: a check during an ingest's open write
transaction answers at once and keeps its decision (recorded now, or queued beside the bank
and folded in exactly once later); a refresh sees all or none of an ingest's rows; a check
never syncs an ingest's rows into the similarity store nor waits on the store's lock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nrr_stats.bank import decision_queue, open_bank
from nrr_stats.bank.testing import synthetic_rows, synthetic_session
from nrr_stats.check import Checker
from nrr_stats.similarity import store as feature_store

PROPOSAL = "increase learning rate to 0.1"
DECISION = {"verdict": "caution", "p_keep": 0.2}


def _seeded(bank_url: str, rows: int = 60) -> int:
    with open_bank(bank_url) as bank, bank.transaction():
        session_id, _ = bank.upsert_session(synthetic_session("mine"))
        bank.insert_experiments(synthetic_rows(session_id, rows, tag="m"))
    return session_id


def _decisions(bank_url: str) -> list[str]:
    with open_bank(bank_url, create=False) as bank:
        return [r["proposal"] for r in bank.query("SELECT proposal FROM decisions ORDER BY id")]


def test_a_check_during_an_open_ingest_answers_at_once_and_keeps_its_decision(bank_url):
    _seeded(bank_url)
    with Checker(bank_url) as checker:
        before = checker.check(PROPOSAL, session="mine")["bank"]["experiments"]
        with open_bank(bank_url) as ingest, ingest.transaction():
            # What an ingest holds until its commit: the insert lock (the write lock on
            # SQLite), the checked session's row (a re-ingest of its log) and new rows.
            ingest.lock_inserts()
            ingest.upsert_session(synthetic_session("mine"))
            theirs, _ = ingest.upsert_session(synthetic_session("theirs"))
            ingest.insert_experiments(synthetic_rows(theirs, 40, tag="t"))
            started = time.monotonic()
            during = checker.check(PROPOSAL + " during", session="mine")
            elapsed = time.monotonic() - started
            queued = checker.bank.queued_decisions()
        after = checker.check(PROPOSAL + " after", session="mine")
        assert checker.bank.queued_decisions() == 0
    # Without the queue a check waited 2 s for the write lock on SQLite, then lost its decision.
    assert elapsed < 1.5, elapsed
    assert during["warnings"] == []
    assert during["bank"]["experiments"] == before  # none of the open ingest's rows
    assert after["bank"]["experiments"] == before + 40  # all of them once committed
    if bank_url.startswith("sqlite"):
        assert during["decision_id"] is None and queued == 1  # queued: the ingest holds the lock
    else:
        assert isinstance(during["decision_id"], int) and queued == 0  # nothing to wait on
    assert isinstance(after["decision_id"], int)
    assert sorted(_decisions(bank_url)) == sorted(
        [PROPOSAL, PROPOSAL + " during", PROPOSAL + " after"]
    )


def test_a_refresh_sees_all_or_none_of_an_ingest(bank_url):
    _seeded(bank_url)
    with Checker(bank_url) as checker, open_bank(bank_url) as ingest:
        start = len(checker.reading().evidence)
        with ingest.transaction():
            theirs, _ = ingest.upsert_session(synthetic_session("theirs"))
            for batch in range(3):
                ingest.insert_experiments(synthetic_rows(theirs, 10, start=1 + 10 * batch, tag="t"))
                assert len(checker.reading().evidence) == start
        assert len(checker.reading().evidence) == start + 30


def test_a_commit_between_the_state_and_the_sums_is_counted_once(bank_url):
    """The refresh reads the evidence state and the sums in one snapshot: rows committed
    between the two reads are neither in this reading nor read twice by the next one."""
    _seeded(bank_url)
    with Checker(bank_url) as checker, open_bank(bank_url) as ingest:
        checker.reading()
        original = checker.bank.evidence_state
        theirs, _ = ingest.upsert_session(synthetic_session("theirs"))
        committed = []

        def state_then_a_commit():
            state = original()
            if not committed:
                with ingest.transaction():
                    ingest.insert_experiments(synthetic_rows(theirs, 25, tag="t"))
                committed.append(True)
            return state

        with ingest.transaction():
            ingest.insert_experiments(synthetic_rows(theirs, 5, start=100, tag="u"))
        checker.bank.evidence_state = state_then_a_commit
        first = len(checker.reading().evidence)
        checker.bank.evidence_state = original
        second = len(checker.reading().evidence)
        total = checker.bank.count_experiments()
    assert first == 60 + 5  # as of the snapshot's state: not the rows committed inside it
    assert second == total == 60 + 5 + 25  # each row counted once


# -- the decision queue ------------------------------------------------------------------------


def test_a_fold_killed_after_its_commit_does_not_fold_twice(bank_url, monkeypatch):
    _seeded(bank_url, rows=4)
    with open_bank(bank_url) as bank:
        for n in range(2):
            decision_queue.append(bank.decision_queue_path, _entry(f"queued {n}"))
        real_unlink = Path.unlink
        monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)
        bank.record_decision("first", None, DECISION)  # folds, then "dies" before deleting
        monkeypatch.setattr(Path, "unlink", real_unlink)
        assert len(decision_queue.claimed_files(bank.decision_queue_path)) == 1
        bank.record_decision("second", None, DECISION)
        assert decision_queue.claimed_files(bank.decision_queue_path) == []
        assert bank.queued_decisions() == 0
        bank.record_decision("third", None, DECISION)  # the claim's token is forgotten now
        keys = bank.query("SELECT key FROM meta WHERE key LIKE 'decision_queue_folded:%'")
    assert sorted(_decisions(bank_url)) == ["first", "queued 0", "queued 1", "second", "third"]
    assert keys == []


def test_a_fold_killed_before_its_commit_is_folded_again(bank_url, monkeypatch):
    _seeded(bank_url, rows=4)
    with open_bank(bank_url) as bank:
        for n in range(3):
            decision_queue.append(bank.decision_queue_path, _entry(f"queued {n}"))
        real_insert = bank._insert_decision
        calls = []

        def dies_in_the_fold(entry):
            calls.append(entry)
            if len(calls) == 3:
                raise KeyboardInterrupt  # killed mid-fold: the transaction rolls back
            return real_insert(entry)

        monkeypatch.setattr(bank, "_insert_decision", dies_in_the_fold)
        with pytest.raises(KeyboardInterrupt):
            bank.record_decision("first", None, DECISION)
        monkeypatch.setattr(bank, "_insert_decision", real_insert)
        assert _decisions(bank_url) == [] and bank.queued_decisions() == 3
        bank.record_decision("second", None, DECISION)
        assert bank.queued_decisions() == 0
    assert sorted(_decisions(bank_url)) == ["queued 0", "queued 1", "queued 2", "second"]


def test_decisions_queued_while_folds_run_are_each_recorded_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    _seeded(url, rows=4)
    with open_bank(url) as bank:
        queue = bank.decision_queue_path
    stop = threading.Event()

    def append(worker: int) -> None:
        for n in range(150):
            decision_queue.append(queue, _entry(f"w{worker} {n}"))

    def fold() -> None:
        with open_bank(url) as folder:
            n = 0
            while not stop.is_set():
                folder.record_decision(f"fold {n}", None, DECISION)
                n += 1

    appenders = [threading.Thread(target=append, args=(w,)) for w in range(3)]
    folder = threading.Thread(target=fold)
    folder.start()
    for thread in appenders:
        thread.start()
    for thread in appenders:
        thread.join()
    stop.set()
    folder.join()
    with open_bank(url) as bank:
        bank.record_decision("last", None, DECISION)
        assert bank.queued_decisions() == 0
    proposals = _decisions(url)
    queued = [p for p in proposals if p.startswith("w")]
    assert len(queued) == len(set(queued)) == 450


def _entry(proposal: str) -> dict:
    return {
        "created_at": "2026-01-01T00:00:00+00:00",
        "proposal": proposal,
        "session_id": None,
        "verdict": "caution",
        "p_keep": 0.2,
        "answer_json": json.dumps(DECISION),
    }


# -- the similarity store ----------------------------------------------------------------------

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_check_leaves_an_ingests_rows_to_its_sync_and_never_waits_on_the_store(
    tmp_path: Path, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    session_id = _seeded(url, rows=50)
    with open_bank(url) as bank:
        store = feature_store.FeatureStore(bank.features_path)
        assert feature_store.bank_features(bank).ids.size == 50
        many = feature_store.CHECK_SYNC_ROWS + 50
        with bank.transaction():  # an ingest's commit, its feature sync not yet run
            bank.insert_experiments(synthetic_rows(session_id, many, start=51, tag="n"))
        committed = store.committed
        # An ingest's many rows: answered from the store as it stands, nothing synced.
        assert feature_store.bank_features(bank).ids.size == 50
        assert store.committed == committed
        # Behind another process's sync of the store, even a repair does not wait.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(store._lock_path), "30"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            monkeypatch.setattr(feature_store, "LAG_REPAIR_SECONDS", 0.0)
            started = time.monotonic()
            assert feature_store.bank_features(bank).ids.size == 50
            assert time.monotonic() - started < 1.0
        finally:
            holder.kill()
            holder.wait()
        # A lag older than LAG_REPAIR_SECONDS (an ingest killed before its sync) is repaired.
        assert feature_store.bank_features(bank).ids.size == 50 + many


def test_a_fold_takes_a_bounded_share_of_a_long_queue(bank_url, monkeypatch):
    _seeded(bank_url, rows=4)
    monkeypatch.setattr(decision_queue, "SEGMENT_BYTES", 2000)
    with open_bank(bank_url) as bank:
        for n in range(40):
            decision_queue.append(bank.decision_queue_path, _entry(f"queued {n:02d}"))
        segments = len(decision_queue.claimed_files(bank.decision_queue_path))
        assert segments >= 3 and bank.queued_decisions() == 40
        per_fold = []
        for n in range(segments + 2):
            before = bank.queued_decisions()
            bank.record_decision(f"own {n}", None, DECISION)
            per_fold.append(before - bank.queued_decisions())
        assert bank.queued_decisions() == 0
    assert max(per_fold) <= 2000 // len(json.dumps(_entry("queued 00"))) + 1
    recorded = _decisions(bank_url)
    assert sorted(p for p in recorded if p.startswith("queued")) == [
        f"queued {n:02d}" for n in range(40)
    ]
