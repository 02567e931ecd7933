"""`nrr parse`: descriptions in, one JSON object per line out (category, direction, parameter, from, to)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import app


@app.command()
def parse(
    descriptions: list[str] = typer.Argument(
        None, help="Descriptions to parse; else one per line on stdin."
    ),
    rules: Path = typer.Option(
        None, "--rules", help="A TOML rules file adding categories and words."
    ),
) -> None:
    """Parse experiment descriptions into category, direction, parameter, from and to.

    Example: nrr parse "increase LR from 0.01 to 0.02"
    """
    from nrr_stats.parser import load_rules, parse_description

    loaded = load_rules(rules)
    texts = descriptions if descriptions else (line.rstrip("\r\n") for line in sys.stdin)
    for text in texts:
        parsed = parse_description(text, rules=loaded)
        print(json.dumps(parsed.as_dict(), ensure_ascii=False), flush=True)
