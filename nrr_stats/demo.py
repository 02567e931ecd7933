"""`nrr demo`: the seed log into a temporary bank, its cell table, and five checks."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from nrr_stats.package_data import package_file

SEED_PROPOSALS: tuple[str, ...] = (
    "Increase LR to 0.02",
    "Switch to AdamW",
    "Add residual connections",
    "Reduce batch size to 64",
    "Use mixed precision training",
)


def seed_log_path() -> Path:
    """The bundled 21-experiment log of the NRR prototype."""
    return package_file("nrr_stats", "data", "seed_results.tsv")


def run_demo(bank_url: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Ingest the seed log, print its cells and the checks of the five seed proposals; return the checks."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_logs
    from nrr_stats.check import Checker
    from nrr_stats.report.tables import cell_table as render_cells
    from nrr_stats.report.tables import check_table, ingest_table, print_table

    console = Console()
    with (
        tempfile.TemporaryDirectory(prefix="nrr-demo-") as scratch,
        open_bank(bank_url or Path(scratch) / "demo.db") as bank,
    ):
        summaries = ingest_logs(bank, [seed_log_path()])
        print_table(ingest_table(summaries))
        with Checker(bank) as checker:
            cells = checker.patterns(bank.sessions()[0]["id"])
            print_table(render_cells([cell for cell in cells if cell.n > 0]))
            checks = [(text, checker.check(text, record=False)) for text in SEED_PROPOSALS]
    print_table(check_table(checks))
    for text, answer in checks:
        console.print(f"[bold]{text}[/]: {answer['verdict']}: {answer['reason']}")
    return checks
