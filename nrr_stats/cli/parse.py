"""`nrr parse`: descriptions in, one JSON object per line out (category, direction, parameter, from, to)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import BankOption, app


@app.command()
def parse(
    descriptions: list[str] = typer.Argument(
        None, help="Descriptions to parse; else one per line on stdin."
    ),
    rules: Path = typer.Option(
        None, "--rules", help="A TOML rules file adding categories and words; default $NRR_RULES."
    ),
) -> None:
    """Parse experiment descriptions into category, direction, parameter, from and to."""
    from nrr_stats.parser import parse_description
    from nrr_stats.parser.rules import load_configured_rules

    loaded = load_configured_rules(rules)
    texts = descriptions if descriptions else (line.rstrip("\r\n") for line in sys.stdin)
    for text in texts:
        parsed = parse_description(text, rules=loaded)
        print(json.dumps(parsed.as_dict(), ensure_ascii=False), flush=True)


@app.command()
def reparse(
    bank: str = BankOption,
    rules: Path = typer.Option(
        None, "--rules", help="Rules file; default $NRR_RULES, else nrr.toml beside the bank."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Re-classify the stored rows with the current rules (after a rules file changes)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.reparse import reparse_bank
    from nrr_stats.parser.rules import load_configured_rules

    loaded = load_configured_rules(rules, bank)
    with open_bank(bank, create=False) as opened:
        summary = reparse_bank(opened, loaded, dry_run=dry_run)
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    verb = "would change" if dry_run else "changed"
    print(f"{summary.rows} rows in {summary.sessions} sessions; {verb} {summary.changed}")
    for move in summary.as_dict()["moves"][:20]:
        print(f"  {move['from']:>28} -> {move['to']:<28} {move['rows']}")


@app.command()
def taxonomy(
    rules: Path = typer.Option(
        None, "--rules", help="Rules file; default $NRR_RULES, else nrr.toml beside the bank."
    ),
    bank: str = BankOption,
    as_json: bool = typer.Option(False, "--json", help="Print the vocabulary as one JSON object."),
) -> None:
    """Print the vocabulary (categories and directions) with example phrases and signal words."""
    from nrr_stats.parser.rules import load_configured_rules
    from nrr_stats.parser.vocabulary import vocabulary

    table = vocabulary(load_configured_rules(rules, bank))
    if as_json:
        print(json.dumps(table, ensure_ascii=False))
        return
    print("categories (docs/TAXONOMY.md):")
    for entry in table["categories"]:
        mark = " [rules file]" if entry["user"] else ""
        print(f"  {entry['name']}{mark}: {entry['covers']}")
        if entry["examples"]:
            print(f"      e.g. {' | '.join(entry['examples'])}")
        if entry["words"]:
            print(f"      words: {', '.join(entry['words'])}")
    print("directions:")
    for entry in table["directions"]:
        print(f"  {entry['name']}: {entry['covers']}")
        print(f"      words: {', '.join(entry['words'])}")
