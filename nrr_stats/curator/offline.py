"""The offline curator: deterministic rules from what the bank knows, one depth-1 record per failure.

Inputs: the outcome and signed delta (positive = better than the running best) against the
log's noise band, the change's category / direction / parameter, crash text from a log tail
or the description, and the earlier attempts at the same route in the session. Where the
evidence cannot decide, the record says `inconclusive` instead of guessing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.curator.redact import redact
from nrr_stats.curator.schema import ROUTE_TEXT_CAP

FAILED_STATUSES = ("discard", "crash")


@dataclass(frozen=True)
class CrashCause:
    """A recognised crash cause and the NK failure block it implies."""

    kind: str
    pattern: re.Pattern[str]  # searched in a log tail
    in_description: re.Pattern[str]  # stricter: a description names the change, not only the crash
    failure: dict[str, str]
    rationale: str
    alternative: str


def _failure(layer: str, scope: str, degree: str, action: str, risk: str) -> dict[str, str]:
    return {
        "layer": layer,
        "scope": scope,
        "degree": degree,
        "recommended_action": action,
        "risk": risk,
    }


# In priority order: the first cause whose pattern matches the crash text wins.
CRASH_CAUSES: tuple[CrashCause, ...] = (
    CrashCause(
        "llm_error",
        re.compile(
            r"LLM\s*(call|api|request)?\s*(error|fail)|(anthropic|openai)\.\w*Error|APIConnectionError|"
            r"RateLimitError|rate.?limit(ed)?\b|overloaded_error|api\s*(error|failure|timeout)|"
            r"expecting value|context (length|window) exceeded",
            re.IGNORECASE,
        ),
        re.compile(
            r"LLM\s*(call|api|request)?\s*(error|fail)|api\s*(error|failure|timeout)|rate.?limit|overloaded|expecting value",
            re.IGNORECASE,
        ),
        _failure(
            "communication_failure",
            "local_failure",
            "artifact_driven",
            "retry",
            "low_risk_omission",
        ),
        "The loop's own LLM call failed, so the experiment never ran as intended; it says nothing about the idea.",
        "Rerun the same experiment once the LLM call succeeds.",
    ),
    CrashCause(
        "out_of_memory",
        re.compile(
            r"out of memory|\bOOM\b|MemoryError|cannot allocate memory|CUBLAS_STATUS_ALLOC_FAILED",
            re.IGNORECASE,
        ),
        re.compile(r"out of memory|\bOOM\b|MemoryError", re.IGNORECASE),
        _failure(
            "implementation_failure",
            "regime_bound_failure",
            "inconclusive",
            "change_method",
            "low_risk_omission",
        ),
        "Ran out of memory: the change did not fit this memory budget, so its effect on the metric was never measured.",
        "Make it fit before judging it: a smaller micro-batch with gradient accumulation, activation checkpointing, or a smaller step of the same change.",
    ),
    CrashCause(
        "nan",
        re.compile(r"\bnan\b|\binf(inity)?\b|diverg|explod|non-?finite", re.IGNORECASE),
        re.compile(r"\bnan\b|\binf\b|diverge|exploded|non-?finite", re.IGNORECASE),
        _failure(
            "method_failure",
            "regime_bound_failure",
            "unstable",
            "narrow_claim",
            "medium_risk_drift",
        ),
        "Training diverged (NaN/inf): at this setting the change makes optimisation unstable.",
        "Take a smaller step of the same change, or add warmup / gradient clipping, before trying it again.",
    ),
    CrashCause(
        "shape_error",
        re.compile(
            r"shape|size mismatch|dimension|mat1 and mat2|must match the size|broadcast",
            re.IGNORECASE,
        ),
        re.compile(r"shape (error|mismatch)|size mismatch|mat1 and mat2", re.IGNORECASE),
        _failure(
            "implementation_failure",
            "local_failure",
            "artifact_driven",
            "retry",
            "low_risk_omission",
        ),
        "A tensor shape error: the change was wired in wrongly, so the idea itself was not tested.",
        "Fix the shapes the change touches (every layer that consumes the changed dimension) and rerun the same idea.",
    ),
    CrashCause(
        "import_error",
        re.compile(
            r"ModuleNotFoundError|ImportError|No module named|cannot import name", re.IGNORECASE
        ),
        re.compile(r"ModuleNotFoundError|ImportError|No module named|import error", re.IGNORECASE),
        _failure(
            "implementation_failure",
            "local_failure",
            "artifact_driven",
            "change_method",
            "low_risk_omission",
        ),
        "A module could not be imported: an environment fault before training, not evidence about the idea.",
        "Implement the change with what is installed (or add the dependency) and rerun it.",
    ),
    CrashCause(
        "timeout",
        re.compile(
            r"time\s?out|timed out|deadline exceeded|exceeded (the )?(time|budget)|wall.?clock",
            re.IGNORECASE,
        ),
        re.compile(r"timed out|\btime ?out\b(?! (value|setting))|deadline exceeded", re.IGNORECASE),
        _failure(
            "implementation_failure", "local_failure", "inconclusive", "retry", "low_risk_omission"
        ),
        "The run hit the time limit before it finished; how the change affects the metric is unknown.",
        "Rerun with the budget the loop allows, or check first that the change does not slow each step down.",
    ),
    CrashCause(
        "infrastructure",
        re.compile(
            r"no space|disk|network|connection|\bnccl\b|driver|preempt|\bssh\b|socket|permission denied",
            re.IGNORECASE,
        ),
        re.compile(r"no space|disk full|preempt|\bnccl\b|node fail|harness", re.IGNORECASE),
        _failure(
            "implementation_failure",
            "local_failure",
            "artifact_driven",
            "retry",
            "low_risk_omission",
        ),
        "The harness failed (disk, network, driver or node): the crash is outside the idea.",
        "Rerun the same experiment once the machine is healthy.",
    ),
    CrashCause(
        "code_error",
        re.compile(
            r"Traceback|SyntaxError|NameError|TypeError|AttributeError|KeyError|IndexError|ValueError|AssertionError|RuntimeError|bug|typo",
            re.IGNORECASE,
        ),
        re.compile(r"Traceback|\b[A-Z][a-z]+Error\b|\bbug\b|typo|syntax", re.IGNORECASE),
        _failure(
            "implementation_failure",
            "local_failure",
            "artifact_driven",
            "retry",
            "low_risk_omission",
        ),
        "The code raised an error before a result: an implementation fault, not evidence about the idea.",
        "Fix the error the traceback names and rerun the same idea.",
    ),
)


@dataclass(frozen=True)
class RouteHistory:
    """Earlier attempts at the same route (cell and parameter) in the same session."""

    kept: int = 0
    failed: int = 0


@dataclass(frozen=True)
class FailureContext:
    """Everything the rules look at for one failed experiment."""

    experiment: Mapping[str, Any]
    task_id: str
    metric_name: str = "metric"
    scale: float | None = None  # median absolute delta of the log's discards
    history: RouteHistory = field(default_factory=RouteHistory)
    log_tail: str = ""


def clip(text: str, cap: int) -> str:
    """The text cut to at most `cap` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= cap else text[: cap - 1].rstrip() + "…"


