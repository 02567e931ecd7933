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
    llm: bool = typer.Option(
        False, "--llm", help="Ask an Anthropic model about what the rules leave at other."
    ),
    bank: str = BankOption,
) -> None:
    """Parse experiment descriptions into category, direction, parameter, from and to.

    Example: nrr parse "increase LR from 0.01 to 0.02" ; nrr parse --rules trading "tighten stops"
    """
    from nrr_stats.parser import parse_description
    from nrr_stats.parser.rules import load_configured_rules

    loaded = load_configured_rules(rules, bank)
    parser = model_parser(loaded) if llm else None
    cache_bank = _cache_bank(bank) if llm else None
    if parser is not None and cache_bank is not None:
        parser.cache.update(cache_bank.cached_parses())
    texts = descriptions if descriptions else (line.rstrip("\r\n") for line in sys.stdin)
    try:
        for text in texts:
            parsed = parse_description(text, rules=loaded)
            if parser is not None:
                parsed = parser.fallback(text, parsed, {})
            print(json.dumps(parsed.as_dict(), ensure_ascii=False), flush=True)
    finally:
        if cache_bank is not None:
            if parser is not None and parser.fresh:
                with cache_bank.transaction():
                    cache_bank.store_parses(parser.fresh)
            cache_bank.close()


def model_parser(rules):
    """The model parser from $ANTHROPIC_API_KEY (one clear line without it) and $NRR_PARSER_MODEL."""
    import os

    from nrr_stats.curator.llm import settings_from_env
    from nrr_stats.parser.llm import ModelParser

    return ModelParser(settings_from_env(os.environ.get("NRR_PARSER_MODEL")), rules)


def _cache_bank(bank: str | None):
    """The bank whose cache `nrr parse --llm` uses: only an existing one (parse creates none)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.location import resolve_bank

    location = resolve_bank(bank)
    if location.path is not None and not location.path.exists():
        return None
    return open_bank(bank, create=False)


@app.command()
def reparse(
    bank: str = BankOption,
    rules: Path = typer.Option(
        None, "--rules", help="Rules file; default $NRR_RULES, else nrr.toml beside the bank."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; write nothing."),
    llm: bool = typer.Option(
        False, "--llm", help="Ask an Anthropic model about what the rules leave at other."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Re-classify the stored rows with the current rules (after a rules file changes).

    Example: nrr reparse --rules my-rules.toml --dry-run ; NRR_RULES=systems nrr reparse
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.reparse import reparse_bank, reparse_with_model
    from nrr_stats.parser.rules import load_configured_rules

    loaded = load_configured_rules(rules, bank)
    parser = model_parser(loaded) if llm else None
    with open_bank(bank, create=False) as opened:
        if parser is not None:
            summary = reparse_with_model(opened, loaded, parser, dry_run=dry_run)
        else:
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
    """Print the vocabulary (categories and directions) with example phrases and signal words.

    Example: nrr taxonomy ; nrr taxonomy --rules trading --json
    """
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
