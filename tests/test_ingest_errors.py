"""Bad input: file-level faults raise NrrInputError naming file and line; row faults become BadRows."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log

HEADER = b"commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
GOOD = [
    b"a1b2c3d\t0.9979\t44.0\tkeep\tbaseline\n",
    b"b2c3d4e\t0.9932\t44.2\tkeep\tincrease LR to 0.04\n",
    b"c3d4e5f\t1.0050\t44.0\tdiscard\tswitch to GeLU activation\n",
    b"d4e5f6a\t0.0000\t0.0\tcrash\tdouble model width (OOM)\n",
]


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _raises(path: Path, line: int | None) -> NrrInputError:
    with pytest.raises(NrrInputError) as caught:
        read_results_log(path)
    error = caught.value
    message = str(error)
    assert str(path) in message and "\n" not in message
    assert error.line == line
    if line is not None:
        assert f"{path}:{line}:" in message
    return error


@pytest.mark.parametrize(
    ("name", "content", "line", "words"),
    [
        ("empty.tsv", b"", None, "empty"),
        ("blank.tsv", b"\n  \n\t\n", None, "empty"),
        ("comments_only.tsv", b"# metric_direction: lower\n# nothing else\n", None, "no header"),
        ("header_only.tsv", HEADER, 1, "header only"),
        ("header_then_comments.tsv", b"# a log\n" + HEADER + b"\n# later\n", 2, "header only"),
        (
            "no_status.tsv",
            b"commit\tval_bpb\tdescription\na1\t1.0\tbaseline\na2\t0.9\tincrease LR\n",
            1,
            "status",
        ),
        (
            "no_description.tsv",
            b"commit\tval_bpb\tstatus\na1\t1.0\tkeep\na2\t0.9\tdiscard\n",
            1,
            "description",
        ),
        ("no_columns.csv", b"alpha,beta\n1,2\n3,4\n", 1, "status"),
        ("empty_pipe_header.md", b"|\na|b\n", 1, "no columns"),
        ("binary.tsv", b"\x00\x01\x02\xff\xfe\x80\x81\n\x90\x91", 1, "undecodable"),
    ],
)
def test_file_level_faults_raise(
    tmp_path: Path, name: str, content: bytes, line: int | None, words: str
) -> None:
    error = _raises(_write(tmp_path, name, content), line)
    assert words in error.message


def test_directory_and_missing_path(tmp_path: Path) -> None:
    assert "directory" in _raises(tmp_path, None).message
    assert "no such file" in _raises(tmp_path / "missing.tsv", None).message


def test_unknown_metric_flag_and_bad_direction_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, "log.tsv", HEADER + b"".join(GOOD))
    with pytest.raises(NrrInputError, match="val_loss"):
        read_results_log(path, metric="val_loss")
    with pytest.raises(NrrInputError, match="sideways"):
        read_results_log(path, direction="sideways")


def _bad_rows(tmp_path: Path, bad_line: bytes, **kwargs):
    path = _write(tmp_path, "log.tsv", HEADER + GOOD[0] + GOOD[1] + bad_line + GOOD[2] + GOOD[3])
    return read_results_log(path, **kwargs)


@pytest.mark.parametrize(
    ("bad_line", "words"),
    [
        (b"e5f6a7b\t0.98\t44.0\n", "ragged"),  # the status and description are missing
        (b"e5f6a7b\t0.98\n", "ragged"),
        (b"e5f6a7b\t0.98x1\t44.0\tkeep\ttry\n", None),  # leading number: read as 0.98, not bad
        (b"e5f6a7b\t0.98\t44.0\tdiscard\t" + b"x" * 1_000_000 + b"\n", "over the 65536-byte limit"),
        (b"e5f6a7b\t0.98\t44.0\tdiscard\tbad \x00\x01 bytes\n", "undecodable"),
    ],
)
def test_row_level_faults_become_bad_rows(
    tmp_path: Path, bad_line: bytes, words: str | None
) -> None:
    log = _bad_rows(tmp_path, bad_line)
    if words is None:
        assert log.bad_rows == [] and len(log.rows) == 5
        assert log.rows[2].metric == pytest.approx(0.98)
        return
    assert [(b.line_number, b.row_number) for b in log.bad_rows] == [(4, 3)]
    assert words in log.bad_rows[0].reason and "\n" not in log.bad_rows[0].reason
    assert [r.line_number for r in log.rows] == [2, 3, 5, 6]
    assert [r.row_number for r in log.rows] == [1, 2, 4, 5]  # the bad row still counts


def test_non_numeric_metric_on_a_decision_row_is_stored_without_a_metric(tmp_path: Path) -> None:
    """A keep or discard row is an outcome even when its metric cell is garbage: it is stored
    with no metric and the repair is said, never skipped (issue 13)."""
    log = _bad_rows(tmp_path, b"e5f6a7b\tfast\t44.0\tdiscard\ttry something\n")
    assert log.bad_rows == []
    assert [r.status for r in log.rows] == ["keep", "keep", "discard", "discard", "crash"]
    assert log.rows[2].metric is None and log.rows[2].description == "try something"
    assert log.metric_name == "val_bpb"
    assert any("without a metric" in note and "line(s) 4" in note for note in log.repairs)


def test_non_numeric_metric_on_crash_or_other_row_is_read_as_none(tmp_path: Path) -> None:
    for status in (b"crash", b"baseline"):
        log = _bad_rows(tmp_path, b"e5f6a7b\tfast\t44.0\t" + status + b"\ttry something\n")
        assert log.bad_rows == []
        assert log.rows[2].metric is None


def test_field_limit_is_configurable(tmp_path: Path) -> None:
    line = b"e5f6a7b\t0.98\t44.0\tdiscard\t" + b"y" * 2000 + b"\n"
    assert _bad_rows(tmp_path, line, max_field_bytes=1000).bad_rows[0].line_number == 4
    assert _bad_rows(tmp_path, line).bad_rows == []


def test_empty_status_cell_is_a_bad_row(tmp_path: Path) -> None:
    log = _bad_rows(tmp_path, b"e5f6a7b\t0.98\t44.0\t\ttry something\n")
    assert [b.line_number for b in log.bad_rows] == [4]


def test_a_title_above_the_header_is_reported_not_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "titled.tsv", b"Experiment log of run 7\n\n" + HEADER + b"".join(GOOD))
    log = read_results_log(path)
    assert [r.line_number for r in log.rows] == [4, 5, 6, 7]
    assert [r.row_number for r in log.rows] == [2, 3, 4, 5]  # the title is EVALUATION.md's header
    assert [(b.line_number, b.row_number) for b in log.bad_rows] == [(1, 0)]
    assert "above the header" in log.bad_rows[0].reason


def test_a_metric_column_named_as_such_stays_the_metric_when_its_cells_are_garbage(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "garbage.tsv", HEADER + b"a1b2c3d\t[]\t12.1\tkeep\tbaseline\n")
    log = read_results_log(path)
    assert log.metric_name == "val_bpb"
    assert log.bad_rows == [] and log.rows[0].metric is None
    assert "'val_bpb' cell is not a number" in log.repairs[0]
