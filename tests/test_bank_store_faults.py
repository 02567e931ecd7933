"""Issue 17, the store's faults: a foreign SQLite file, storage failures, the decision's write
lock, a read-only bank, what a decision stores, file modes and schema upgrades."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from core_helpers import GOOD_ROWS, run_nrr, write_log

from nrr_stats.bank import open_bank
from nrr_stats.errors import NrrInputError


def _foreign_db(path: Path, journal: str = "delete") -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA journal_mode={journal}")
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.execute("INSERT INTO notes (body) VALUES ('another application')")
    connection.close()
    return path.read_bytes()


def _tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master ORDER BY name").fetchall()
    connection.close()
    return [name for (name,) in rows]


@pytest.mark.parametrize("command", ["check", "ingest"])
def test_another_applications_database_is_refused_untouched(tmp_path: Path, command: str):
    other = tmp_path / "other-app.db"
    before = _foreign_db(other)
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    args = ["check", "increase LR to 0.1"] if command == "check" else ["ingest", str(log)]
    result = run_nrr(*args, "--bank", str(other))
    assert result.code == 3
    assert len(result.err.strip().splitlines()) == 1
    assert "not an nrr bank" in result.err and str(other) in result.err
    assert other.read_bytes() == before  # no WAL switch, no tables, no decision
    assert _tables(other) == ["notes"]
    assert not Path(str(other) + "-wal").exists()


def test_a_database_with_a_foreign_meta_table_is_refused(tmp_path: Path):
    other = tmp_path / "meta.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        connection.execute("INSERT INTO meta VALUES ('app', 'something else')")
    connection.close()
    before = other.read_bytes()
    with pytest.raises(NrrInputError, match="not an nrr bank"):
        open_bank(other)
    assert other.read_bytes() == before


def test_an_empty_file_or_a_new_path_still_becomes_a_bank(tmp_path: Path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (empty, tmp_path / "new" / "bank.db"):
        with open_bank(path) as bank:
            assert bank.count_sessions() == 0
        with open_bank(path) as bank:  # and opens again as one
            assert bank.schema_version() > 0


# -- storage failures name the bank (13) -------------------------------------------------------


def test_a_storage_failure_names_the_bank_in_one_line(tmp_path: Path, monkeypatch):
    bank_path = tmp_path / "bank.db"
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    assert run_nrr("ingest", str(log), "--bank", str(bank_path)).code == 0
    # A bank that can hold no more pages: SQLite's own "database or disk is full".
    with sqlite3.connect(bank_path) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()
    real_connect = sqlite3.connect

    def capped(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        connection.execute(f"PRAGMA max_page_count={pages}")
        return connection

    rows = [f"b{i}\t1.0\t44.0\tdiscard\t{'long description ' * 400} {i}" for i in range(40)]
    big = write_log(tmp_path / "big.tsv", rows)
    monkeypatch.setattr(sqlite3, "connect", capped)
    result = run_nrr("ingest", str(big), "--bank", str(bank_path))
    monkeypatch.undo()
    assert result.code == 3
    assert len(result.err.strip().splitlines()) == 1
    assert "internal error" not in result.err
    assert str(bank_path) in result.err and "full" in result.err


def test_a_proposal_on_stdin_that_is_not_utf8_is_one_line_exit_3(tmp_path: Path):
    bank_path = tmp_path / "bank.db"
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    assert run_nrr("ingest", str(log), "--bank", str(bank_path)).code == 0
    done = subprocess.run(
        [str(Path(sys.executable).parent / "nrr"), "check", "-", "--bank", str(bank_path)],
        input=b"increase LR to 0.1 \xff\xfe",
        capture_output=True,
        timeout=120,
    )
    err = done.stderr.decode()
    assert done.returncode == 3, err
    assert "not UTF-8" in err and "stdin" in err
    assert len(err.strip().splitlines()) == 1
    assert done.stdout == b""
    with sqlite3.connect(bank_path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0
    connection.close()


# -- a check's record never costs its answer (10) ----------------------------------------------


def _ingested(bank_url: str, tmp_path: Path) -> None:
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    assert run_nrr("ingest", str(log), "--bank", bank_url).code == 0


@contextmanager
def _writer_holding_the_lock(bank_url: str):
    """Another process's open write transaction on the bank (the decisions table for PostgreSQL)."""
    if bank_url.startswith("sqlite:///"):
        holder = sqlite3.connect(bank_url[len("sqlite:///") :], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    import psycopg

    with psycopg.connect(bank_url) as holder:
        holder.execute("LOCK TABLE decisions IN EXCLUSIVE MODE")
        yield
        holder.rollback()


def test_a_check_behind_a_writer_answers_at_once_and_its_decision_is_recorded_later(
    bank_url, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a PostgreSQL bank's queue is beside it in ./.nrr
    _ingested(bank_url, tmp_path)
    with _writer_holding_the_lock(bank_url):
        started = time.monotonic()
        result = run_nrr("check", "increase LR to 0.1", "--bank", bank_url)
        elapsed = time.monotonic() - started
        with open_bank(bank_url) as bank:
            assert bank.queued_decisions() == 1
    assert result.code in (0, 1, 2), result.err
    assert elapsed < 10  # was 61 s, then `database is locked`; then 2 s and the decision lost
    answer = json.loads(result.out)
    assert answer["decision_id"] is None and answer["warnings"] == [] and result.err == ""
    # With the lock free again the next check is recorded, and the queued one with it.
    again = json.loads(run_nrr("check", "drop dropout", "--bank", bank_url).out)
    assert isinstance(again["decision_id"], int) and again["warnings"] == []
    with open_bank(bank_url) as bank:
        proposals = [
            r["proposal"] for r in bank.query("SELECT proposal FROM decisions ORDER BY id")
        ]
        assert sorted(proposals) == ["drop dropout", "increase LR to 0.1"]
        assert bank.queued_decisions() == 0


def test_a_check_on_a_full_disk_still_answers(tmp_path: Path, monkeypatch):
    bank_path = tmp_path / "bank.db"
    _ingested(str(bank_path), tmp_path)
    with sqlite3.connect(bank_path) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.close()
    real_connect = sqlite3.connect

    def full(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        connection.execute(f"PRAGMA max_page_count={pages}")
        return connection

    monkeypatch.setattr(sqlite3, "connect", full)
    result = run_nrr("check", "increase LR " + "x" * 20000, "--bank", str(bank_path))
    monkeypatch.undo()
    assert result.code in (0, 1, 2), result.err
    answer = json.loads(result.out)
    assert answer["decision_id"] is None and "full" in " ".join(answer["warnings"])


@contextmanager
def _read_only(directory: Path):
    """`directory` read-only for this process: a read-only bind mount as root, else chmod."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [directory, *directory.iterdir()]}
        for path in modes:
            path.chmod(stat.S_IMODE(modes[path]) & ~0o222)
        try:
            yield directory
        finally:
            for path, mode in modes.items():
                path.chmod(stat.S_IMODE(mode))
        return
    mount = directory.parent / (directory.name + "-ro")
    mount.mkdir()
    bound = subprocess.run(["mount", "--bind", str(directory), str(mount)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mount)], check=True)
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_bank_can_be_read(tmp_path: Path):
    home = tmp_path / "banks"
    home.mkdir()
    _ingested(str(home / "bank.db"), tmp_path)
    before = (home / "bank.db").read_bytes()
    with _read_only(home) as readable:
        bank = str(readable / "bank.db")
        assert run_nrr("export", "results.tsv", "--bank", bank).code == 0
        assert run_nrr("patterns", "--bank", bank).code == 0
        assert run_nrr("similar", "increase LR", "--bank", bank).code == 0
        report = run_nrr("report", "--html", str(tmp_path / "r.html"), "--bank", bank)
        assert report.code == 0, report.err
        quiet = run_nrr("check", "increase LR to 0.1", "--no-record", "--bank", bank)
        assert quiet.code in (0, 1, 2) and quiet.err == ""
        recorded = run_nrr("check", "increase LR to 0.1", "--bank", bank)
        assert recorded.code in (0, 1, 2), recorded.err
        assert json.loads(recorded.out)["decision_id"] is None
        assert "read-only" in recorded.err
        refused = run_nrr("ingest", str(tmp_path / "results.tsv"), "--bank", bank)
        assert refused.code == 3 and "read-only" in refused.err
        assert len(refused.err.strip().splitlines()) == 1
    assert (home / "bank.db").read_bytes() == before


# -- what a decision stores (14) ---------------------------------------------------------------


def test_a_decision_stores_a_capped_proposal(tmp_path: Path):
    bank_path = tmp_path / "bank.db"
    _ingested(str(bank_path), tmp_path)
    huge = "increase LR to 0.1 " + "padding " * 50_000
    result = run_nrr("check", huge, "--bank", str(bank_path))
    assert result.code in (0, 1, 2)
    with sqlite3.connect(bank_path) as connection:
        proposal, answer = connection.execute(
            "SELECT proposal, answer_json FROM decisions"
        ).fetchone()
    connection.close()
    assert len(proposal) + len(answer) < 25_000
    assert proposal.startswith("increase LR to 0.1") and f"{len(huge)} characters" in proposal


def test_a_check_on_a_fitted_bank_says_when_and_on_how_much_it_was_fitted(bank_url, tmp_path):
    from core_helpers import publish_posterior
    from test_models_posterior import draws_posterior

    _ingested(bank_url, tmp_path)
    with open_bank(bank_url) as bank:
        fitted = draws_posterior(bank.experiment_table())
        fitted.meta.update(n_experiments=4)
        publish_posterior(bank, fitted)
    answer = json.loads(run_nrr("check", "increase LR to 0.1", "--bank", bank_url).out)
    assert answer["fit"]["source"] == "fit"
    assert answer["fit"]["fitted_at"] == "2026-01-01T00:00:00+00:00"
    assert answer["fit"]["n_experiments"] == 4


# -- bounded lock waits (12) -------------------------------------------------------------------


@contextmanager
def _stuck_ingest(bank_url: str):
    """An agent stuck inside its ingest transaction: it holds the bank's insert lock."""
    if bank_url.startswith("sqlite:///"):
        with _writer_holding_the_lock(bank_url):
            yield
        return
    import psycopg

    from nrr_stats.bank.schema import INSERT_LOCK_KEY

    with psycopg.connect(bank_url) as holder:
        holder.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (INSERT_LOCK_KEY,)
        )
        yield
        holder.rollback()


def test_an_ingest_behind_a_stuck_agent_gives_up_at_its_lock_timeout(bank_url, tmp_path):
    _ingested(bank_url, tmp_path)
    more = write_log(tmp_path / "more.tsv", [r.replace("a", "b", 1) for r in GOOD_ROWS])
    with _stuck_ingest(bank_url):
        started = time.monotonic()
        result = run_nrr("ingest", str(more), "--bank", bank_url, "--lock-timeout", "1.5")
        elapsed = time.monotonic() - started
    assert result.code == 3
    assert 1.0 < elapsed < 15
    last = result.err.strip().splitlines()[-1]
    assert "gave up after 1.5 s waiting for" in last and "--lock-timeout" in last
    assert ("insert lock" if "postgresql" in bank_url else "write lock") in last
    if "postgresql" in bank_url:
        assert "waiting up to 1.5 s for the bank's insert lock" in result.err
    with open_bank(bank_url) as bank:
        assert bank.count_sessions() == 1  # nothing half written
    assert run_nrr("ingest", str(more), "--bank", bank_url).code == 0  # and it goes through


# -- upgrades of a shared bank (14) ------------------------------------------------------------


def test_the_package_version_moved_past_the_one_that_could_not_tell_banks_apart():
    import nrr_stats

    assert tuple(int(x) for x in nrr_stats.__version__.split(".")[:2]) >= (0, 2)


def test_a_shared_bank_is_upgraded_only_by_nrr_migrate(bank_url, tmp_path, monkeypatch):
    from nrr_stats.bank import postgres as postgres_backend
    from nrr_stats.bank import sqlite as sqlite_backend
    from nrr_stats.bank import store
    from nrr_stats.bank.schema import MIGRATIONS, SCHEMA_VERSION

    _ingested(bank_url, tmp_path)
    target = SCHEMA_VERSION + 1
    monkeypatch.setitem(MIGRATIONS, target, ["CREATE TABLE reviewers (name TEXT)"])
    monkeypatch.setattr(store, "SCHEMA_VERSION", target)
    monkeypatch.setattr(sqlite_backend, "SCHEMA_VERSION", target)
    monkeypatch.setattr(postgres_backend, "SCHEMA_VERSION", target)
    checked = run_nrr("check", "increase LR to 0.1", "--bank", bank_url)
    if "postgresql" in bank_url:
        assert checked.code == 3 and "nrr migrate" in checked.err
        assert len(checked.err.strip().splitlines()) == 1
        migrated = run_nrr("migrate", "--bank", bank_url)
        assert migrated.code == 0, migrated.err
        assert f"schema v{target}" in migrated.out
    else:  # a local bank is upgraded with a notice saying what the upgrade does
        assert checked.code in (0, 1, 2)
        assert f"v{SCHEMA_VERSION} -> v{target}" in checked.err
    with open_bank(bank_url) as bank:
        assert bank.schema_version() == target
        versions = bank.query("SELECT value FROM meta WHERE key = 'nrr_version'")
        import nrr_stats

        assert versions == [{"value": nrr_stats.__version__}]


def test_a_sqlite_ingest_says_what_it_waits_for(tmp_path):
    bank_url = f"sqlite:///{tmp_path / 'bank.db'}"
    _ingested(bank_url, tmp_path)
    more = write_log(tmp_path / "more.tsv", [r.replace("a", "c", 1) for r in GOOD_ROWS])
    with _stuck_ingest(bank_url):
        result = run_nrr("ingest", str(more), "--bank", bank_url, "--lock-timeout", "8")
    assert result.code == 3
    assert "waiting up to 8 s for the bank's write lock" in result.err
    assert "gave up after 8 s" in result.err.strip().splitlines()[-1]