def is_failure(experiment: Mapping[str, Any]) -> bool:
    """True for experiments the curator writes a record for (discards and crashes)."""
    return experiment.get("status") in FAILED_STATUSES


def identifiable_route(category: str, direction: str, parameter: str) -> bool:
    """A route is one thing only when it names a parameter or a real category (not 'other'/'multiple')."""
    return bool(parameter) or (category not in ("other", "multiple") and direction != "other")


def session_scale(experiments: Sequence[Mapping[str, Any]]) -> float | None:
    """The log's scale: median absolute delta of its discards (of all finite deltas when none)."""
    discards = [_finite(e.get("delta")) for e in experiments if e.get("status") == "discard"]
    pool = [abs(d) for d in discards if d is not None and d != 0]
    if not pool:
        pool = [
            abs(d) for e in experiments if (d := _finite(e.get("delta"))) is not None and d != 0
        ]
    if not pool:
        return None
    pool.sort()
    middle = len(pool) // 2
    return pool[middle] if len(pool) % 2 else (pool[middle - 1] + pool[middle]) / 2


def route_history(experiments: Sequence[Mapping[str, Any]], index: int) -> RouteHistory:
    """Kept and failed attempts at experiment `index`'s route among the rows before it."""
    target = experiments[index]
    route = (target.get("category"), target.get("direction"), target.get("parameter"))
    if not identifiable_route(*(str(part or "") for part in route)):
        return RouteHistory()
    kept = failed = 0
    for earlier in experiments[:index]:
        if (earlier.get("category"), earlier.get("direction"), earlier.get("parameter")) != route:
            continue
        if earlier.get("status") == "keep":
            kept += 1
        elif earlier.get("status") in FAILED_STATUSES:
            failed += 1
    return RouteHistory(kept=kept, failed=failed)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def crash_cause(text: str, *, description: bool = False) -> tuple[CrashCause, str] | None:
    """The first recognised cause in a log tail (or, stricter, a description), with the line that shows it."""
    # The cause of a crash is near the end of a log: read it from the last line that names one.
    lines = [text] if description else reversed(text.splitlines())
    for line in lines:
        for cause in CRASH_CAUSES:
            if (cause.in_description if description else cause.pattern).search(line):
                return cause, redact(clip(line, 120))
    return None


