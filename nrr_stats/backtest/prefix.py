"""Prefix-safe per-row quantities for the prequential walk.

Reading a whole log fixes a few things from all of its rows: the metric's direction (when it is
inferred from the kept rows) and the noise band that splits discards into marginal /
no_improvement / regression. Fed to history rows, those would let row t's prediction depend on
rows after t. Here row i's direction, delta and outcome come from rows <= i only, so a history
record never changes once its row has run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nrr_stats.ingest.direction import infer_metric_direction
from nrr_stats.ingest.outcomes import (
    ROUNDING_SLACK,
    is_infra_crash,
    metric_deltas,
    outcome_thresholds,
)
from nrr_stats.ingest.status import map_status

FIXED_SOURCES = ("flag", "comment")  # directions that do not come from the rows


def prefix_directions(log: Any) -> list[str]:
    """The metric direction as known after each row: from rows <= i (or fixed by flag/comment)."""
    n = len(log.rows)
    if log.direction_source in FIXED_SOURCES:
        return [log.metric_direction] * n
    metrics = [r.metric for r in log.rows]
    statuses = [r.status for r in log.rows]
    return [
        infer_metric_direction(log.metric_name, metrics[: i + 1], statuses[: i + 1])[0]
        for i in range(n)
    ]


def prefix_outcomes(log: Any) -> tuple[list[str | None], np.ndarray]:
    """(outcome, delta) of each row from rows <= i only: its direction, its gap to the best kept
    value before it, and the noise band of the discards up to it."""
    rows = log.rows
    descriptions = [r.description for r in rows]
    statuses = [r.raw_status for r in rows]  # a `BASELINE` status sets the reference, as ingest
    metrics = np.array([np.nan if r.metric is None else r.metric for r in rows], dtype=float)
    directions = prefix_directions(log)
    by_direction = {
        d: metric_deltas(metrics, statuses, d, descriptions) for d in sorted(set(directions))
    }
    outcomes: list[str | None] = []
    deltas = np.full(len(rows), np.nan)
    for i, (direction, raw_status) in enumerate(zip(directions, statuses, strict=True)):
        own = by_direction[direction]
        delta = own[i]
        deltas[i] = delta
        status = map_status(raw_status)
        if status == "keep":
            outcomes.append("improvement")
        elif status == "crash":
            outcomes.append("crash_infra" if is_infra_crash(descriptions[i]) else "crash_code")
        elif status == "discard":
            marginal, regression = outcome_thresholds(own[: i + 1], statuses[: i + 1])
            slack = ROUNDING_SLACK * abs(regression)
            if not np.isfinite(delta):
                outcomes.append("no_improvement")
            elif delta >= marginal - slack:
                outcomes.append("marginal")
            elif delta < regression - slack:
                outcomes.append("regression")
            else:
                outcomes.append("no_improvement")
        else:
            outcomes.append(None)
    return outcomes, deltas
