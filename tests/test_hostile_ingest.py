"""Hostile results logs through `nrr ingest`, on both backends: never a traceback, exit 0 or 3,
the bank unchanged or holding exactly the good rows, and their text stored byte-for-byte.

Logs are generated with Hypothesis: shuffled and extra columns, odd statuses, unicode, control
characters, SQL-looking strings, placeholders, enormous fields, NUL and undecodable bytes.
"""

from __future__ import annotations

import io
import itertools
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.bank import open_bank

SQL_LOOKING = (
    "'; DROP TABLE experiments; --",
    "Robert'); DROP TABLE sessions;--",
    "1' OR '1'='1",
    "%s %(x)s ? $1 :name %% ??",
    "' UNION SELECT value FROM meta --",
    "E'\\\\' || chr(0) || '",
    "?; DELETE FROM experiments WHERE '1'='1",
    "/* */ COMMIT; BEGIN; --",
)
CONTROL = [chr(c) for c in range(1, 32) if chr(c) not in "\t\n\r"] + [
    "\x7f",
    "\x85",
    "\u2028",
    "\u200b",
    "\ufeff",
]
MAX_FIELD_BYTES = 65536  # what the reader refuses above (README: "a field over 64 KiB")

# Any text a cell may hold: everything but the log's own structure (tab, newline, CR) and NUL.
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\t\n\r\x00"),
    max_size=30,
)
hostile_core = st.one_of(
    cell_text,
    st.sampled_from(SQL_LOOKING),
    st.lists(st.sampled_from(CONTROL), min_size=1, max_size=6).map("".join),
    st.tuples(cell_text, st.sampled_from(SQL_LOOKING), st.sampled_from(CONTROL)).map("".join),
)
# Bracketed so that the reader's trimming and quote handling leave the cell as written.
hostile_cell = hostile_core.map(lambda core: f"[{core}]")
# Not letters: an extra column must not pass for the status or description column by its name.
column_name = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Lu", "Ll", "Lt", "Lm", "Lo"),
        blacklist_characters='\t\n\r\x00"#',
    ),
    min_size=1,
    max_size=8,
).map(lambda name: f"~{name}~")
# Status cells: words the reader knows, or hostile text (a full row whose status it cannot read is
# stored as 'other').
status_cell = st.one_of(
    st.sampled_from(
        ["keep", "discard", "crash", "KEEP", "Discard", "crash ", "kept", "reverted", "OOM"]
    ),
    hostile_cell,
)
# A large field the reader must accept and store whole (just under 64 KiB in UTF-8). It goes in a
# notes column: the description parser's cost grows with text length, and it is not under test here.
NOTES = "~notes~"
large_cell = st.tuples(
    st.sampled_from(["é", "字", "x", "🙂", "'", "\x01"]), st.integers(1000, 60_000)
).map(lambda pair: f"[{pair[0] * (min(pair[1], (MAX_FIELD_BYTES - 8) // len(pair[0].encode())))}]")
# Rows the reader must skip, then rows it must store after a stated repair: a stray non-UTF-8
# byte read as Windows-1252, a keep/discard row without a metric, a status it does not know
# ('other').
BAD_KINDS = ("nul", "enormous", "empty_status")
REPAIRED_KINDS = ("undecodable", "non_numeric_metric")


@dataclass
class Row:
    cells: dict[str, str]
    bad: str | None  # why the reader must skip it, or None for a good row
    raw: bytes = b""


