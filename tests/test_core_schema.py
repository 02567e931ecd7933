"""Schema versioning: a bank written by an older nrr-stats is upgraded in place, its data kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core_helpers import SEED_LOG, run_nrr

from nrr_stats.bank import open_bank
from nrr_stats.bank.schema import MIGRATIONS, SCHEMA_VERSION


def _version_one_bank(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for statement in MIGRATIONS[1]:
            connection.execute(statement.format(id="INTEGER PRIMARY KEY AUTOINCREMENT"))
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        connection.execute(
            "INSERT INTO sessions (session_key, name, source_path, metric_name, metric_direction,"
            " direction_source, header_json, created_at, updated_at)"
            " VALUES ('k', 'old.tsv', 'old.tsv', 'val_bpb', 'lower', 'name', '[]', 't', 't')"
        )


def test_a_version_one_bank_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    _version_one_bank(path)
    with open_bank(path) as bank:
        assert bank.schema_version() == SCHEMA_VERSION
        (session,) = bank.sessions()
        assert session["name"] == "old.tsv" and session["tracker_state"] == "{}"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(path)).code == 0
    answer = run_nrr(
        "check", "Increase LR to 0.02", "--bank", str(path), "--session", "seed_results.tsv"
    )
    assert answer.code in (0, 1, 2), answer.err


def test_the_tracker_state_lets_check_resume_the_kept_config(tmp_path: Path) -> None:
    bank_path = tmp_path / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank_path)).code == 0
    with open_bank(bank_path) as bank:
        from nrr_stats.check import session_tracker

        tracker = session_tracker(bank, bank.sessions()[0], None)
    # The last kept change set weight decay to 5e-5; the learning rate stayed 0.01 throughout.
    assert (
        tracker.current.get("WEIGHT_DECAY") == "5e-5"
    )  # the discarded 5e-5 -> 2e-5 did not move it
    assert tracker.current.get("LEARNING_RATE") == "0.01"


def test_a_version_two_bank_gains_the_evidence_revision(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for version in (1, 2):
            for statement in MIGRATIONS[version]:
                connection.execute(statement.format(id="INTEGER PRIMARY KEY AUTOINCREMENT"))
        connection.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(path)).code == 0
    with open_bank(path) as bank:
        assert bank.schema_version() == SCHEMA_VERSION
        revision, last = bank.evidence_state()
        assert revision == 0 and last > 0
        with bank.transaction():
            bank.execute("UPDATE experiments SET evidence_weight = 0.5")
        assert bank.evidence_state()[0] > 0  # SQLite counts rows, PostgreSQL statements
