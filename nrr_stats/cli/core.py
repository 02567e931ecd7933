"""Core commands: ingest, check, patterns, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import BankOption, FormatOption, JsonOption, app, output_format
from nrr_stats.errors import NrrInputError

RulesOption = typer.Option(None, "--rules", help="A TOML rules file adding categories and words.")
NoPriorOption = typer.Option(
    False, "--no-population-prior", help="Without a fit of the bank's own, use the conjugate form."
)
SessionOption = typer.Option(
    None,
    "--session",
    help="Session id, name or log path (`nrr sessions` lists them); default the most recent.",
)
LockTimeoutOption = typer.Option(
    None,
    "--lock-timeout",
    help="Seconds to wait for another process's lock on the bank before giving up (default 600).",
    show_default=False,
)


def _progress(what: str):
    """A spinner on stderr while a long step runs, when stderr is a terminal (never in pipes)."""
    from contextlib import nullcontext

    if not sys.stderr.isatty():
        return nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(f"nrr: {what}...")


def _rules(path: Path | None, bank: str | None = None):
    """`--rules`, else $NRR_RULES, else the rules named in nrr.toml beside the bank; else None."""
    from nrr_stats.parser.rules import configured_rules_path, load_rules

    chosen = configured_rules_path(path, bank)
    return load_rules(chosen) if chosen is not None else None


@app.command()
def version() -> None:
    """Print the nrr-stats version.

    Example: nrr version (or nrr --version)
    """
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
    llm_parse: bool = typer.Option(
        False, "--llm-parse", help="Ask an Anthropic model about what the rules leave at other."
    ),
    session_name: str = typer.Option(
        None,
        "--session-name",
        help="Name this log's session (one log): two loops' results.tsv stay apart by name.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summaries as JSON lines."),
    finished: bool = typer.Option(
        False,
        "--finished",
        help="The logs are complete: read a last line that has no newline (by default it is "
        "read on the next ingest, as the loop may still be writing it).",
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="Keep following the log: ingest each appended row within a second (Ctrl-C stops).",
    ),
    lock_timeout: float = LockTimeoutOption,
    progress: bool = typer.Option(
        None,
        "--progress/--no-progress",
        help="Rows read and stored, and rows/s, on stderr every 2 s (default: when stderr is a "
        "terminal).",
        show_default=False,
    ),
) -> None:
    """Store results logs in the bank (idempotent; one transaction for all files).

    Example: nrr ingest results.tsv --session-name lr-sweep ; nrr ingest --follow results.tsv
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_logs
    from nrr_stats.report.tables import ingest_table, print_table

    if direction is not None and direction not in ("lower", "higher"):
        raise NrrInputError(f"--direction must be lower or higher, not {direction!r}")
    parsed_rules = _rules(rules, bank)
    model = None
    if llm_parse:  # before anything is written: without a key, one line and exit 3
        from nrr_stats.cli.parse import model_parser
        from nrr_stats.parser import load_rules

        parsed_rules = parsed_rules or load_rules()
        model = model_parser(parsed_rules)
    if follow:
        from nrr_stats.follow import follow_forever

        if len(logs) != 1:
            raise NrrInputError("--follow follows one log")
        with open_bank(bank, lock_timeout=lock_timeout) as opened:
            follow_forever(
                opened,
                logs[0],
                metric=metric,
                direction=direction,
                rules=parsed_rules,
                session_name=session_name,
            )
        return
    shown = sys.stderr.isatty() if progress is None else progress
    with open_bank(bank, lock_timeout=lock_timeout) as opened:
        summaries = ingest_logs(
            opened,
            logs,
            strict=strict,
            metric=metric,
            direction=direction,
            rules=parsed_rules,
            finished=finished,
            progress=_ingest_progress() if shown else None,
            session_name=session_name,
        )
        if model is not None:
            from nrr_stats.bank.reparse import reparse_with_model

            ingested = {summary.session_id for summary in summaries}
            reparse_with_model(opened, parsed_rules, model, session_ids=ingested)
    for summary in summaries:
        for repair in summary.repairs:
            print(f"nrr: {summary.path}: warning: {repair}", file=sys.stderr)
        for line, reason in summary.bad_rows:
            print(f"nrr: {summary.path}:{line}: skipped: {reason}", file=sys.stderr)
        if summary.pending_line is not None:
            print(
                f"nrr: {summary.path}:{summary.pending_line}: not read yet: the last line has no"
                " newline (still being written?); it is read on the next ingest (--finished: now)",
                file=sys.stderr,
            )
    if as_json:
        for summary in summaries:
            print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        print_table(ingest_table(summaries))


