"""Core commands: ingest, check, patterns, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import BankOption, app
from nrr_stats.errors import NrrInputError

RulesOption = typer.Option(None, "--rules", help="A TOML rules file adding categories and words.")
NoPriorOption = typer.Option(
    False, "--no-population-prior", help="Without a fit of the bank's own, use the conjugate form."
)
SessionOption = typer.Option(
    None, "--session", help="Session id or log name; default the most recent."
)


def _rules(path: Path | None):
    from nrr_stats.parser import load_rules

    return load_rules(path) if path is not None else None


@app.command()
def version() -> None:
    """Print the nrr-stats version."""
    from nrr_stats import __version__

    print(__version__)


@app.command()
def ingest(
    logs: list[Path] = typer.Argument(
        ..., help="Results logs (TSV, or CSV with the same columns)."
    ),
    bank: str = BankOption,
    strict: bool = typer.Option(
        False, "--strict", help="Refuse a file with any bad row; write nothing."
    ),
    metric: str = typer.Option(
        None, "--metric", help="The metric column, when the guess is wrong."
    ),
    direction: str = typer.Option(
        None, "--direction", help="lower or higher: which way the metric improves."
    ),
    rules: Path = RulesOption,
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON lines."),
) -> None:
    """Store results logs in the bank (idempotent; one transaction for all files)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_logs
    from nrr_stats.report.tables import ingest_table, print_table

    if direction is not None and direction not in ("lower", "higher"):
        raise NrrInputError(f"--direction must be lower or higher, not {direction!r}")
    parsed_rules = _rules(rules)
    with open_bank(bank) as opened:
        summaries = ingest_logs(
            opened, logs, strict=strict, metric=metric, direction=direction, rules=parsed_rules
        )
    for summary in summaries:
        for line, reason in summary.bad_rows:
            print(f"nrr: {summary.path}:{line}: skipped: {reason}", file=sys.stderr)
    if as_json:
        for summary in summaries:
            print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        print_table(ingest_table(summaries))


def _read_proposal_text(proposal: str | None, proposal_file: Path | None) -> str:
    """The proposal from an argument, a file, or stdin (`-`, or piped with no argument)."""
    if proposal is not None and proposal_file is not None:
        raise NrrInputError("give the proposal as an argument or with --proposal-file, not both")
    if proposal_file is not None and str(proposal_file) != "-":
        try:
            return proposal_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise NrrInputError(
                f"cannot read the proposal: {reason}", path=str(proposal_file)
            ) from None
    if proposal is not None and proposal != "-":
        return proposal
    if proposal is None and proposal_file is None and sys.stdin.isatty():
        raise NrrInputError(
            "no proposal: give it as an argument, with --proposal-file F, or on stdin with -"
        )
    return sys.stdin.read()


@app.command()
def check(
    proposal: str = typer.Argument(None, help="The proposal text, or - for stdin."),
    proposal_file: Path = typer.Option(
        None, "--proposal-file", "-f", help="Read the proposal from a file (- for stdin)."
    ),
    bank: str = BankOption,
    session: str = SessionOption,
    rules: Path = RulesOption,
    no_population_prior: bool = NoPriorOption,
) -> None:
    """Answer a proposal with one JSON object; exit 0 proceed, 1 caution, 2 avoid, 3 input error."""
    from nrr_stats.check import check_proposal
    from nrr_stats.decide import VERDICT_EXIT_CODES

    text = _read_proposal_text(proposal, proposal_file)
    answer = check_proposal(
        text,
        bank=bank,
        session=session,
        rules=_rules(rules),
        use_population_prior=not no_population_prior,
    )
    print(json.dumps(answer, ensure_ascii=False))
    raise typer.Exit(VERDICT_EXIT_CODES[answer["verdict"]])


def _cells(bank: str | None, session: str | None, no_population_prior: bool, prior_cells: bool):
    """The bank's cells against the chosen session, as that session's checks answer them."""
    from nrr_stats.bank import open_bank
    from nrr_stats.check import Checker

    with (
        open_bank(bank, create=False) as opened,
        Checker(opened, use_population_prior=not no_population_prior) as checker,
    ):
        return checker.patterns(session, prior_cells=prior_cells), checker.prior()


