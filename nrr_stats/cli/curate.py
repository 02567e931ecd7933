"""Curator commands: curate, records, validate, adopt, reject."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from nrr_stats.cli.app import BankOption, app
from nrr_stats.errors import NrrInputError

ActorOption = typer.Option(None, "--actor", help="Who decides (default: $USER, else 'agent').")


@app.command()
def curate(
    bank: str = BankOption,
    llm: bool = typer.Option(
        False, "--llm", help="Write records with an Anthropic model (needs ANTHROPIC_API_KEY)."
    ),
    deep: bool = typer.Option(
        False, "--deep", help="Also write one depth-N record per route failed N >= 2 times."
    ),
    experiment: str = typer.Option(
        None, "--experiment", help="Curate only this experiment (bank id or its id in the log)."
    ),
    session: str = typer.Option(
        None, "--session", help="Curate only this session (id, name or log path)."
    ),
    artifacts: Path = typer.Option(
        None,
        "--artifacts",
        help="Directory of per-experiment folders <id>/ in NK's layout (exec.log, eval.log,"
        " candidate.py, reasoning.md) or flat <id>.log / <id>.diff / <id>.reasoning.md files"
        " (read capped, redacted); records curated before their artifacts arrived are redone.",
    ),
    weights: Path = typer.Option(
        None, "--weights", help="A TOML weight table laid over the built-in one."
    ),
    model: str = typer.Option(
        None, "--model", help="Model for --llm (default $NRR_CURATOR_MODEL, else a current Sonnet)."
    ),
    base_url: str = typer.Option(
        None, "--base-url", help="API base URL for --llm (default $ANTHROPIC_BASE_URL)."
    ),
    redo: bool = typer.Option(False, "--redo", help="Rewrite records that already exist."),
    limit: int = typer.Option(
        None, "--limit", help="Stop after this many new records (caps a model's cost)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary as JSON."),
) -> None:
    """Turn failed experiments into NK records and set their evidence weights (resumable).

    With --weights, every stored record (not only the new ones) is re-weighted with that table.

    Example: nrr curate --deep
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.curator import apply_weights, load_weights
    from nrr_stats.curator import curate as run_curation
    from nrr_stats.curator.artifacts import check_artifacts_dir

    table = load_weights(weights)
    artifacts_dir = check_artifacts_dir(artifacts) if artifacts is not None else None
    curator = None
    if llm:
        from nrr_stats.curator.llm import ModelCurator, settings_from_env

        curator = ModelCurator(settings_from_env(model, base_url))
    elif model or base_url:
        raise NrrInputError("--model and --base-url apply only with --llm")
    with open_bank(bank) as opened, _progress() as progress:
        summary = run_curation(
            opened,
            model=curator,
            deep=deep,
            experiment=experiment,
            session_id=_session_id(opened, session),
            artifacts_dir=artifacts_dir,
            weights=table,
            redo=redo,
            limit=limit,
            progress=progress,
        )
        reweighted = apply_weights(opened, table) if weights is not None else None
    for name in summary.unmatched_artifacts:
        print(
            f"nrr: warning: {artifacts_dir / name}: artifacts that match no experiment of the"
            " session(s) curated (named after an experiment's id in its log?)",
            file=sys.stderr,
        )
    if as_json:
        print(json.dumps(summary.as_dict() | {"reweighted": reweighted}))
    else:
        for name, files in summary.artifacts_used.items():
            print(f"artifacts of {name}: {', '.join(files)}")
        print(
            f"{summary.source}: {summary.written} record(s) written, {summary.already_done} already done"
            f" (of {summary.failures} failures); depth-N: {summary.deep_written} written,"
            f" {summary.deep_already_done} already done; model fallbacks {summary.model_fallbacks},"
            f" retries {summary.retries}, tokens in/out {summary.input_tokens}/{summary.output_tokens}"
            + (f"; stopped at --limit {limit}" if summary.limited else "")
            + (
                f"; {summary.rediagnosed} re-diagnosed with artifacts that arrived after them"
                if summary.rediagnosed
                else ""
            )
            + (
                f"; {reweighted} stored record(s) re-weighted with {weights}"
                if reweighted is not None
                else ""
            )
        )
    if summary.interrupted:
        raise NrrInputError(
            "interrupted: finished records are stored; rerun the same command to resume"
        )


