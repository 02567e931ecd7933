"""A curation run over the bank: every failure gets a depth-1 record, every route failed N >= 2
times a depth-N record (`deep`), each stored with its evidence weight in its own transaction.

Runs are resumable: a record whose (route, depth, source) is stored is not redone, so an
interrupted run (Ctrl-C, API outage) picks up where it stopped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nrr_stats.bank.store import Bank
from nrr_stats.curator.artifacts import Artifacts, artifact_names, load_artifacts
from nrr_stats.curator.deep import Route, curate_deep, failed_routes
from nrr_stats.curator.offline import (
    FailureContext,
    curate_offline,
    is_failure,
    route_history,
    session_scale,
)
from nrr_stats.curator.redact import redact
from nrr_stats.curator.schema import validate
from nrr_stats.curator.store import (
    curated_keys,
    experiment_key,
    fits_bank_id,
    record_artifacts,
    route_key,
    save_record,
)
from nrr_stats.curator.weights import WeightTable, load_weights
from nrr_stats.errors import NrrInputError

if TYPE_CHECKING:
    from nrr_stats.curator.llm import ModelCurator

Progress = Callable[[int, int, str], None]
OFFLINE_BATCH = 500


@dataclass
class CurationSummary:
    """What one run did: records written per depth, skipped as already done, model fallbacks, tokens."""

    source: str
    failures: int = 0
    written: int = 0
    already_done: int = 0
    deep_written: int = 0
    deep_already_done: int = 0
    model_fallbacks: int = 0
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    interrupted: bool = False
    limited: bool = False  # stopped at the run's --limit
    rediagnosed: int = 0  # records redone because their artifacts arrived after them
    record_ids: list[int] = field(default_factory=list)
    # --artifacts: the files read per experiment (its id in the log), and the folders or flat
    # files of the directory that name no experiment of the sessions curated.
    artifacts_used: dict[str, list[str]] = field(default_factory=dict)
    unmatched_artifacts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "record_ids"} | {
            "record_ids": self.record_ids
        }


@dataclass(frozen=True)
class Job:
    """One failed experiment with everything the curators read about it."""

    context: FailureContext
    artifacts: Artifacts
    session: Mapping[str, Any]


def find_experiment(bank: Bank, ident: str) -> dict[str, Any]:
    """An experiment by bank id (digits) or by its id in the log (e.g. the commit); one-line errors otherwise."""
    rows: list[dict[str, Any]] = []
    if ident.isascii() and ident.isdigit() and fits_bank_id(int(ident)):
        rows = bank.experiments_where("id", int(ident))
    if not rows:
        rows = bank.experiments_where("experiment_id", ident)
    if not rows:
        raise NrrInputError(
            f"no experiment {ident!r} in the bank (give its bank id or its id in the log)"
        )
    if len(rows) > 1:
        raise NrrInputError(
            f"{len(rows)} experiments have the id {ident!r}; give the bank id instead"
        )
    if not is_failure(rows[0]):
        raise NrrInputError(
            f"experiment {ident!r} has status {rows[0]['status']}: only discards and crashes are curated"
        )
    return rows[0]


def _session_jobs(
    bank: Bank, session: Mapping[str, Any], artifacts_dir: Path | None
) -> tuple[list[dict], dict[int, Job]]:
    experiments = bank.experiments(int(session["id"]))
    scale = session_scale(experiments)
    jobs: dict[int, Job] = {}
    for index, row in enumerate(experiments):
        if not is_failure(row):
            continue
        artifacts = load_artifacts(artifacts_dir, str(row["experiment_id"]))
        context = FailureContext(
            experiment=row,
            task_id=str(session["session_key"]),
            metric_name=str(session["metric_name"] or "metric"),
            scale=scale,
            history=route_history(experiments, index),
            log_tail=artifacts.log_tail,
        )
        jobs[int(row["id"])] = Job(context, artifacts, session)
    return experiments, jobs


def nrr_fields(experiment: Mapping[str, Any], source: str, weight: float) -> dict[str, Any]:
    """The fields nrr-stats adds to a paper record."""
    return {
        "experiment_id": int(experiment["id"]),
        "category": str(experiment["category"]),
        "direction": str(experiment["direction"]),
        "parameter": str(experiment["parameter"] or ""),
        "source": source,
        "evidence_weight": weight,
    }


def _facts(job: Job) -> dict[str, Any]:
    from nrr_stats.ingest.outcomes import MARGINAL_FRACTION  # ingest's noise band

    row, context, session = job.context.experiment, job.context, job.session
    band = f"±{MARGINAL_FRACTION * context.scale:.4g}" if context.scale else "unknown"
    return {
        "task (log)": session["name"],
        "metric": f"{session['metric_name']} ({session['metric_direction']} is better); noise band {band}",
        "experiment": f"{row['experiment_id']} (row {row['row_number']})",
        "description": redact(str(row["description"])),
        "parsed change": f"category {row['category']}, direction {row['direction']}, parameter "
        f"{row['parameter'] or '-'}, from {row['from_value'] or '-'} to {row['to_value'] or '-'}",
        "status / outcome": f"{row['status']} / {row['outcome']}",
        "delta vs best kept (positive = better)": row["delta"],
        "earlier attempts at this route in this log": f"{context.history.kept} kept, {context.history.failed} failed",
    }


def curate(
    bank: Bank,
    *,
    model: ModelCurator | None = None,
    deep: bool = False,
    experiment: str | None = None,
    session_id: int | None = None,
    artifacts_dir: Path | None = None,
    weights: WeightTable | None = None,
    redo: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
) -> CurationSummary:
    """Curate the bank's failures (or one experiment) with the rules, or with `model` when given;
    `limit` stops after that many new records (a model's cost in one run)."""
    if limit is not None and limit < 1:
        raise NrrInputError(f"--limit must be at least 1, not {limit}")
    table = weights or load_weights()
    source = model.settings.source if model else "rules"
    summary = CurationSummary(source=source)
    target = find_experiment(bank, experiment) if experiment else None
    sessions = bank.sessions()
    if target is not None:
        sessions = [s for s in sessions if s["id"] == target["session_id"]]
    elif session_id is not None:
        sessions = [s for s in sessions if s["id"] == session_id]
        if not sessions:
            raise NrrInputError(f"no session {session_id} in the bank")

    plan: list[tuple[str, Any]] = []
    known_ids: set[str] = set()
    for session in sessions:
        experiments, jobs = _session_jobs(bank, session, artifacts_dir)
        known_ids.update(str(e["experiment_id"]) for e in experiments)
        for pk, job in jobs.items():
            if target is None or pk == target["id"]:
                plan.append(("depth1", job))
                if job.artifacts.files:
                    name = str(job.context.experiment["experiment_id"])
                    summary.artifacts_used[name] = list(job.artifacts.files)
        if deep:
            routes = failed_routes(experiments)
            kept = Counter(str(e["category"]) for e in experiments if e["status"] == "keep")
            for route in routes:
                if target is None or any(f["id"] == target["id"] for f in route.failures):
                    plan.append(("deep", (route, routes, kept, jobs)))
    summary.failures = sum(1 for kind, _ in plan if kind == "depth1")
    if artifacts_dir is not None:
        summary.unmatched_artifacts = sorted(artifact_names(artifacts_dir) - known_ids)

    done_depth1 = set() if redo else curated_keys(bank, source, 1)
    if model is not None and not redo:
        done_depth1 |= _model_fallbacks(bank, source)
    arrived = (
        _artifacts_arrived(bank, plan, done_depth1, source)
        if artifacts_dir is not None and not redo
        else set()
    )
    done_depth1 -= arrived
    # Rules are fast: commit them in batches. A model's records commit one by one, and no
    # transaction stays open (holding the bank's write lock) while the API is called.
    batch = 1 if model is not None else OFFLINE_BATCH
    try:
        for start in range(0, len(plan), batch):
            with bank.transaction() if model is None else nullcontext():
                for index in range(start, min(start + batch, len(plan))):
                    if limit is not None and summary.written + summary.deep_written >= limit:
                        summary.limited = True
                        break
                    kind, item = plan[index]
                    if progress:
                        progress(index, len(plan), _label(kind, item))
                    if kind == "depth1":
                        _depth1(
                            bank, item, model, table, source, redo, done_depth1, summary, arrived
                        )
                    else:
                        _deep(
                            bank,
                            *item,
                            model=model,
                            table=table,
                            source=source,
                            redo=redo,
                            summary=summary,
                        )
            if summary.limited:
                break
        if progress:
            progress(len(plan), len(plan), "done")
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


def _artifacts_arrived(
    bank: Bank, plan: Sequence[tuple[str, Any]], done: set[str], source: str
) -> set[str]:
    """Keys of finished depth-1 records curated without the artifacts their experiment has now
    (the files differ from those the record names): they are diagnosed again."""
    wanted = {
        experiment_key(int(job.context.experiment["id"])): job.artifacts.files
        for kind, job in plan
        if kind == "depth1" and job.artifacts.files
    }
    wanted = {key: files for key, files in wanted.items() if key in done}
    if not wanted:
        return set()
    used = record_artifacts(bank, wanted, source)
    if source != "rules":  # a rules record standing in for a failed model answer counts too
        for key, files in record_artifacts(bank, wanted, "rules").items():
            used[key] = sorted(set(used.get(key, [])) | set(files))
    return {key for key, files in wanted.items() if set(used.get(key, ())) != set(files)}


def _label(kind: str, item: Any) -> str:
    if kind == "depth1":
        row = item.context.experiment
        return f"{row['experiment_id']}: {str(row['description'])[:50]}"
    route = item[0]
    return f"depth-{len(route.failures)} {route.direction} {route.thing}"


def _model_fallbacks(bank: Bank, source: str, depth: int = 1) -> set[str]:
    """route_keys of rules records that stand in for this model's failed answers (finished too)."""
    return bank.nk_route_keys("rules", depth, note_starting=f"{source} answer invalid")


def _depth1(
    bank: Bank,
    job: Job,
    model: ModelCurator | None,
    table: WeightTable,
    source: str,
    redo: bool,
    done: set[str],
    summary: CurationSummary,
    arrived: set[str] = frozenset(),
) -> None:
    row = job.context.experiment
    key = experiment_key(int(row["id"]))
    if key in done:
        summary.already_done += 1
        return
    if key in arrived:
        summary.rediagnosed += 1
        redo = True
    seen = {"artifacts": list(job.artifacts.files)} if job.artifacts.files else None
    draft = curate_offline(job.context)
    if model is None:
        record_id = _store(bank, draft, row, "rules", table, key, replace=redo, extra=seen)
        _count(summary, record_id, deep=False)
        return
    from nrr_stats.curator.llm import build_prompt

    prompt = redact(build_prompt(_facts(job), job.artifacts.present(), draft))
    answer = model.curate(prompt, nrr_fields(row, source, 1.0), depth=1)
    summary.retries += answer.retries
    summary.input_tokens += answer.input_tokens
    summary.output_tokens += answer.output_tokens
    if answer.record is not None:
        record_id = _store(
            bank,
            answer.record,
            row,
            source,
            table,
            key,
            replace=redo,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            extra=seen,
        )
        _count(summary, record_id, deep=False)
        return
    summary.model_fallbacks += 1
    record_id = _store(
        bank,
        draft,
        row,
        "rules",
        table,
        key,
        replace=True,
        note=answer.note,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        extra=seen,
    )
    _count(summary, record_id, deep=False)


def _deep(
    bank: Bank,
    route: Route,
    routes: Sequence[Route],
    kept: Mapping[str, int],
    jobs: Mapping[int, Job],
    *,
    model: ModelCurator | None,
    table: WeightTable,
    source: str,
    redo: bool,
    summary: CurationSummary,
) -> None:
    depth = len(route.failures)
    key = route_key(route.session_id, route.category, route.direction, route.parameter)
    last = route.failures[-1]
    done = curated_keys(bank, source, depth)
    if model is not None:
        done |= _model_fallbacks(bank, source, depth)
    if not redo and key in done:
        summary.deep_already_done += 1
        return
    contexts = [jobs[int(f["id"])].context for f in route.failures]
    draft = curate_deep(route, contexts, routes, kept)
    extra = {"experiment_ids": [int(f["id"]) for f in route.failures]}
    if model is None:
        _count(
            summary,
            _store(bank, draft, last, "rules", table, key, replace=redo, extra=extra),
            deep=True,
        )
        return
    from nrr_stats.curator.llm import build_prompt

    job = jobs[int(last["id"])]
    facts = _facts(job) | {"route": draft["attempted_route"], "rounds": depth}
    prompt = redact(build_prompt(facts, job.artifacts.present(), draft))
    answer = model.curate(prompt, nrr_fields(last, source, 1.0), depth=depth)
    summary.retries += answer.retries
    summary.input_tokens += answer.input_tokens
    summary.output_tokens += answer.output_tokens
    tokens = {
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "extra": extra,
    }
    if answer.record is not None:
        _count(
            summary,
            _store(bank, answer.record, last, source, table, key, replace=redo, **tokens),
            deep=True,
        )
        return
    summary.model_fallbacks += 1
    _count(
        summary,
        _store(bank, draft, last, "rules", table, key, replace=True, note=answer.note, **tokens),
        deep=True,
    )


def _store(
    bank: Bank,
    paper: Mapping[str, Any],
    experiment: Mapping[str, Any],
    source: str,
    table: WeightTable,
    key: str,
    *,
    replace: bool,
    note: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> int | None:
    record = {
        **paper,
        **nrr_fields(experiment, source, table.weight(paper["failure"])),
        **(extra or {}),
    }
    problems = validate(record)
    if problems:  # a bug in the curators, never the user's input: fail loudly with the record
        raise AssertionError(
            f"curator produced an invalid record: {problems}: {json.dumps(record)[:500]}"
        )
    return save_record(
        bank,
        record,
        experiment_pk=int(experiment["id"]),
        key=key,
        note=note,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        replace=replace,
    )


def _count(summary: CurationSummary, record_id: int | None, *, deep: bool) -> None:
    if record_id is None:
        if deep:
            summary.deep_already_done += 1
        else:
            summary.already_done += 1
        return
    summary.record_ids.append(record_id)
    if deep:
        summary.deep_written += 1
    else:
        summary.written += 1
