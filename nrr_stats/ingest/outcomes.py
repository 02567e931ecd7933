"""Per-row outcomes of TAXONOMY.md, from the metric's movement against the running best kept value.

Prefix safety: the delta at row t uses rows <= t only. The two thresholds that split discards
into marginal / no_improvement / regression come from the whole array passed in (the log's own
spread of discard deltas); a backtest that needs strict prefix safety passes the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from nrr_stats.ingest.status import map_status

# A discard within MARGINAL_FRACTION x scale of the running best is within the log's noise band;
# one worse than REGRESSION_MULTIPLE x scale is a regression for this log. The scale is the median
# absolute delta of the log's discards, so both thresholds move with the metric's units.
MARGINAL_FRACTION = 0.25
REGRESSION_MULTIPLE = 3.0
ROUNDING_SLACK = 1e-9

# A row that says it is a baseline (its description or raw status starts with the word, after
# any markup: "baseline", "**Baseline**", "[baseline] run"): a reference row (EVALUATION.md).
# Ingest (bank/ingest.py) and the deltas here read reference rows with this one pattern.
BASELINE_ROW = re.compile(r"^\W*baseline\b", re.IGNORECASE)
_INFRA = re.compile(
    r"\bLLM\b.{0,20}\b(error|fail|failed|failure|timeout)|expecting value|json ?decode|"
    r"\bapi\b.{0,12}\b(error|failure|timeout|down)|rate.?limit|quota (exceeded|error)|overloaded|"
    r"(http|status|error|code)\s*(50[0-9]|429)\b|time[ d]?out|timed out|harness|"
    r"disk (full|quota|error)|out of disk|no space left|"
    r"(network|connection|socket|ssl|ssh)\s*(error|refused|reset|failure|failed|lost|timed out|unreachable)|"
    r"\bdns\b|preempt|node fail|infrastructure|\binfra\b|"
    r"cuda (unavailable|not available|driver)|no gpu|driver (error|mismatch)|nccl|"
    r"no module named|modulenotfound|permission denied|killed by (the )?(scheduler|system)",
    re.IGNORECASE,
)


def _direction_sign(direction: str) -> float:
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    return 1.0 if direction == "higher" else -1.0


def metric_deltas(
    metrics: np.ndarray | Sequence[float | None],
    statuses: Sequence[str],
    direction: str,
    descriptions: Sequence[str] | None = None,
) -> np.ndarray:
    """Signed gap of each row to the best kept value before it (positive = better); nan where undefined.

    As in EVALUATION.md, the first row and any rows before the first keep that read as a baseline
    (description starting 'baseline', or status 'baseline' when raw statuses are passed) set the
    reference too, whatever their status.
    """
    sign = _direction_sign(direction)
    values = np.array([np.nan if v is None else float(v) for v in metrics], dtype=float)
    deltas = np.full(len(values), np.nan)
    best = np.nan
    seen_keep = False
    for t, (value, raw_status) in enumerate(zip(values, statuses, strict=True)):
        if not np.isfinite(value):
            continue
        if np.isfinite(best):
            deltas[t] = sign * (value - best)
        kept = map_status(raw_status) == "keep"
        text = descriptions[t] if descriptions is not None else ""
        baseline = t == 0 or bool(BASELINE_ROW.match(text) or BASELINE_ROW.match(raw_status))
        if kept or (baseline and not seen_keep):
            best = (
                value
                if not np.isfinite(best)
                else (max(best, value) if sign > 0 else min(best, value))
            )
        seen_keep = seen_keep or kept
    return deltas


def outcome_thresholds(deltas: np.ndarray, statuses: Sequence[str]) -> tuple[float, float]:
    """(marginal_floor, regression_floor): deltas >= the first are marginal, below the second regressions."""
    mapped = [map_status(s) for s in statuses]
    discard = np.array(
        [d for d, s in zip(deltas, mapped, strict=True) if s == "discard"], dtype=float
    )
    discard = discard[np.isfinite(discard)]
    pool = discard if discard.size and np.any(discard != 0) else deltas[np.isfinite(deltas)]
    scale = float(np.median(np.abs(pool))) if pool.size else 0.0
    if scale == 0.0 and pool.size:
        nonzero = np.abs(pool[pool != 0])
        scale = float(np.median(nonzero)) if nonzero.size else 0.0
    return -MARGINAL_FRACTION * scale, -REGRESSION_MULTIPLE * scale


def is_infra_crash(description: str) -> bool:
    """True when a crash's description blames the harness (LLM call, timeout, disk, network)."""
    return bool(_INFRA.search(description or ""))


def classify_outcomes(
    metrics: np.ndarray | Sequence[float | None],
    statuses: Sequence[str],
    direction: str,
    descriptions: Sequence[str] | None = None,
) -> list[str | None]:
    """TAXONOMY.md outcome per row (None for 'other' rows); scale-free, see the module docstring."""
    deltas = metric_deltas(metrics, statuses, direction, descriptions)
    marginal_floor, regression_floor = outcome_thresholds(deltas, statuses)
    # Rounding slack: a delta on a threshold stays on the same side when the metric is rescaled.
    slack = ROUNDING_SLACK * abs(regression_floor)
    marginal_floor -= slack
    regression_floor -= slack
    outcomes: list[str | None] = []
    for t, raw_status in enumerate(statuses):
        status = map_status(raw_status)
        delta = deltas[t]
        if status == "keep":
            outcomes.append("improvement")
        elif status == "crash":
            text = descriptions[t] if descriptions is not None else ""
            outcomes.append("crash_infra" if is_infra_crash(text) else "crash_code")
        elif status == "discard":
            if not np.isfinite(delta):
                outcomes.append("no_improvement")
            elif delta >= marginal_floor:
                outcomes.append("marginal")
            elif delta < regression_floor:
                outcomes.append("regression")
            else:
                outcomes.append("no_improvement")
        else:
            outcomes.append(None)
    return outcomes