class _progress:
    """A progress bar on stderr when it is a terminal; silent otherwise."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("curating", total=None)

        def update(done: int, total: int, label: str) -> None:
            self._bar.update(self._task, completed=done, total=total, description=label[:60])

        return update

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "_bar"):
            self._bar.stop()


@app.command()
def records(
    bank: str = BankOption,
    as_json: bool = typer.Option(False, "--json", help="Print the records as one JSON list."),
    output_format: str = typer.Option(
        "table",
        "--format",
        help="table, json (the --json envelopes) or nk (bare NK records, one per line).",
    ),
    session: str = typer.Option(None, "--session", help="Only this session (id, name or path)."),
    experiment: int = typer.Option(None, "--experiment", help="Only this experiment (bank id)."),
    source: str = typer.Option(None, "--source", help="Only this source: rules or llm:<model>."),
    depth: int = typer.Option(None, "--depth", help="Only records of this depth."),
) -> None:
    """List stored NK records with their weights and adoption history.

    Example: nrr records --session 1 --json
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.curator import fetch_records
    from nrr_stats.curator.store import events_for

    if output_format not in ("table", "json", "nk"):
        raise NrrInputError(f"--format must be table, json or nk, not {output_format!r}")
    if output_format == "nk":
        from nrr_stats.curator.exchange import export_records
        from nrr_stats.curator.nk_files import canonical_json

        with open_bank(bank, create=False) as opened:
            bare = export_records(
                opened,
                session_id=_session_id(opened, session),
                experiment_pk=experiment,
                source=source,
                depth=depth,
            )
        for record in bare:
            print(canonical_json(record))
        return
    as_json = as_json or output_format == "json"
    with open_bank(bank, create=False) as opened:
        rows = fetch_records(
            opened,
            session_id=_session_id(opened, session),
            experiment_pk=experiment,
            source=source,
            depth=depth,
        )
        history = events_for(opened, [r["id"] for r in rows])
    if as_json:
        print(
            json.dumps(
                [_record_json(r, history.get(r["id"], [])) for r in rows], ensure_ascii=False
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} NK record(s)")
    for column in (
        "id",
        "exp",
        "depth",
        "source",
        "layer / scope / degree",
        "weight",
        "action",
        "adopt/reject",
        "route",
    ):
        table.add_column(column)
    for row in rows:
        failure = row["record"]["failure"]
        events = history.get(row["id"], [])
        table.add_row(
            str(row["id"]),
            "-" if row["experiment_id"] is None else str(row["experiment_id"]),
            str(row["depth"]),
            row["source"],
            f"{failure['layer']} / {failure['scope']} / {failure['degree']}",
            f"{row['evidence_weight']:.3g}",
            failure["recommended_action"],
            f"{sum(e['action'] == 'adopt' for e in events)}/{sum(e['action'] == 'reject' for e in events)}",
            str(row["record"].get("attempted_route", ""))[:60],
        )
    Console().print(table)


def _session_id(bank, session: str | None) -> int | None:
    """The bank id of the session --session names (id, name or log path), if given."""
    if session is None:
        return None
    from nrr_stats.check import pick_session

    return int(pick_session(bank, session)["id"])


def _record_json(row: dict, history: list[dict]) -> dict:
    return {
        "id": row["id"],
        "route_key": row["route_key"],
        "depth": row["depth"],
        "source": row["source"],
        "evidence_weight": row["evidence_weight"],
        "note": row["note"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "created_at": row["created_at"],
        "record": row["record"],
        "history": history,
    }


@app.command("validate")
def validate_command(
    files: list[Path] = typer.Argument(
        ...,
        help="JSON records (one, or a list), JSON lines (.jsonl), or directories of them.",
    ),
    strict: bool = typer.Option(
        False, "--strict", help="Count NK's length guidance (warnings) as errors too."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per record."),
) -> None:
    """Check NK records (nrr-stats' or the NK paper's own) as NK's validator does.

    Every record of every file is reported (`file:record N: ...`), then a summary line. Errors
    (structure, vocabulary) make a record invalid and the exit code 3; NK's length guidance
    is a warning (exit 0) unless --strict.

    Example: nrr validate records.jsonl
    """
    from nrr_stats.curator.nk_files import read_records
    from nrr_stats.curator.schema import check_record

    items, faults = read_records(files)
    invalid = warned = 0
    first_fault = faults[0].one_line() if faults else None
    for fault in faults:
        print(
            json.dumps({"file": fault.path, "fault": fault.one_line()})
            if as_json
            else fault.one_line()
        )
    for item in items:
        checked = check_record(item.record)
        errors = checked.errors + (checked.warnings if strict else [])
        warnings = [] if strict else checked.warnings
        invalid += bool(errors)
        warned += bool(warnings)
        if errors and first_fault is None:
            first_fault = f"{item.where}: {errors[0]}"
        if as_json:
            print(
                json.dumps(
                    {
                        "file": item.path,
                        "record": item.number,
                        "valid": not errors,
                        "errors": errors,
                        "warnings": warnings,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        for problem in errors:
            print(f"{item.where}: error: {problem}")
        for problem in warnings:
            print(f"{item.where}: warning: {problem}")
        if not errors and not warnings:
            print(f"{item.where}: valid")
    summary = (
        f"{len(items)} record(s) in {len({i.path for i in items} | {f.path for f in faults})}"
        f" file(s): {len(items) - invalid} valid,"
        f" {invalid} invalid, {warned} with warnings"
        + (f"; {len(faults)} file(s) unreadable" if faults else "")
    )
    if not as_json:
        print(summary)
    if invalid or faults:
        raise NrrInputError(f"{summary} (first: {first_fault})")


@app.command("export-records")
def export_records_command(
    out: Path = typer.Argument(
        ..., help="A directory (one JSON file per record, NK's layout) or a .jsonl file."
    ),
    bank: str = BankOption,
    session: str = typer.Option(None, "--session", help="Only this session (id, name or path)."),
    source: str = typer.Option(None, "--source", help="Only this source: rules or llm:<model>."),
    depth: int = typer.Option(None, "--depth", help="Only records of this depth."),
) -> None:
    """Write the bank's records as bare NK records (NK's validator accepts them as written).

    Example: nrr export-records nk_records/
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.curator.exchange import export_records
    from nrr_stats.curator.nk_files import write_records

    with open_bank(bank, create=False) as opened:
        records = export_records(
            opened, session_id=_session_id(opened, session), source=source, depth=depth
        )
    written = write_records(records, out)
    print(f"{len(records)} NK record(s) written to {out} ({len(written)} file(s))")


@app.command("import-records")
def import_records_command(
    paths: list[Path] = typer.Argument(
        ..., help="NK record files (.json, .jsonl) or directories of them (e.g. NK's nk_records/)."
    ),
    bank: str = BankOption,
    route: str = typer.Option(
        None,
        "--route",
        help="CATEGORY/DIRECTION\\[/PARAMETER] for every record (default: each record's own, "
        "else the parser's reading of its attempted route).",
    ),
    weights: Path = typer.Option(
        None, "--weights", help="A TOML weight table laid over the built-in one."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the import's summary as JSON."),
) -> None:
    """Store NK records in the bank (once each, by content), on their routes and experiments.

    Example: nrr import-records ../Negative_Knowledge/nk_records/
    """
    from nrr_stats.bank import open_bank
    from nrr_stats.curator import load_weights
    from nrr_stats.curator.exchange import import_records
    from nrr_stats.curator.nk_files import read_records

    table = load_weights(weights)
    forced = _route(route) if route is not None else None
    items, faults = read_records(paths)
    if faults:
        raise NrrInputError(
            faults[0].message
            + (f" (and {len(faults) - 1} more file fault(s))" if len(faults) > 1 else "")
            + "; nothing imported",
            path=faults[0].path,
            line=faults[0].line,
        )
    with open_bank(bank) as opened:
        summary = import_records(opened, items, weights=table, route=forced)
    if as_json:
        print(json.dumps(summary.as_dict()))
        return
    routes = ", ".join(f"{name} {count}" for name, count in sorted(summary.routes.items()))
    print(
        f"{summary.stored} NK record(s) imported, {summary.already_stored} already in the bank"
        f" (of {summary.read}); {summary.attached} attached to an experiment of this bank"
        + (f"; {summary.rerouted} moved onto --route {route}" if summary.rerouted else "")
        + (f"; routes: {routes}" if routes else "")
    )


def _route(text: str) -> tuple[str, str, str]:
    from nrr_stats.curator.schema import _CATEGORY_NAME
    from nrr_stats.taxonomy import DIRECTIONS

    parts = text.split("/", 2)
    if len(parts) < 2 or not _CATEGORY_NAME.match(parts[0]) or parts[1] not in DIRECTIONS:
        raise NrrInputError(
            f"--route {text!r} must be CATEGORY/DIRECTION[/PARAMETER] with a snake_case category"
            f" and a direction among {', '.join(DIRECTIONS)}"
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def _actor(actor: str | None) -> str:
    return actor or os.environ.get("USER") or "agent"


@app.command()
def adopt(
    record_id: int = typer.Argument(..., help="The record's id (see `nrr records`)."),
    bank: str = BankOption,
    actor: str = ActorOption,
    reason: str = typer.Option("", "--reason", help="Why it is adopted."),
) -> None:
    """Record that an agent adopts an NK record before its next proposal.

    Example: nrr adopt 12 --reason "same optimizer regime"
    """
    _decide(bank, record_id, "adopt", _actor(actor), reason)


@app.command()
def reject(
    record_id: int = typer.Argument(..., help="The record's id (see `nrr records`)."),
    reason: str = typer.Option(..., "--reason", help="Why it is rejected (required)."),
    bank: str = BankOption,
    actor: str = ActorOption,
) -> None:
    """Record that an agent rejects an NK record, and why.

    Example: nrr reject 12 --reason "the crash was a typo, not the idea"
    """
    _decide(bank, record_id, "reject", _actor(actor), reason)


def _decide(bank: str | None, record_id: int, action: str, actor: str, reason: str) -> None:
    from nrr_stats.bank import open_bank
    from nrr_stats.curator import record_event

    with open_bank(bank, create=False) as opened:
        event = record_event(opened, record_id, action, actor, reason)
    print(json.dumps(event, ensure_ascii=False))