def _ingest_progress(every: float = 2.0):
    """A progress callback printing rows read, then rows stored, and their rate to stderr, at
    most every `every` seconds, and when a log is stored."""
    import time

    stage: list = [None, 0.0, 0.0, -1]  # (path, read?), when it began, last line, rows shown

    def report(path: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        key = (path, total is None)
        if key != stage[0]:
            stage[:] = [key, now, now, -1]
            if done != total:
                return
        elif done == stage[3] or (done != total and now - stage[2] < every):
            return
        stage[2], stage[3] = now, done
        rate = done / max(now - stage[1], 1e-9)
        if total is None:
            line = f"nrr: {path}: {done:,} rows read ({rate:,.0f} rows/s)"
        else:
            line = f"nrr: {path}: {done:,} of {total:,} rows stored ({rate:,.0f} rows/s)"
        print(line, file=sys.stderr, flush=True)

    return report


@app.command()
def check(
    proposal: str = typer.Argument(None, help="The proposal text, or - for stdin."),
    proposal_file: Path = typer.Option(
        None, "--proposal-file", "-f", help="Read the proposal from a file (- for stdin)."
    ),
    description: str = typer.Option(
        None,
        "--description",
        help="The change in words, replacing the proposal's own description lines (NRR's flag).",
    ),
    bank: str = BankOption,
    session: str = SessionOption,
    rules: Path = RulesOption,
    no_population_prior: bool = NoPriorOption,
    brief: bool = typer.Option(
        False, "--brief", help="A few lines under 1 KB for an LLM's context instead of JSON."
    ),
    no_record: bool = typer.Option(
        False, "--no-record", help="Do not record the decision in the bank (read only)."
    ),
) -> None:
    """Answer a proposal with one JSON object; exit 0 proceed, 1 caution, 2 avoid, 3 input error.

    The proposal is a description, KEY = value lines and/or a unified diff (any context width:
    only its +/- lines are read). Several changed values: the answer is for the riskiest, and
    `changes_checked` lists them all. The bank must exist (`nrr ingest results.tsv` makes it).

    Example: git diff | nrr check - ; nrr check --proposal-file proposal.txt --brief
    """
    from nrr_stats.cli.check_command import run_check

    raise typer.Exit(
        run_check(
            proposal,
            proposal_file,
            description,
            bank,
            session,
            rules,
            no_population_prior,
            brief,
            no_record,
        )
    )


def _cells(bank: str | None, session: str | None, no_population_prior: bool, prior_cells: bool):
    """The bank's cells against the chosen session, as that session's checks answer them."""
    from nrr_stats.bank import open_bank
    from nrr_stats.check import Checker

    with (
        open_bank(bank, create=False) as opened,
        Checker(opened, use_population_prior=not no_population_prior) as checker,
    ):
        return checker.patterns(session, prior_cells=prior_cells), checker.prior()


WideOption = typer.Option(False, "--wide", help="Also the weighted count and the level used.")


@app.command()
def patterns(
    bank: str = BankOption,
    session: str = SessionOption,
    fmt: str = FormatOption,
    as_json: bool = JsonOption,
    wide: bool = WideOption,
    no_population_prior: bool = NoPriorOption,
    show_all: bool = typer.Option(
        False, "--all", help="Also the prior's fitted cells with no data in the bank."
    ),
) -> None:
    """Per cell: count, keeps, posterior mean, 90% interval, P(rate < base rate).

    Example: nrr patterns --session results.tsv --format csv
    """
    from nrr_stats.check import cell_json
    from nrr_stats.report.listing import emit
    from nrr_stats.report.tables import cell_table

    chosen = output_format(fmt, as_json)
    cells, _ = _cells(bank, session, no_population_prior, show_all)
    emit([cell_json(cell) for cell in cells], chosen, table=lambda: cell_table(cells, wide=wide))


@app.command()
def suggest(
    bank: str = BankOption,
    session: str = SessionOption,
    count: int = typer.Option(5, "--count", "-n", min=1, help="How many cells to suggest."),
    min_experiments: int = typer.Option(
        0, "--min-experiments", min=0, help="Only cells with this many runs."
    ),
    fmt: str = FormatOption,
    as_json: bool = JsonOption,
    wide: bool = WideOption,
    no_population_prior: bool = NoPriorOption,
) -> None:
    """The kinds of change most likely to be kept next, with intervals and counts.

    Example: nrr suggest -n 3 --min-experiments 2
    """
    from nrr_stats.check import cell_json
    from nrr_stats.report.listing import emit
    from nrr_stats.report.tables import cell_table
    from nrr_stats.suggest import suggest_cells

    chosen = output_format(fmt, as_json)
    cells, _ = _cells(bank, session, no_population_prior, True)  # the prior's cells too
    best = suggest_cells(cells, count, min_experiments)
    emit(
        [cell_json(cell) for cell in best],
        chosen,
        table=lambda: cell_table(best, title="Most promising cells", wide=wide),
    )


@app.command()
def report(
    output: Path = typer.Option(
        Path("nrr-report.html"), "--html", help="Where to write the report."
    ),
    bank: str = BankOption,
    session: str = SessionOption,
    no_population_prior: bool = NoPriorOption,
    show_all: bool = typer.Option(
        False, "--all", help="Also the prior's fitted cells with no data in the bank."
    ),
    points: int = typer.Option(
        60, "--trajectory-points", min=2, help="Positions of the base-rate trajectory."
    ),
) -> None:
    """Write a self-contained HTML report for a session: its base rate and keep-rate trajectory,
    the cells' forest plot by category (prior-only greyed), the fit's az.summary, decisions.

    Example: nrr report --html report.html --session results.tsv
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.check import Checker
    from nrr_stats.report.data import report_data
    from nrr_stats.report.html import render_report

    with (
        _progress("writing the report"),
        open_bank(bank, create=False) as opened,
        Checker(opened, use_population_prior=not no_population_prior) as checker,
    ):
        data = report_data(checker, session, prior_cells=show_all, trajectory_points=points)
        page = render_report(data)
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
    """Ingest the bundled 21-experiment seed log and check five proposals.

    Example: nrr demo
    """
    from nrr_stats.demo import run_demo

    run_demo(bank)


@app.command()
def export(
    session: str = typer.Argument(..., help="Session id or log name."),
    bank: str = BankOption,
) -> None:
    """Print a stored session as a results log (TSV, original header).

    Example: nrr export 1 > results.tsv
    """
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
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (default), json, table, csv or tsv."),
) -> None:
    """The past experiments most like a description (cosine similarity), as JSON lines.

    Example: nrr similar "increase LR" --cell learning_rate/increase --format table
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.check import pick_session
    from nrr_stats.report.listing import check_format, emit
    from nrr_stats.similarity.search import similar_experiments_in_bank

    check_format(fmt)
    cell_key = _cell_option(cell) if cell is not None else None
    with open_bank(bank, create=False) as opened:
        session_id = pick_session(opened, session)["id"] if session is not None else None
        rows = similar_experiments_in_bank(
            opened,
            description,
            count,
            failures_only=failures_only,
            session_id=session_id,
            cell=cell_key,
            rules=_rules(rules, bank),
        )
    emit(
        rows,
        fmt,
        columns=["id", "similarity", "status", "category", "direction", "description"],
        title="Most similar experiments",
    )


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


@app.command()
def sessions(
    bank: str = BankOption,
    fmt: str = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """The bank's sessions: id, name, log path, rows, keep rate with its 90% interval, last update.

    Example: nrr sessions --format csv > sessions.csv
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.report.listing import emit
    from nrr_stats.report.tables import session_table
    from nrr_stats.sessions import list_sessions

    with open_bank(bank, create=False) as opened:
        rows = list_sessions(opened)
    emit(rows, output_format(fmt, as_json), table=lambda: session_table(rows))


@app.command()
def doctor(
    bank: str = BankOption,
    fmt: str = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """Where the bank, the population prior, the fit and the caches are, and whether each is
    usable; exit 1 when something needed is not.

    Example: nrr doctor --bank .nrr/bank.db
    """
    from nrr_stats.doctor import diagnose
    from nrr_stats.report.listing import emit

    chosen = output_format(fmt, as_json)
    items = diagnose(bank)
    emit(items, chosen, columns=["item", "status", "where", "detail"], title="nrr doctor")
    if any(item["status"] == "problem" for item in items):
        raise typer.Exit(1)


@app.command()
def migrate(
    bank: str = BankOption,
    lock_timeout: float = LockTimeoutOption,
) -> None:
    """Upgrade an older bank's schema to this nrr-stats (agents on older versions are then
    refused by it): a shared PostgreSQL bank is upgraded only by this command.

    Example: nrr migrate --bank postgresql://agent@db.lab/nrr
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.schema import SCHEMA_VERSION

    with open_bank(bank, create=False, lock_timeout=lock_timeout, upgrade=True) as opened:
        version = opened.schema_version()
        print(f"{opened.location.display}: schema v{version} (current v{SCHEMA_VERSION})")