def attempted_route(experiment: Mapping[str, Any]) -> str:
    """The route as one line: the description and its parsed category / direction / parameter."""
    category = str(experiment.get("category") or "other")
    direction = str(experiment.get("direction") or "other")
    parameter = str(experiment.get("parameter") or "")
    tag = f"[{category}/{direction}{'/' + parameter if parameter else ''}]"
    description = clip(
        redact(str(experiment.get("description") or "")), ROUTE_TEXT_CAP - len(tag) - 1
    )
    return f"{description} {tag}" if description else tag


def _thing(experiment: Mapping[str, Any]) -> str:
    category = str(experiment.get("category") or "")
    named = category if category not in ("", "other", "multiple") else "the changed part"
    return str(experiment.get("parameter") or named)


def _method_alternative(experiment: Mapping[str, Any]) -> str:
    thing = _thing(experiment)
    kept = experiment.get("from_value") or ""
    at = f" (kept value {kept})" if kept else ""
    direction = experiment.get("direction")
    if direction == "increase":
        return f"Keep {thing} at its kept value{at}; if pursued, try a smaller increase, or decrease it instead."
    if direction == "decrease":
        return f"Keep {thing} at its kept value{at}; if pursued, try a smaller decrease, or increase it instead."
    if direction == "replace":
        return f"Keep the current {thing}; if a replacement is still wanted, try a different option than this one."
    if direction == "add":
        return (
            f"Leave {thing} out for now; spend the next experiment on a different kind of change."
        )
    if direction == "remove":
        return f"Keep {thing}: removing it did not pay; look for savings elsewhere."
    return "Make one targeted change in a single category, so that its effect can be attributed."


def _fmt(value: float) -> str:
    return f"{value:+.4g}"


def curate_offline(context: FailureContext) -> dict[str, Any]:
    """The depth-1 record (the paper's fields only) for one failed experiment."""
    experiment = context.experiment
    status = str(experiment.get("status") or "")
    outcome = experiment.get("outcome")
    if status == "crash" or outcome in ("crash_code", "crash_infra"):
        failure, rationale, alternative, observation = _crash(context)
    else:
        failure, rationale, alternative, observation = _discard(context)
    return {
        "task_id": clip(context.task_id, 120) or "unknown",
        "attempted_route": attempted_route(experiment),
        "observation": clip(observation, ROUTE_TEXT_CAP),
        "failure": failure,
        "rationale": clip(rationale, 300),
        "recommended_alternative": clip(alternative, 300),
    }


