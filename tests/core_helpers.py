"""Shared helpers of the core tests: run `nrr` in-process, write small logs, snapshot a bank."""

from __future__ import annotations

import io
import sqlite3
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SEED_LOG = Path(__file__).resolve().parents[1] / "nrr_stats" / "data" / "seed_results.tsv"

HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_nrr(*args: str, stdin: str = "") -> Run:
    """Run the CLI in this process (fast), capturing output and the exit code."""
    from nrr_stats.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = old_stdin
    return Run(code, out.getvalue(), err.getvalue())


def write_log(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


def bank_snapshot(path: Path) -> list[tuple]:
    """Every session and experiment row of a SQLite bank (empty when the file does not exist)."""
    if not path.exists():
        return []
    with sqlite3.connect(path) as connection:
        sessions = connection.execute(
            "SELECT session_key, name FROM sessions ORDER BY id"
        ).fetchall()
        experiments = connection.execute(
            "SELECT session_id, row_number, status, description, category, direction, outcome"
            " FROM experiments ORDER BY session_id, row_number"
        ).fetchall()
    return sessions + experiments


GOOD_ROWS = [
    "a1\t1.000\t44.0\tkeep\tbaseline",
    "a2\t0.990\t44.0\tkeep\tincrease LR to 0.04",
    "a3\t1.010\t44.0\tdiscard\tswitch to GeLU activation",
    "a4\t0.000\t0.0\tcrash\tdouble model width",
    "a5\t0.995\t44.0\tdiscard\tincrease LR to 0.08",
]
