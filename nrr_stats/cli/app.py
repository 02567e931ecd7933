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
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: nrr ingest results.tsv && git diff | nrr check -",
)

BankOption = typer.Option(
    None,
    "--bank",
    help="Bank URL (sqlite:///path, postgresql://...) or a path; default $NRR_BANK, else .nrr/bank.db.",
    show_default=False,
)


FormatOption = typer.Option(
    "table", "--format", help="table, json, jsonl, csv or tsv.", show_default=True
)
JsonOption = typer.Option(False, "--json", help="Same as --format jsonl.")


def output_format(fmt: str, as_json: bool) -> str:
    """The chosen --format (--json is --format jsonl), checked."""
    from nrr_stats.report.listing import check_format

    return check_format("jsonl" if as_json else fmt)


def _print_version(value: bool) -> None:
    if value:
        from nrr_stats import __version__

        print(f"nrr-stats {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Calibrated proceed / caution / avoid decisions for autoresearch loops.

    Exit codes: 0 proceed / success, 1 caution, 2 avoid, 3 usage or input error.
    """