@st.composite
def hostile_logs(draw):
    extras = [NOTES, *draw(st.lists(column_name, max_size=2, unique=True))]
    columns = draw(
        st.permutations(["commit", "val_bpb", "memory_gb", "status", "description", *extras])
    )
    rows = []
    for index in range(draw(st.integers(1, 6))):
        bad = draw(st.none() | st.sampled_from(BAD_KINDS + REPAIRED_KINDS))
        cells = {
            "commit": f"c{index:03d}",
            "val_bpb": f"{draw(st.floats(0.5, 2.0)):.6f}",
            "memory_gb": "12.1",
            "status": draw(status_cell),
            "description": draw(hostile_cell),
        }
        for extra in extras:
            cells[extra] = draw(hostile_cell)
        if index == 0:
            cells[NOTES] = draw(large_cell)
        raw = None
        if bad == "nul":
            cells["description"] = cells["description"][:-1] + "\x00]"
        elif bad == "enormous":
            cells["description"] = "[" + "é" * (MAX_FIELD_BYTES // 2 + 10) + "]"
        elif bad == "non_numeric_metric":
            cells["status"] = draw(st.sampled_from(["keep", "discard"]))
            cells["val_bpb"] = draw(hostile_cell)
        elif bad == "empty_status":
            cells["status"] = ""
        line = "\t".join(cells[c] for c in columns).encode("utf-8")
        if bad == "undecodable":
            raw = line.replace(b"[", b"[\xff\xfe", 1)
            first = next(c for c in columns if "[" in cells[c])
            cells[first] = cells[first].replace("[", "[\u00ff\u00fe", 1)  # as read: cp1252
        if bad in REPAIRED_KINDS:
            bad = None
        rows.append(Row(cells, bad, raw or line))
    strict = draw(st.booleans())
    return columns, rows, strict


def _write(path: Path, columns: list[str], rows: list[Row]) -> None:
    path.write_bytes(
        b"\n".join(["\t".join(columns).encode("utf-8"), *(r.raw for r in rows)]) + b"\n"
    )


def _nrr(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; an exception other than the CLI's own handling fails the test (a traceback)."""
    from nrr_stats.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _dump(url: str) -> tuple[list[dict], list[dict]]:
    with open_bank(url, create=False) as bank:
        return bank.sessions(), bank.experiments()


_example = itertools.count()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(log=hostile_logs())
def test_hostile_log_is_stored_exactly_or_refused_whole(bank_url_maker, tmp_path, log):
    columns, rows, strict = log
    url = bank_url_maker()
    seed = tmp_path / f"seed-{next(_example)}.tsv"
    seed.write_text(
        "commit\tval_bpb\tstatus\tdescription\n"
        + f"s0{seed.stem}\t1.0\tkeep\tbaseline\ns1{seed.stem}\t0.9\tdiscard\tincrease LR to 0.04\n",
        encoding="utf-8",
    )
    assert _nrr("ingest", str(seed), "--bank", url)[0] == 0
    before = _dump(url)

    path = tmp_path / f"hostile-{next(_example)}.tsv"
    _write(path, columns, rows)
    code, out, err = _nrr(
        "ingest", str(path), "--bank", url, "--json", *(["--strict"] if strict else [])
    )

    assert code in (0, 3), err
    assert "Traceback" not in out + err
    good = {line: row for line, row in enumerate(rows, start=2) if row.bad is None}
    bad_lines = {line for line, row in enumerate(rows, start=2) if row.bad is not None}
    if code == 3:
        assert len(err.strip().splitlines()) == 1 and str(path) in err
        assert _dump(url) == before
        assert not good or (strict and bad_lines), f"good rows refused: {err}"
        return

    assert not (strict and bad_lines), "--strict accepted a log with bad rows"
    summary = json.loads(out.strip().splitlines()[-1])
    assert {skip["line"] for skip in summary["rows_skipped"]} == bad_lines
    sessions, experiments = _dump(url)
    assert [s for s in sessions if s["id"] != summary["session_id"]] == before[0]
    old = [e for e in experiments if e["session_id"] != summary["session_id"]]
    assert old == before[1]
    stored = {e["line_number"]: e for e in experiments if e["session_id"] == summary["session_id"]}
    assert set(stored) == set(good)
    assert summary["rows_added"] == len(good)
    for line, row in good.items():
        kept = stored[line]
        assert kept["description"].encode("utf-8") == row.cells["description"].strip().encode(
            "utf-8"
        )
        assert kept["raw_status"] == row.cells["status"].strip()
        assert kept["experiment_id"] == row.cells["commit"]
        fields = json.loads(kept["fields_json"])
        assert fields["description"] == kept["description"]
        assert fields[NOTES].encode("utf-8") == row.cells[NOTES].encode("utf-8")

    # The same log again adds nothing.
    again = _nrr("ingest", str(path), "--bank", url, "--json")
    assert again[0] == 0
    assert json.loads(again[1].strip().splitlines()[-1])["rows_added"] == 0
    assert len(_dump(url)[1]) == len(experiments)
