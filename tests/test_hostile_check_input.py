"""Any proposal at all through `nrr check`: an exit code in {0, 1, 2, 3}, never a traceback or
an internal error, a bounded time, one line on stderr and the bank unchanged on exit 3, and on
0-2 only the decisions table grown (by one row, or none with --no-record).

Proposals are arbitrary bytes or text, huge lines, deep diffs, KEY=value floods and numbers
like 1e999, 2^70 or '²', given on argv (undecodable bytes as surrogates, as Python passes
them), with --proposal-file, or on stdin with `-`; `--session` values are hostile too. The
CLI runs in this process with byte streams beneath stdin and stdout (a strict UTF-8 stdout,
as a real one is), against a bank seeded with the packaged seed log.
"""

from __future__ import annotations

import io
import itertools
import os
import sqlite3
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from core_helpers import SEED_LOG, Run, run_nrr
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

MAX_SECONDS = 20.0  # per check of a proposal of at most a few hundred KB, on a loaded machine

numbers = st.sampled_from(
    [
        "1e999",
        "-1e999",
        str(2**70),
        str(2**63),
        "9" * 5000,
        "²",
        "１２",
        "nan",
        "-inf",
        "0x1p3",
        "1_000",
        "",
        "0.0",
        "-0",
        "3e-400",
        "٣",
    ]  # fmt: skip
)
keys = st.sampled_from(["LR", "lr", "learning_rate", "WEIGHT_DECAY", "depth", "n_layer", "x", ""])


@st.composite
def key_value_flood(draw) -> bytes:
    count = draw(st.sampled_from([1, 5, 200, 3000]))
    key, value = draw(keys), draw(numbers)
    separator = draw(st.sampled_from([" = ", "=", ": ", "\t"]))
    return "\n".join(
        f"{key}{i if count > 5 else ''}{separator}{value}" for i in range(count)
    ).encode()


@st.composite
def deep_diff(draw) -> bytes:
    depth = draw(st.sampled_from([1, 50, 4000]))
    value = draw(numbers)
    lines = ["--- a/train.py", "+++ b/train.py", f"@@ -1,{depth} +1,{depth} @@"]
    for i in range(depth):
        lines += [f"-LR{i % 7} = 0.04", f"+LR{i % 7} = {value}"]
    if draw(st.booleans()):
        lines = [("+" * 200 + line) for line in lines[:200]]  # nested markers
    return "\n".join(lines).encode()


hostile_bytes = st.sampled_from(
    [b"\x00", b"\xff\xfe", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\r\n", b"\x1b[2J", b"\\u0000"]
)
proposals = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    key_value_flood(),
    deep_diff(),
    st.tuples(
        st.sampled_from([b"x", b"increase LR ", b"\xff"]), st.sampled_from([10_000, 300_000])
    ).map(lambda pair: pair[0] * pair[1]),  # a huge line
    st.lists(st.one_of(hostile_bytes, numbers.map(str.encode), st.just(b"increase LR to "))).map(
        b"".join
    ),
)
sessions = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "1",
            "0",
            "-1",
            str(2**63),
            str(2**70),
            "9" * 5000,
            "²",
            "1e999",
            "",
            " ",
            "\x00",
            "seed",
            "../../etc/passwd",
            "%s",
            "'; DROP TABLE sessions; --",
            "\udcff",
        ]  # fmt: skip
    ),
    st.text(max_size=20),
)


def run_bytes(args: list[str], stdin: bytes) -> Run:
    """`nrr` in this process with bytes beneath stdin, a strict UTF-8 stdout (as a real one),
    and a backslash-replacing stderr (as Python's own)."""
    from nrr_stats.cli import main

    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(
        err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True
    )
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="surrogateescape")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(args)
    finally:
        sys.stdin = old_stdin
        out.flush()
        err.flush()
    return Run(code, out_bytes.getvalue().decode("utf-8", "replace"), err_bytes.getvalue().decode())


def tables(bank: Path) -> dict[str, list[tuple]]:
    """Every table of the bank, whole (the decisions table by its row count and last row)."""
    with sqlite3.connect(bank) as connection:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {name: connection.execute(f'SELECT * FROM "{name}"').fetchall() for name in names}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("hostile-check") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


_example = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    proposal=proposals,
    how=st.sampled_from(["argv", "file", "stdin", "file-stdin"]),
    session=sessions,
    record=st.booleans(),
    brief=st.booleans(),
)
# Faults found here once: a 5,000-digit --session raised ValueError from int() (internal error).
@example(proposal=b"LR = 0.1", how="argv", session="9" * 5000, record=True, brief=False)
# ... and a session with a NUL raised ValueError from Path.resolve() (internal error).
@example(proposal=b"0", how="argv", session="\x00", record=True, brief=False)
@example(proposal=b"LR = 0.1", how="argv", session="\udcff", record=True, brief=False)
@example(proposal=b"LR = \xff\x00 1e999", how="stdin", session=None, record=True, brief=False)
@example(proposal=b"LR = " + b"9" * 5000, how="file", session=str(2**70), record=True, brief=True)
def test_any_proposal_exits_cleanly_and_refusals_leave_the_bank_unchanged(
    seeded: Path, tmp_path: Path, proposal: bytes, how: str, session: str | None, record: bool,
    brief: bool,
) -> None:  # fmt: skip
    args, stdin = ["check", "--bank", str(seeded)], b""
    if how == "argv":
        args.append(os.fsdecode(proposal.replace(b"\x00", b"")) or "-")  # argv holds no NUL
    elif how == "file":
        path = tmp_path / f"proposal-{next(_example)}.txt"
        path.write_bytes(proposal)
        args += ["--proposal-file", str(path)]
    else:
        args += ["-"] if how == "stdin" else ["--proposal-file", "-"]
        stdin = proposal
    if session is not None:
        args += ["--session", session]
    args += [] if record else ["--no-record"]
    args += ["--brief"] if brief else []

    before = tables(seeded)
    started = time.monotonic()
    run = run_bytes(args, stdin)
    elapsed = time.monotonic() - started
    after = tables(seeded)

    assert run.code in (0, 1, 2, 3), (run.code, run.err)
    assert "Traceback" not in run.out + run.err and "internal error" not in run.err, run.err
    assert elapsed < MAX_SECONDS
    grown = len(after["decisions"]) - len(before["decisions"])
    assert {k: v for k, v in after.items() if k not in ("decisions", "sqlite_sequence")} == {
        k: v for k, v in before.items() if k not in ("decisions", "sqlite_sequence")
    }
    assert after["decisions"][: len(before["decisions"])] == before["decisions"]
    if run.code == 3:
        assert len(run.err.strip().splitlines()) == 1, run.err
        assert grown == 0 and run.out == ""
    else:
        assert grown == (1 if record else 0)
        assert run.out.strip()
