"""Laws of the dialect classes (issue 13): a log rewritten into another class reads back as the
same experiments, and the rewrite is said in the repairs.

- a field added to every data row just before the status, the header untouched;
- the status split into a run status and a separate decision (ok/crash + promote/reject);
- the file written in Windows-1252 instead of UTF-8.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.ingest import read_results_log

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
# Tab-separated fixtures with a header on line 1 and one row per line.
BASES = [
    "kept_yes_no.tsv",
    "keep_column_yes_no.tsv",
    "status_last_column.tsv",
    "status_second_column.tsv",
    "uppercase_statuses.tsv",
    "experiment_desc_and_notes.tsv",
    "change_and_notes.tsv",
    "kept_reverted_na_metric.tsv",
    "crlf.tsv",
]
DECISION = {"keep": "promote", "discard": "reject"}


def _experiments(path: Path) -> list[tuple]:
    return [(r.status, r.description, r.metric) for r in read_results_log(path).rows]


def _lines(name: str) -> list[str]:
    return (LOGS / name).read_bytes().decode("utf-8").replace("\r\n", "\n").splitlines()


def _read_text(text: str, encoding: str = "utf-8"):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rewritten.tsv"
        path.write_bytes(text.encode(encoding))
        return read_results_log(path), _experiments(path)


@given(st.sampled_from(BASES), st.integers(0, 10**6), st.booleans())
@settings(max_examples=40, deadline=None)
def test_a_field_added_before_the_status_on_every_row(name: str, value: int, decimal: bool) -> None:
    original = read_results_log(LOGS / name)
    status = original.header.index(original.columns["status"])
    lines = _lines(name)
    extra = f"{value / 100:.2f}" if decimal else str(value)
    widened = [lines[0]] + [
        "\t".join((cells := line.split("\t"))[:status] + [extra] + cells[status:])
        for line in lines[1:]
    ]
    log, got = _read_text("\n".join(widened) + "\n")
    assert got == _experiments(LOGS / name)
    assert any("header names" in note for note in log.repairs)
    assert log.columns["description"] == original.columns["description"]


@given(st.sampled_from(BASES))
@settings(max_examples=20, deadline=None)
def test_a_status_split_into_run_status_and_decision(name: str) -> None:
    original = read_results_log(LOGS / name)
    status = original.header.index(original.columns["status"])
    by_line = {row.line_number: row for row in original.rows}
    lines = _lines(name)
    split = []
    for number, line in enumerate(lines, start=1):
        cells = line.split("\t")
        if number == 1:
            pair = ["run_status", "decision"]
        else:
            row = by_line[number]
            run = "crash" if row.status == "crash" else "ok"
            decided = "" if row.status == "crash" else DECISION.get(row.status, row.raw_status)
            pair = [run, decided]
        split.append("\t".join(cells[:status] + pair + cells[status + 1 :]))
    log, got = _read_text("\n".join(split) + "\n")
    assert got == _experiments(LOGS / name)
    assert (log.columns["status"], log.columns["decision"]) == ("run_status", "decision")


@given(st.sampled_from(BASES))
@settings(max_examples=20, deadline=None)
def test_a_log_written_in_windows_1252(name: str) -> None:
    text = "\n".join(_lines(name)) + "\n"
    encodable = text.encode("cp1252", errors="replace").decode("cp1252")
    log, got = _read_text(encodable, "cp1252")
    _, want = _read_text(encodable)
    assert got == want
    assert any("not valid UTF-8" in note for note in log.repairs) == (not encodable.isascii())
