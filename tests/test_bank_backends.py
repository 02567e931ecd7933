"""The bank behaves the same on SQLite and PostgreSQL: storage, idempotence, transactions, schema versions."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nrr_stats.bank.postgres as postgres_backend
import nrr_stats.bank.sqlite as sqlite_backend
import nrr_stats.bank.store as store
from nrr_stats.bank import open_bank
from nrr_stats.bank.schema import MIGRATIONS, SCHEMA_VERSION
from nrr_stats.bank.testing import synthetic_rows, synthetic_session
from nrr_stats.errors import NrrInputError


def _stored(bank, session_id):
    return [{k: row[k] for k in store.EXPERIMENT_COLUMNS} for row in bank.experiments(session_id)]


def test_rows_read_back_as_written(bank):
    session_id, created = bank.upsert_session(synthetic_session("s1"))
    rows = synthetic_rows(session_id, 40)
    with bank.transaction():
        assert bank.insert_experiments(rows) == 40
    assert created
    assert _stored(bank, session_id) == rows
    assert bank.count_experiments() == 40
    assert [s["session_key"] for s in bank.sessions()] == ["s1"]


def test_same_log_twice_is_stored_once(bank):
    first_id, first_created = bank.upsert_session(synthetic_session("s1"))
    bank.insert_experiments(synthetic_rows(first_id, 30))
    again_id, again_created = bank.upsert_session(synthetic_session("s1"))
    assert (again_id, again_created) == (first_id, False)
    # The log grew by 10 rows: only those are new.
    assert bank.insert_experiments(synthetic_rows(again_id, 40)) == 10
    assert bank.count_experiments() == 40


def test_failed_transaction_writes_nothing(bank):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), bank.transaction():
        session_id, _ = bank.upsert_session(synthetic_session("s1"))
        bank.insert_experiments(synthetic_rows(session_id, 25))
        raise Boom
    assert bank.count_experiments() == 0
    assert bank.sessions() == []


def test_nested_transaction_joins_the_outer_one(bank):
    with pytest.raises(RuntimeError), bank.transaction():
        session_id, _ = bank.upsert_session(synthetic_session("s1"))
        with bank.transaction():
            bank.insert_experiments(synthetic_rows(session_id, 5))
        raise RuntimeError("outer fails after inner finished")
    assert bank.count_experiments() == 0


def test_outcomes_update_by_ordinal(bank):
    session_id, _ = bank.upsert_session(synthetic_session("s1"))
    bank.insert_experiments(synthetic_rows(session_id, 3))
    bank.update_outcomes(session_id, {1: ("improved", -0.5), 2: (None, None)})
    stored = {r["ordinal"]: (r["outcome"], r["delta"]) for r in bank.experiments(session_id)}
    assert stored[1] == ("improved", -0.5)
    assert stored[2] == (None, None)
    assert stored[0] != ("improved", -0.5)


def test_decisions_are_recorded(bank):
    session_id, _ = bank.upsert_session(synthetic_session("s1"))
    first = bank.record_decision("raise lr", session_id, {"verdict": "caution", "p_keep": 0.2})
    second = bank.record_decision("drop dropout", None, {"verdict": "proceed", "p_keep": 0.7})
    rows = bank.query("SELECT id, verdict, p_keep, session_id FROM decisions ORDER BY id")
    assert [(r["id"], r["verdict"], r["session_id"]) for r in rows] == [
        (first, "caution", session_id),
        (second, "proceed", None),
    ]
    assert rows[0]["p_keep"] == pytest.approx(0.2)


def test_literal_question_marks_and_percents_survive_the_placeholder_seam(bank):
    row = bank.query("SELECT '100% sure?' AS text, ? AS value, 'it''s ?' AS quoted", ("a?b%s",))[0]
    assert row == {"text": "100% sure?", "value": "a?b%s", "quoted": "it's ?"}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        max_size=300,
    )
)
def test_any_text_is_stored_byte_for_byte(bank, text):
    session_id, _ = bank.upsert_session(synthetic_session("s1"))
    row = synthetic_rows(session_id, 1, start=1)[0] | {"description": text, "raw_status": text}
    bank.execute("DELETE FROM experiments")
    bank.insert_experiments([row])
    stored = bank.experiments(session_id)[0]
    assert stored["description"].encode() == text.encode()
    assert stored["raw_status"] == text


def test_nul_bytes_are_kept_on_sqlite_and_refused_whole_on_postgresql(bank):
    session_id, _ = bank.upsert_session(synthetic_session("s1"))
    rows = synthetic_rows(session_id, 3)
    rows[1]["description"] = "before\x00after"
    if bank.location.backend == "sqlite":
        bank.insert_experiments(rows)
        assert bank.experiments(session_id)[1]["description"] == "before\x00after"
        return
    with pytest.raises(NrrInputError, match="NUL|0x00"), bank.transaction():
        bank.insert_experiments(rows)
    assert bank.count_experiments() == 0


# -- schema versions ----------------------------------------------------------------------


def test_a_newer_bank_is_refused_and_left_alone(bank_url):
    with open_bank(bank_url) as bank:
        session_id, _ = bank.upsert_session(synthetic_session("s1"))
        bank.insert_experiments(synthetic_rows(session_id, 5))
        bank.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    with pytest.raises(NrrInputError, match=r"newer than this nrr-stats.*upgrade nrr-stats"):
        open_bank(bank_url)
    _force_version(bank_url, SCHEMA_VERSION)
    with open_bank(bank_url) as bank:
        assert bank.count_experiments() == 5


def _force_version(url, version):
    """Rewrite the stored version without opening through the (refusing) Bank."""
    from nrr_stats.bank import resolve_bank

    location = resolve_bank(url)
    if location.backend == "sqlite":
        import sqlite3

        with sqlite3.connect(location.path) as connection:
            connection.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
            )
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(version),)
        )


@pytest.fixture
def next_schema_version(monkeypatch):
    """Pretend this nrr-stats knows a schema version 2 whose statements the test chooses."""
    target = SCHEMA_VERSION + 1

    def define(statements):
        monkeypatch.setitem(MIGRATIONS, target, statements)
        monkeypatch.setattr(store, "SCHEMA_VERSION", target)
        monkeypatch.setattr(sqlite_backend, "SCHEMA_VERSION", target)
        monkeypatch.setattr(postgres_backend, "SCHEMA_VERSION", target)
        return target

    return define


def test_an_older_bank_is_upgraded_in_place(bank_url, next_schema_version):
    with open_bank(bank_url) as bank:
        session_id, _ = bank.upsert_session(synthetic_session("s1"))
        before = synthetic_rows(session_id, 7)
        bank.insert_experiments(before)
    target = next_schema_version(
        ["ALTER TABLE experiments ADD COLUMN reviewer TEXT NOT NULL DEFAULT 'none'"]
    )
    if bank_url.startswith("postgresql"):
        # A shared bank is upgraded only when asked (`nrr migrate`): older agents share it.
        with pytest.raises(NrrInputError, match="nrr migrate"):
            open_bank(bank_url)
    with open_bank(bank_url, upgrade=True) as bank:
        assert bank.schema_version() == target
        after = bank.experiments(session_id)
        assert [{k: r[k] for k in store.EXPERIMENT_COLUMNS} for r in after] == before
        assert {r["reviewer"] for r in after} == {"none"}


def test_a_failing_upgrade_leaves_the_old_bank_intact(bank_url, next_schema_version, monkeypatch):
    with open_bank(bank_url) as bank:
        session_id, _ = bank.upsert_session(synthetic_session("s1"))
        bank.insert_experiments(synthetic_rows(session_id, 4))
    next_schema_version(
        [
            "ALTER TABLE experiments ADD COLUMN reviewer TEXT",
            "ALTER TABLE no_such_table ADD COLUMN x TEXT",
        ]
    )
    with pytest.raises(NrrInputError):
        open_bank(bank_url, upgrade=True)
    monkeypatch.undo()  # this nrr-stats again
    with open_bank(bank_url) as bank:
        assert bank.schema_version() == SCHEMA_VERSION
        assert "reviewer" not in bank.experiments(session_id)[0]
        assert bank.count_experiments() == 4


def test_a_bank_without_a_meta_table_is_created(bank_url):
    with open_bank(bank_url) as bank:
        assert bank.schema_version() == SCHEMA_VERSION
        tables = {"sessions", "experiments", "decisions", "fits", "nk_records", "record_events"}
        for table in tables:
            assert bank.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] == 0


# -- addresses and secrets ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql://agent:hunter2@127.0.0.1:1/bank", "hunter2"),
        ("postgresql://agent:p%40ss%2Fw0rd@127.0.0.1:1/bank", "p@ss/w0rd"),
        ("postgresql://:hunter2@127.0.0.1:1/bank", "hunter2"),
        ("postgresql://agent@127.0.0.1:1/bank?password=hunter2&sslmode=disable", "hunter2"),
    ],
)
def test_an_unreachable_server_is_one_line_without_the_password(url, secret):
    with pytest.raises(NrrInputError) as caught:
        open_bank(url)
    message = caught.value.one_line()
    assert "cannot connect to bank" in message
    assert "127.0.0.1" in message
    assert secret not in message
    assert secret.replace("@", "%40").replace("/", "%2F") not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://agent:hunter2@db.lab:5432/bank", "postgresql://agent:***@db.lab:5432/bank"),
        ("postgresql://:hunter2@db.lab/bank", "postgresql://:***@db.lab/bank"),
        (
            "postgresql://agent@db.lab/bank?password=hunter2&sslmode=require",
            "postgresql://agent@db.lab/bank?password=***&sslmode=require",
        ),
        ("postgresql://agent:hun@ter2@db.lab/bank", "postgresql://agent:***@db.lab/bank"),
        ("postgresql://db.lab/bank", "postgresql://db.lab/bank"),
    ],
)
def test_displayed_bank_urls_hide_the_password(url, shown):
    from nrr_stats.bank import redact_url

    assert redact_url(url) == shown


def test_placeholders_become_pyformat_outside_quotes_only():
    convert = postgres_backend.to_pyformat
    assert (
        convert("SELECT ? , '?', \"a?\" , ? WHERE x LIKE '5%'")
        == "SELECT %s , '?', \"a?\" , %s WHERE x LIKE '5%%'"
    )


# -- snapshots and opening --------------------------------------------------------------------


def test_a_snapshot_does_not_see_rows_committed_after_it_began(bank_url):
    with open_bank(bank_url) as reader, open_bank(bank_url) as writer:
        session_id, _ = writer.upsert_session(synthetic_session("s1"))
        writer.insert_experiments(synthetic_rows(session_id, 10))
        with reader.snapshot():
            assert reader.count_experiments() == 10
            with writer.transaction():
                assert writer.insert_experiments(synthetic_rows(session_id, 25)) == 15
            assert reader.count_experiments() == 10
            assert len(reader.experiments()) == 10
        assert reader.count_experiments() == 25


def test_opening_without_create_refuses_a_missing_bank(bank_url):
    with pytest.raises(NrrInputError, match="no bank here yet"):
        open_bank(bank_url, create=False)
    open_bank(bank_url).close()
    with open_bank(bank_url, create=False) as bank:
        assert bank.schema_version() == SCHEMA_VERSION


def test_a_swallowed_error_never_turns_into_a_silent_partial_commit(bank):
    """PostgreSQL aborts a transaction at its first failed statement; COMMIT must not pretend."""
    if bank.location.backend == "sqlite":
        pytest.skip("SQLite keeps a transaction usable after a failed statement")
    session_id, _ = bank.upsert_session(synthetic_session("s1"))
    with pytest.raises(NrrInputError, match="nothing was written"), bank.transaction():
        bank.insert_experiments(synthetic_rows(session_id, 2))
        with contextlib.suppress(Exception):  # a caller that ignores the failure
            bank.execute("INSERT INTO no_such_table (x) VALUES (?)", (1,))
    assert bank.count_experiments() == 0
