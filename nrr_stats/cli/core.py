"""Core commands: ingest, check, patterns, parse, demo."""

from __future__ import annotations

from nrr_stats.cli.app import app


@app.command()
def version() -> None:
    """Print the nrr-stats version."""
    from nrr_stats import __version__

    print(__version__)
