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
        help="Directory of <id>.log / <id>.diff / <id>.reasoning.md files (read capped, redacted).",
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
    if as_json:
        print(json.dumps(summary.as_dict() | {"reweighted": reweighted}))
    else:
        print(
            f"{summary.source}: {summary.written} record(s) written, {summary.already_done} already done"
            f" (of {summary.failures} failures); depth-N: {summary.deep_written} written,"
            f" {summary.deep_already_done} already done; model fallbacks {summary.model_fallbacks},"
            f" retries {summary.retries}, tokens in/out {summary.input_tokens}/{summary.output_tokens}"
            + (f"; stopped at --limit {limit}" if summary.limited else "")
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
            str(row["experiment_id"]),
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
    file: Path = typer.Argument(
        ..., help="A JSON record, a JSON list of records, or JSON lines (.jsonl)."
    ),
) -> None:
    """Check NK records (nrr-stats' or the NK paper's own) against the schema.

    Example: nrr validate records.jsonl
    """
    from nrr_stats.curator import validate

    records = _read_records(file)
    for index, record in enumerate(records, start=1):
        problems = validate(record)
        if problems:
            where = f"record {index}: " if len(records) > 1 else ""
            raise NrrInputError(
                f"{where}{len(problems)} violation(s): " + "; ".join(problems), path=str(file)
            )
    print(f"{file}: {len(records)} valid record(s)")


def _read_records(file: Path) -> list:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise NrrInputError(f"cannot read: {reason}", path=str(file)) from None
    if file.suffix == ".jsonl":
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise NrrInputError(
                        f"not JSON ({error.msg})", path=str(file), line=number
                    ) from None
        if not records:
            raise NrrInputError("no records in the file", path=str(file))
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise NrrInputError(f"not JSON ({error.msg})", path=str(file), line=error.lineno) from None
    records = data if isinstance(data, list) else [data]
    if not records:
        raise NrrInputError("no records in the file", path=str(file))
    return records


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
