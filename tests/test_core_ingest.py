"""`nrr ingest` into a SQLite bank: idempotence, transactions, round trip, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from core_helpers import GOOD_ROWS, HEADER, SEED_LOG, bank_snapshot, run_nrr, write_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.bank import open_bank
from nrr_stats.bank.export import export_session_tsv
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.ingest import read_results_log


def test_ingest_twice_equals_ingest_once(tmp_path: Path) -> None:
    bank = tmp_path / "bank.db"
    first = run_nrr("ingest", str(SEED_LOG), "--bank", str(bank), "--json")
    assert first.code == 0, first.err
    summary = json.loads(first.out)
    assert summary["rows_added"] == 21
    before = bank_snapshot(bank)
    second = run_nrr("ingest", str(SEED_LOG), "--bank", str(bank), "--json")
    assert json.loads(second.out)["rows_added"] == 0
    assert json.loads(second.out)["rows_already_present"] == 21
    assert bank_snapshot(bank) == before


def test_a_grown_log_adds_only_its_new_rows(tmp_path: Path) -> None:
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS[:3])
    bank = tmp_path / "bank.db"
    assert (
        json.loads(run_nrr("ingest", str(log), "--bank", str(bank), "--json").out)["rows_added"]
        == 3
    )
    write_log(log, GOOD_ROWS)
    again = json.loads(run_nrr("ingest", str(log), "--bank", str(bank), "--json").out)
    assert (again["rows_added"], again["rows_already_present"]) == (2, 3)
    with open_bank(bank) as opened:
        assert len(opened.sessions()) == 1
        assert [row["row_number"] for row in opened.experiments()] == [1, 2, 3, 4, 5]


def test_summary_names_metric_direction_and_counts(tmp_path: Path) -> None:
    run = run_nrr("ingest", str(SEED_LOG), "--bank", str(tmp_path / "b.db"), "--json")
    summary = json.loads(run.out)
    assert summary["metric"] == "val_accuracy"
    assert summary["metric_direction"] == "higher"
    # The first row (the baseline) only sets the reference metric: it is not a keep.
    assert summary["status_counts"] == {"other": 1, "keep": 2, "discard": 16, "crash": 2}


def test_export_round_trips_through_the_reader(tmp_path: Path) -> None:
    with open_bank(tmp_path / "b.db") as bank:
        summary = ingest_log(bank, SEED_LOG)
        exported = tmp_path / "exported.tsv"
        exported.write_text(export_session_tsv(bank, summary.session_id), encoding="utf-8")
    original, again = read_results_log(SEED_LOG), read_results_log(exported)
    assert [(r.status, r.description, r.metric, r.experiment_id) for r in original.rows] == [
        (r.status, r.description, r.metric, r.experiment_id) for r in again.rows
    ]
    assert original.session_key == again.session_key


_safe_text = (
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\t\"'#"
        ),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(lambda s: s and not s.startswith(("-", "=", "#")))
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["keep", "discard", "crash"]), st.floats(0.5, 2.0), _safe_text),
        min_size=1,
        max_size=12,
    )
)
def test_ingest_then_export_round_trips(tmp_path_factory: pytest.TempPathFactory, rows) -> None:
    """Any well-formed log survives ingest and export: same statuses, descriptions and metrics."""
    folder = tmp_path_factory.mktemp("rt")
    lines = [
        f"c{i}\t{metric:.6f}\t1.0\t{status}\t{text}"
        for i, (status, metric, text) in enumerate(rows)
    ]
    log = write_log(folder / "results.tsv", ["c_base\t1.000000\t1.0\tkeep\tbaseline", *lines])
    with open_bank(folder / "b.db") as bank:
        summary = ingest_log(bank, log)
        exported = folder / "exported.tsv"
        exported.write_text(export_session_tsv(bank, summary.session_id), encoding="utf-8")
        stored = bank.experiments(summary.session_id)
    again = read_results_log(exported)
    assert [r.description for r in again.rows] == [row["description"] for row in stored]
    assert [r.raw_status for r in again.rows] == [row["raw_status"] for row in stored]
    assert [row["status"] for row in stored] == ["other"] + [status for status, _, _ in rows]


def test_several_files_are_one_transaction(tmp_path: Path) -> None:
    good = write_log(tmp_path / "good.tsv", GOOD_ROWS)
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    bank = tmp_path / "bank.db"
    run = run_nrr("ingest", str(good), str(empty), "--bank", str(bank))
    assert run.code == 3
    with open_bank(bank) as opened:
        assert opened.count_experiments() == 0


# -- bad input: one line naming the file (and line), exit 3, bank unchanged -----------------


def _assert_refused(run, path: Path, bank: Path, before: list, line: int | None = None) -> None:
    assert run.code == 3, (run.out, run.err)
    assert "Traceback" not in run.err
    message = run.err.strip()
    assert len(message.splitlines()) == 1, message
    assert str(path) in message
    if line is not None:
        assert f":{line}:" in message
    assert bank_snapshot(bank) == before


@pytest.fixture
def seeded_bank(tmp_path: Path) -> tuple[Path, list]:
    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank, bank_snapshot(bank)


def _bad_file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


FILE_FAULTS = {
    "empty": b"",
    "header_only": HEADER.encode(),
    "no_status_column": b"commit\tval_bpb\tdescription\na1\t1.0\tbaseline\na2\t0.9\tincrease LR\n",
    "no_description_column": b"commit\tval_bpb\tstatus\na1\t1.0\tkeep\na2\t0.9\tdiscard\n",
    "no_columns_found": b"alpha,beta\n1,2\n3,4\n",
    "undecodable": HEADER.encode() + b"a1\t1.0\t1.0\tkeep\tbase\x00\x01line\n",
}


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS))
def test_file_fault_is_refused(tmp_path: Path, seeded_bank, fault: str) -> None:
    bank, before = seeded_bank
    path = _bad_file(tmp_path, f"{fault}.tsv", FILE_FAULTS[fault])
    for mode in ((), ("--strict",)):
        run = run_nrr("ingest", str(path), "--bank", str(bank), *mode)
        if fault == "undecodable" and not mode:
            # A bad row in the default mode is skipped and reported; nothing else was good.
            assert run.code == 3, run.err
            assert bank_snapshot(bank) == before
            continue
        _assert_refused(run, path, bank, before)


ROW_FAULTS = {
    "ragged_row": ("a9\t0.98\t44.0", 5),
    "huge_description": ("a9\t0.98\t44.0\tdiscard\t" + "x" * 1_000_000, 5),
}


@pytest.mark.parametrize("fault", sorted(ROW_FAULTS))
def test_row_fault_strict_writes_nothing(tmp_path: Path, seeded_bank, fault: str) -> None:
    bank, before = seeded_bank
    bad_row, line = ROW_FAULTS[fault]
    path = write_log(tmp_path / f"{fault}.tsv", [*GOOD_ROWS[:3], bad_row, GOOD_ROWS[3]])
    _assert_refused(
        run_nrr("ingest", str(path), "--bank", str(bank), "--strict"), path, bank, before, line
    )


@pytest.mark.parametrize("fault", sorted(ROW_FAULTS))
def test_row_fault_default_keeps_the_good_rows(tmp_path: Path, seeded_bank, fault: str) -> None:
    bank, _ = seeded_bank
    bad_row, line = ROW_FAULTS[fault]
    path = write_log(tmp_path / f"{fault}.tsv", [*GOOD_ROWS[:3], bad_row, GOOD_ROWS[3]])
    run = run_nrr("ingest", str(path), "--bank", str(bank), "--json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["rows_added"] == 4
    assert [skip["line"] for skip in summary["rows_skipped"]] == [line]
    assert f"{path}:{line}:" in run.err


def test_directory_and_missing_path_are_refused(tmp_path: Path, seeded_bank) -> None:
    bank, before = seeded_bank
    _assert_refused(run_nrr("ingest", str(tmp_path), "--bank", str(bank)), tmp_path, bank, before)
    missing = tmp_path / "nope.tsv"
    _assert_refused(run_nrr("ingest", str(missing), "--bank", str(bank)), missing, bank, before)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_bank_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        run = run_nrr("ingest", str(SEED_LOG), "--bank", str(locked / "sub" / "bank.db"))
        assert run.code == 3 and "bank" in run.err and len(run.err.strip().splitlines()) == 1
    finally:
        locked.chmod(0o700)


def test_bank_path_that_is_a_directory_or_under_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a directory", encoding="utf-8")
    for target in (tmp_path, a_file / "bank.db"):
        run = run_nrr("ingest", str(SEED_LOG), "--bank", str(target))
        assert run.code == 3, run.err
        assert str(target) in run.err and "Traceback" not in run.err
    assert a_file.read_text(encoding="utf-8") == "not a directory"


def test_forked_logs_with_one_baseline_are_two_sessions(tmp_path: Path) -> None:
    """Two loops forked from one baseline share header and first row, yet are different logs."""
    first = write_log(tmp_path / "fork_a.tsv", GOOD_ROWS[:3])
    second = write_log(
        tmp_path / "fork_b.tsv", [GOOD_ROWS[0], "b2\t0.97\t44.0\tkeep\tadd dropout 0.1"]
    )
    bank = tmp_path / "bank.db"
    for log in (first, second, first, second):
        assert run_nrr("ingest", str(log), "--bank", str(bank)).code == 0
    with open_bank(bank) as opened:
        sessions = opened.sessions()
        assert len(sessions) == 2
        assert sessions[1]["session_key"] == sessions[0]["session_key"] + "#2"
        assert [len(opened.experiments(s["id"])) for s in sessions] == [3, 2]


def test_two_rows_run_together_are_both_stored(tmp_path: Path) -> None:
    log = write_log(
        tmp_path / "joined.tsv",
        [
            *GOOD_ROWS[:2],
            "a3\t1.010\t44.0\tdiscard\tswitch to GeLU activationa4\t0.000\t0.0\tcrash\tdouble model width",
        ],
    )
    with open_bank(tmp_path / "bank.db") as bank:
        summary = ingest_log(bank, log)
        stored = bank.experiments(summary.session_id)
    assert summary.rows_added == len(stored) == 4
    assert [row["row_number"] for row in stored] == [1, 2, 3, 3]  # one line, one row number
    assert [row["description"] for row in stored][2:] == [
        "switch to GeLU activation",
        "double model width",
    ]


def test_repairs_are_stored_and_said(tmp_path: Path, seeded_bank) -> None:
    """A discard with a non-numeric metric and a Latin-1 line are stored, each repair named in
    the summary and warned on stderr, and nothing is skipped (issue 13)."""
    bank, _ = seeded_bank
    path = write_log(tmp_path / "repaired.tsv", [*GOOD_ROWS[:3], "a9\tfast\t44.0\tdiscard\ttry"])
    path.write_bytes(path.read_bytes().replace(b"try", b"try the caf\xe9 schedule"))
    run = run_nrr("ingest", str(path), "--bank", str(bank), "--json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["rows_added"] == 4 and summary["rows_skipped"] == []
    assert summary["columns"]["status"] == "status"
    repairs = summary["repairs"]
    assert any("without a metric" in r for r in repairs), repairs
    assert any("not valid UTF-8" in r and "cp1252" in r for r in repairs), repairs
    assert run.err.count("warning:") == 2
    with open_bank(str(bank)) as opened:
        stored = [e for e in opened.experiments() if e["description"].startswith("try the")]
    assert [(e["description"], e["metric"], e["status"]) for e in stored] == [
        ("try the café schedule", None, "discard")
    ]
