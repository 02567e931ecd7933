"""Sessions: two loops' results.tsv stay apart and are named by id, name or path; an
ambiguous --session is refused with its candidates; `nrr sessions` in every format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from core_helpers import GOOD_ROWS, run_nrr, write_log

from nrr_stats.sessions import keep_rate_interval


@pytest.fixture()
def two_loops(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two loops, each writing its own results.tsv (different runs), in one bank."""
    (tmp_path / "loop-a").mkdir()
    (tmp_path / "loop-b").mkdir()
    a = write_log(tmp_path / "loop-a" / "results.tsv", GOOD_ROWS)
    b = write_log(
        tmp_path / "loop-b" / "results.tsv",
        ["b1\t1.100\t40.0\tkeep\tbaseline", "b2\t1.200\t40.0\tdiscard\tincrease LR to 0.04"],
    )
    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(a), str(b), "--bank", str(bank)).code == 0
    return bank, a, b


def _sessions(bank: Path) -> list[dict]:
    run = run_nrr("sessions", "--bank", str(bank), "--format", "json")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_an_ambiguous_session_is_refused_with_its_candidates(two_loops) -> None:
    bank, a, b = two_loops
    listed = _sessions(bank)
    assert [s["name"] for s in listed] == ["results.tsv", "results.tsv"]
    run = run_nrr("check", "increase LR to 0.08", "--bank", str(bank), "--session", "results.tsv")
    assert run.code == 3 and run.out == ""
    assert "ambiguous" in run.err and str(a) in run.err and str(b) in run.err
    assert len(run.err.strip().splitlines()) == 1


@pytest.mark.parametrize("how", ["id", "path", "relative path"])
def test_a_session_is_named_by_id_or_path(two_loops, how: str, monkeypatch) -> None:
    bank, a, b = two_loops
    second = _sessions(bank)[1]
    assert second["path"] == str(b.resolve())
    if how == "relative path":
        monkeypatch.chdir(b.parent.parent)
    reference = {"id": str(second["id"]), "path": str(b), "relative path": "loop-b/results.tsv"}[
        how
    ]
    run = run_nrr("check", "increase LR to 0.08", "--bank", str(bank), "--session", reference)
    assert run.code in (0, 1, 2), run.err
    answer = json.loads(run.out)
    assert answer["bank"]["session"] == "results.tsv"
    # The answer is for loop b: its base rate counts loop b's single failed experiment.
    other = run_nrr("check", "increase LR to 0.08", "--bank", str(bank), "--session", str(a))
    assert json.loads(other.out)["base_rate"] != answer["base_rate"]


def test_session_name_keeps_identical_logs_apart(tmp_path: Path) -> None:
    bank = tmp_path / "bank.db"
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        log = write_log(tmp_path / name / "results.tsv", GOOD_ROWS)
        assert run_nrr("ingest", str(log), "--bank", str(bank), "--session-name", name).code == 0
    listed = _sessions(bank)
    assert [(s["name"], s["rows"]) for s in listed] == [("alpha", 5), ("beta", 5)]
    run = run_nrr("check", "increase LR to 0.08", "--bank", str(bank), "--session", "beta")
    assert run.code in (0, 1, 2) and json.loads(run.out)["bank"]["session"] == "beta"
    again = run_nrr(
        "ingest",
        str(tmp_path / "beta" / "results.tsv"),
        "--bank",
        str(bank),
        "--session-name",
        "beta",
        "--json",
    )
    assert json.loads(again.out)["rows_added"] == 0  # idempotent under its name


def test_sessions_lists_counts_rates_and_intervals_in_every_format(two_loops) -> None:
    bank, a, _ = two_loops
    first = _sessions(bank)[0]
    # GOOD_ROWS: a baseline, then keep, discard, crash, discard: 4 experiments, 1 kept.
    assert (first["rows"], first["experiments"], first["keeps"], first["crashes"]) == (5, 4, 1, 1)
    assert first["keep_rate"] == 0.25
    low, high = first["interval"]
    assert 0.0 < low < 0.25 < high < 1.0
    assert first["updated_at"] and first["path"] == str(a.resolve())
    tsv = run_nrr("sessions", "--bank", str(bank), "--format", "tsv").out
    rows = list(csv.DictReader(io.StringIO(tsv), delimiter="\t"))
    assert [int(r["id"]) for r in rows] == [1, 2] and rows[0]["keep_rate"] == "0.25"
    jsonl = run_nrr("sessions", "--bank", str(bank), "--json").out.splitlines()
    assert [json.loads(line)["id"] for line in jsonl] == [1, 2]
    table = run_nrr("sessions", "--bank", str(bank)).out
    assert "0.25 [" in table and "results.tsv" in table
    bad = run_nrr("sessions", "--bank", str(bank), "--format", "xml")
    assert bad.code == 3 and "--format" in bad.err


def test_keep_rate_interval_laws() -> None:
    assert keep_rate_interval(0, 0) == (None, None)
    low, high = keep_rate_interval(0, 10)
    assert low == 0.0 and 0.0 < high < 0.3
    # More experiments at the same rate narrow the interval around it.
    few, many = keep_rate_interval(2, 10), keep_rate_interval(20, 100)
    assert few[0] < many[0] < 0.2 < many[1] < few[1]
