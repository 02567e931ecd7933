"""Laws of the reader: random well-formed logs read back exactly; arbitrary bytes never crash it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log

SYNONYMS = {
    "keep": ["keep", "kept", "KEEP", "KEPT", "accepted", "improved"],
    "discard": ["discard", "discarded", "reverted", "REVERT", "worse", "rejected"],
    "crash": ["crash", "error", "failed", "OOM", "killed", "timeout"],
    "other": ["baseline", "running", "analyze", "VERIFY", "iterate"],
}
STATUS_NAMES = ["status", "decision", "verdict", "outcome"]
DESCRIPTION_NAMES = ["description", "desc", "change", "mutation", "hypothesis", "notes"]
METRIC_NAMES = ["val_bpb", "val_loss", "score", "accuracy"]
ID_NAMES = ["commit", "id", "run_id", "experiment"]

# Free text as descriptions are written: no tabs or line breaks, no leading '#' (a comment) or
# '"' (a quoted cell), no surrounding spaces (cells are stripped).
DESCRIPTION = (
    st.text(
        st.characters(
            blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\t\r\n\x85"
        ),
        min_size=1,
        max_size=60,
    )
    .map(str.strip)
    .filter(lambda s: s and not s.startswith(("#", '"')) and "\\t" not in s and "\\n" not in s)
)


@st.composite
def well_formed_logs(draw):
    roles = ["id", "metric", "memory", "status", "description"]
    order = draw(st.permutations(roles))
    names = {
        "id": draw(st.sampled_from(ID_NAMES)),
        "metric": draw(st.sampled_from(METRIC_NAMES)),
        "memory": "memory_gb",
        "status": draw(st.sampled_from(STATUS_NAMES)),
        "description": draw(st.sampled_from(DESCRIPTION_NAMES)),
    }
    n = draw(st.integers(1, 12))
    rows = []
    for index in range(n):
        status = draw(st.sampled_from(sorted(SYNONYMS)))
        rows.append(
            {
                "id": f"{index:03d}{draw(st.sampled_from('abcdef'))}",
                "metric": f"{draw(st.floats(0.01, 100.0, allow_nan=False)):.6f}",
                "memory": f"{draw(st.floats(0, 80)):.1f}",
                "status": draw(st.sampled_from(SYNONYMS[status])),
                "description": draw(DESCRIPTION),
                "_expected": status,
            }
        )
    comments = draw(
        st.lists(st.sampled_from(["# metric_direction: lower", "# a note", "#"]), max_size=3)
    )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [*comments, "\t".join(names[r] for r in order)]
    lines += ["\t".join(row[r] for r in order) for row in rows]
    return newline.join(lines) + newline, names, rows, len(comments)


@given(well_formed_logs())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_well_formed_logs_read_back_exactly(log) -> None:
    text, names, rows, n_comments = log
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.tsv"
        path.write_bytes(text.encode("utf-8"))
        read = read_results_log(path)
    assert read.bad_rows == []
    assert [r.status for r in read.rows] == [row["_expected"] for row in rows]
    assert [r.raw_status for r in read.rows] == [row["status"] for row in rows]
    assert [r.description for r in read.rows] == [row["description"] for row in rows]
    assert [r.experiment_id for r in read.rows] == [row["id"] for row in rows]
    assert [r.row_number for r in read.rows] == list(range(1, len(rows) + 1))
    assert [r.line_number for r in read.rows] == [n_comments + 2 + i for i in range(len(rows))]
    assert read.columns == {
        "id": names["id"],
        "metric": names["metric"],
        "status": names["status"],
        "description": names["description"],
    }
    for got, row in zip(read.rows, rows, strict=True):
        if row["_expected"] != "crash":
            assert got.metric == float(row["metric"])


def _read_bytes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.tsv"
        path.write_bytes(content)
        try:
            read_results_log(path)
        except NrrInputError as error:
            assert str(path) in str(error) and "\n" not in str(error)


HEADER = b"commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
PIECES = st.sampled_from(
    [b"\t", b"\n", b"\r\n", b"\r", b"#", b'"', b'""', b"\\t", b"\\n", b"keep", b"discard", b"crash",
     b"0.98", b"-", b"N/A", b"---", b"|", b",", b"\xff", b"\xfe", b"\x00", b"\xef\xbb\xbf", b" "]
)  # fmt: skip


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_raise_only_nrr_input_error(content: bytes) -> None:
    _read_bytes(content)


@given(st.lists(st.one_of(PIECES, st.binary(max_size=8)), max_size=80))
@example([b"|"])
@example([b"\\n", b"|", b"\n", b"|"])
@example([b"\t\n\\t\n"])
@settings(max_examples=300, deadline=None)
def test_log_shaped_garbage_raises_only_nrr_input_error(pieces: list[bytes]) -> None:
    _read_bytes(HEADER + b"".join(pieces))
    _read_bytes(b"".join(pieces))


def test_session_key_survives_appended_rows_and_tells_logs_apart(tmp_path: Path) -> None:
    rows = [
        "a1b2c3d\t0.9979\t44.0\tkeep\tbaseline",
        "b2c3d4e\t0.9932\t44.2\tkeep\tincrease LR to 0.04",
        "c3d4e5f\t1.0050\t44.0\tdiscard\tswitch to GeLU activation",
    ]
    path = tmp_path / "results.tsv"
    path.write_text(HEADER.decode() + "\n".join(rows[:1]) + "\n")
    first = read_results_log(path).session_key
    path.write_text(HEADER.decode() + "\n".join(rows) + "\n")
    assert read_results_log(path).session_key == first
    other = tmp_path / "other" / "results.tsv"
    other.parent.mkdir()
    other.write_text(HEADER.decode() + "\n".join(rows[1:]) + "\n")
    assert read_results_log(other).session_key != first
    moved = tmp_path / "moved" / "renamed.tsv"
    moved.parent.mkdir()
    moved.write_text(HEADER.decode().replace("\n", "\r\n") + "\r\n".join(rows) + "\r\n")
    assert read_results_log(moved).session_key == first  # path and line endings do not matter
    comment = tmp_path / "commented" / "results.tsv"
    comment.parent.mkdir()
    comment.write_text("# a note added later\n" + HEADER.decode() + "\n".join(rows) + "\n")
    assert read_results_log(comment).session_key == first