def _crash(context: FailureContext) -> tuple[dict[str, str], str, str, str]:
    experiment = context.experiment
    found = crash_cause(context.log_tail) if context.log_tail else None
    where = "log tail"
    if found is None:
        found = crash_cause(str(experiment.get("description") or ""), description=True)
        where = "description"
    if found is not None:
        cause, line = found
        observation = f"crash ({cause.kind.replace('_', ' ')}, from the {where}): {line}"
        return dict(cause.failure), cause.rationale, cause.alternative, observation
    if experiment.get("outcome") == "crash_infra":
        failure = _failure(
            "implementation_failure",
            "local_failure",
            "artifact_driven",
            "retry",
            "low_risk_omission",
        )
        rationale = "The log marks this crash as the harness's, not the idea's; no log tail names the cause."
        return (
            failure,
            rationale,
            "Rerun the same experiment once the harness is healthy.",
            "crash (infrastructure)",
        )
    failure = _failure(
        "implementation_failure", "local_failure", "inconclusive", "retry", "low_risk_omission"
    )
    rationale = (
        "Crashed, and neither a log tail nor the description names the cause: whether the idea or its code "
        "failed is unknown."
    )
    hint = "" if context.log_tail else " (pass --artifacts DIR with its log for a diagnosis)"
    observation = f"crash, cause unknown{hint}"
    return (
        failure,
        rationale,
        "Read the run's log; fix the error if it is in the code, then rerun the same idea.",
        observation,
    )


def _discard(context: FailureContext) -> tuple[dict[str, str], str, str, str]:
    experiment = context.experiment
    delta = _finite(experiment.get("delta"))
    scale = context.scale if context.scale and context.scale > 0 else None
    metric = context.metric_name or "metric"
    history = context.history
    # The noise band and regression margin of ingest's outcome classifier (imported here: a
    # check that reads NK records never loads the ingest package).
    from nrr_stats.ingest.outcomes import MARGINAL_FRACTION, REGRESSION_MULTIPLE

    outcome = experiment.get("outcome")
    if outcome not in ("marginal", "no_improvement", "regression") and delta is not None and scale:
        outcome = (
            "marginal"
            if delta >= -MARGINAL_FRACTION * scale
            else "regression"
            if delta < -REGRESSION_MULTIPLE * scale
            else "no_improvement"
        )
    band = f", noise band ±{MARGINAL_FRACTION * scale:.3g}" if scale else ""
    value = _finite(experiment.get("metric"))
    shown = f" {value:.6g}" if value is not None else ""
    if delta is None or outcome not in ("marginal", "no_improvement", "regression"):
        observation = f"discarded; {metric}{shown}, no usable delta against the best kept value"
        failure = _failure(
            "method_failure", "local_failure", "inconclusive", "retry", "low_risk_omission"
        )
        rationale = "Not kept, but the log gives no usable metric delta for it, so how much worse it was is unknown."
        return failure, rationale, _method_alternative(experiment), observation

    observation = f"discarded ({outcome.replace('_', ' ')}): {metric}{shown}, {_fmt(delta)} vs best kept{band}"
    confounded = (
        not identifiable_route(
            str(experiment.get("category") or ""),
            str(experiment.get("direction") or ""),
            str(experiment.get("parameter") or ""),
        )
        or experiment.get("category") == "multiple"
    )
    if outcome == "marginal":
        risk = "high_risk_false_progress" if delta > 0 else "medium_risk_drift"
        failure = _failure("method_failure", "local_failure", "inconclusive", "narrow_claim", risk)
        rationale = f"The change moved {metric} by {_fmt(delta)}, inside this log's noise band: indistinguishable from no effect."
        alternative = "Claim no gain from it; rerun with another seed only if the hoped-for gain exceeds the noise band, else move on."
        return failure, rationale, alternative, observation

    degree = "contradicted" if outcome == "regression" else "partial"
    size = (
        f"{abs(delta) / scale:.1f}x the log's typical discard gap"
        if scale
        else "by an unknown margin"
    )
    rationale = f"Clean run, {metric} worse by {abs(delta):.4g} ({size})"
    scope, action, risk = (
        "local_failure",
        "change_method",
        "low_risk_omission" if outcome == "regression" else "medium_risk_drift",
    )
    if confounded:
        rationale += (
            "; several or unclear changes at once, so the failure cannot be pinned on one route."
        )
    elif history.kept:
        scope = "regime_bound_failure"
        rationale += f"; the same route was kept {history.kept} time(s) earlier, so it fails at this setting, not everywhere."
    elif history.failed >= 2:
        scope, action, risk = "general_failure", "abandon_route", "medium_risk_drift"
        rationale += f"; the route already failed {history.failed} time(s) before in this log and was never kept."
    else:
        rationale += "; one attempt at one setting."
    return (
        _failure("method_failure", scope, degree, action, risk),
        rationale,
        _method_alternative(experiment),
        observation,
    )
