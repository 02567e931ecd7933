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
