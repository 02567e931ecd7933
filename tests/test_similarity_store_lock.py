"""A check never waits without end on the similarity store's own file lock: behind another
process's sync it waits at most CHECK_LOCK_TIMEOUT, then answers without updating the store,
with the same answer and a warning on stderr and in its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from core_helpers import SEED_LOG, run_nrr

from nrr_stats.bank import open_bank
from nrr_stats.files import LockWaitTimeout, locked
from nrr_stats.similarity.store import CHECK_LOCK_TIMEOUT, FeatureStore

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(lock: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_check_behind_a_held_store_lock_answers_within_the_bound(tmp_path: Path) -> None:
    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    with open_bank(str(bank)) as opened:
        store = FeatureStore(opened.features_path)
        rows = opened.count_experiments()
    expected = json.loads(run_nrr("check", "increase LR to 0.08", "--bank", str(bank)).out)

    store._state_path.unlink()  # the store lacks the bank's rows: a check must sync it
    holder = _hold(store._lock_path, 30.0)  # another process's sync, stuck
    try:
        started = time.monotonic()
        run = run_nrr("check", "increase LR to 0.08", "--bank", str(bank))
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()

    assert run.code in (0, 1, 2), run.err
    assert CHECK_LOCK_TIMEOUT <= elapsed < CHECK_LOCK_TIMEOUT + 10.0
    answer = json.loads(run.out)
    assert (answer["verdict"], answer["p_keep"]) == (expected["verdict"], expected["p_keep"])
    assert [f["id"] for f in answer["similar_failures"]] == [
        f["id"] for f in expected["similar_failures"]
    ]
    warning = [w for w in answer["warnings"] if "similarity store's lock" in w]
    assert warning and str(store.path) in warning[0] and "store not updated" in warning[0]
    assert "similarity store's lock" in run.err
    assert not store._state_path.exists()  # the store was left alone, not written unlocked

    # Once the lock is free, the next check brings the store up to date, without a warning.
    again = json.loads(run_nrr("check", "increase LR to 0.08", "--bank", str(bank)).out)
    assert store._state_path.exists() and store.committed == rows
    assert not [w for w in again["warnings"] if "lock" in w]


def test_locked_with_a_timeout_names_what_it_waited_on(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = _hold(lock, 30.0)
    try:
        started = time.monotonic()
        try:
            with locked(lock, timeout=0.3, what="the test's lock"):
                raise AssertionError("the lock was taken while another process held it")
        except LockWaitTimeout as error:
            assert "the test's lock" in error.strerror and error.filename == str(lock)
        assert 0.3 <= time.monotonic() - started < 5.0
    finally:
        holder.kill()
        holder.wait()
    with locked(lock, timeout=0.3):  # free again: taken at once
        pass
