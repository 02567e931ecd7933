"""The typer application that every command module registers on.

Command modules import heavy libraries (PyMC, ArviZ, matplotlib) inside their
functions, never at module level: `nrr check` must start fast and never load PyMC.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="nrr",
    help="Calibrated proceed / caution / avoid decisions for autoresearch loops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BankOption = typer.Option(
    None,
    "--bank",
    help="Bank URL (sqlite:///path, postgresql://...) or a path; default $NRR_BANK, else .nrr/bank.db.",
    show_default=False,
)


@app.callback()
def _root() -> None:
    """Calibrated proceed / caution / avoid decisions for autoresearch loops."""