@app.command()
def patterns(
    bank: str = BankOption,
    session: str = SessionOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    no_population_prior: bool = NoPriorOption,
    show_all: bool = typer.Option(
        False, "--all", help="Also the prior's fitted cells with no data in the bank."
    ),
) -> None:
    """Per cell: count, weighted count, posterior mean, 90% interval, P(rate < base rate)."""
    from nrr_stats.check import cell_json
    from nrr_stats.report.tables import cell_table, print_table

    cells, _ = _cells(bank, session, no_population_prior, show_all)
    if as_json:
        for cell in cells:
            print(json.dumps(cell_json(cell)))
    else:
        print_table(cell_table(cells))


@app.command()
def suggest(
    bank: str = BankOption,
    session: str = SessionOption,
    count: int = typer.Option(5, "--count", "-n", min=1, help="How many cells to suggest."),
    min_experiments: int = typer.Option(
        0, "--min-experiments", min=0, help="Only cells with this many runs."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
    no_population_prior: bool = NoPriorOption,
) -> None:
    """The kinds of change most likely to be kept next, with intervals and counts."""
    from nrr_stats.check import cell_json
    from nrr_stats.report.tables import cell_table, print_table
    from nrr_stats.suggest import suggest_cells

    cells, _ = _cells(bank, session, no_population_prior, True)  # the prior's cells too
    best = suggest_cells(cells, count, min_experiments)
    if as_json:
        for cell in best:
            print(json.dumps(cell_json(cell)))
    else:
        print_table(cell_table(best, title="Most promising cells"))


@app.command()
def report(
    output: Path = typer.Option(
        Path("nrr-report.html"), "--html", help="Where to write the report."
    ),
    bank: str = BankOption,
    session: str = SessionOption,
    no_population_prior: bool = NoPriorOption,
) -> None:
    """Write a self-contained HTML report: cells with a forest plot, the fit, recent decisions."""
    from nrr_stats.bank import open_bank
    from nrr_stats.report.html import render_report

    cells, posterior = _cells(bank, session, no_population_prior, False)
    fit = dict(posterior.meta) if posterior is not None else None
    with open_bank(bank, create=False) as opened:
        page = render_report(opened, cells, fit, base_rate=None)
    try:
        output.write_text(page, encoding="utf-8")
    except OSError as error:
        raise NrrInputError(
            f"cannot write the report: {error.strerror}", path=str(output)
        ) from None
    print(output)


@app.command()
def demo(
    bank: str = typer.Option(
        None, "--bank", help="Keep the demo bank here instead of a temporary one."
    ),
) -> None:
    """Ingest the bundled 21-experiment seed log and check five proposals."""
    from nrr_stats.demo import run_demo

    run_demo(bank)


@app.command()
def export(
    session: str = typer.Argument(..., help="Session id or log name."),
    bank: str = BankOption,
) -> None:
    """Print a stored session as a results log (TSV, original header)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.export import export_session_tsv
    from nrr_stats.check import pick_session

    with open_bank(bank, create=False) as opened:
        sys.stdout.write(export_session_tsv(opened, pick_session(opened, session)["id"]))


@app.command()
def similar(
    description: str = typer.Argument(..., help="A description of a change."),
    bank: str = BankOption,
    count: int = typer.Option(5, "--count", "-k", min=1, help="How many experiments to list."),
    failures_only: bool = typer.Option(True, "--failures/--all", help="Only failed experiments."),
    session: str = typer.Option(None, "--session", help="Only this session's rows (id or name)."),
    cell: str = typer.Option(
        None, "--cell", help="Only this cell's rows, as CATEGORY/DIRECTION (TAXONOMY.md)."
    ),
    rules: Path = RulesOption,
) -> None:
    """The past experiments most like a description (cosine similarity), as JSON lines."""
    from nrr_stats.bank import open_bank
    from nrr_stats.check import pick_session
    from nrr_stats.similarity.search import similar_experiments_in_bank

    cell_key = _cell_option(cell) if cell is not None else None
    with open_bank(bank, create=False) as opened:
        session_id = pick_session(opened, session)["id"] if session is not None else None
        for row in similar_experiments_in_bank(
            opened,
            description,
            count,
            failures_only=failures_only,
            session_id=session_id,
            cell=cell_key,
            rules=_rules(rules),
        ):
            print(json.dumps(row, ensure_ascii=False))


def _cell_option(text: str) -> tuple[str, str]:
    """CATEGORY/DIRECTION, both words of TAXONOMY.md."""
    from nrr_stats.errors import NrrInputError
    from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS

    category, _, direction = text.partition("/")
    if category not in CATEGORIES or direction not in DIRECTIONS:
        raise NrrInputError(
            f"--cell {text!r} is not CATEGORY/DIRECTION with TAXONOMY.md's words"
            f" (e.g. learning_rate/increase)"
        )
    return category, direction
