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


def publish_posterior(bank, posterior, *, passed: bool = True):
    """Publish `posterior`'s draws as the bank's fit through its FitStore (files beside a SQLite
    bank, the bank's table on PostgreSQL), as `nrr fit` would, without sampling."""
    from dataclasses import replace

    import arviz as az

    from nrr_stats.bank.fits import fit_store
    from nrr_stats.models.fit import FitResult
    from nrr_stats.models.posterior import MODEL_VERSION

    meta = {
        "created_at": "2026-01-01T00:00:00+00:00",
        "model_version": MODEL_VERSION,
        "n_experiments": int(round(float(posterior.seen["trials"].sum()))),
        "data_hash": "test",
        "diagnostics": {"failures": [] if passed else ["R-hat > 1.01 at alpha 1.100"]},
        **posterior.meta,
        "passed_diagnostics": passed,
    }
    idata = az.from_dict(posterior={k: v[None, ...] for k, v in posterior.draws.items()})
    result = FitResult(
        posterior=replace(posterior, meta=meta), idata=idata, diagnostics={}, passed=passed
    )
    return fit_store(bank).publish(result, bank.evidence_state())
