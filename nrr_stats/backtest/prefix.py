"""Prefix-safe per-row quantities for the prequential walk.

Reading a whole log fixes a few things from all of its rows: the metric column (chosen by
content: a column constant on a log's first rows is passed over, one that varies later is not),
the metric's direction (when it is inferred from the kept rows) and the noise band that splits
discards into marginal / no_improvement / regression. Fed to history rows, those would let row
t's prediction depend on rows after t. Here row i's metric column, direction, delta and outcome
come from rows <= i only, so a history record never changes once its row has run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nrr_stats.ingest.columns import find_metric_column, normalise_name
from nrr_stats.ingest.direction import infer_metric_direction
from nrr_stats.ingest.outcomes import (
    ROUNDING_SLACK,
    is_infra_crash,
    metric_deltas,
    outcome_thresholds,
)
from nrr_stats.ingest.reader import stored_metric
from nrr_stats.ingest.status import map_status

FIXED_SOURCES = ("flag", "comment")  # directions that do not come from the rows
# Rows over which the metric column is chosen again at each row (its choice flips on a log's
# first rows, when a column is still constant); later rows keep the choice made at this one.
METRIC_PREFIX_ROWS = 64


def prefix_metrics(log: Any) -> tuple[list[str | None], dict[str, list[float | None]]]:
    """The metric column as ingest chooses it from rows <= i, for i up to METRIC_PREFIX_ROWS
    (then the choice at that row: still from earlier rows only, at a bounded cost; the other
    columns' roles are the log's), and each chosen column's values as ingest stores a metric."""
    header = log.header
    names = [normalise_name(h) for h in header]
    taken = {header.index(c) for role, c in log.columns.items() if role != "metric" and c}
    cells = [[row.fields.get(h, "") for h in header] for row in log.rows]
    chosen: list[str | None] = []
    decided: list[list[str]] = []  # keep and discard rows so far (their metric must be readable)
    for i, row in enumerate(log.rows):
        if i >= METRIC_PREFIX_ROWS:
            chosen.append(chosen[-1])
            continue
        if row.status in ("keep", "discard"):
            decided.append(cells[i])
        index = find_metric_column(names, cells[: i + 1], taken, decided)
        chosen.append(header[index] if index is not None else None)
    values = {}
    for name in {c for c in chosen if c is not None}:
        column = header.index(name)
        values[name] = [
            stored_metric(row_cells[column], row.status)[0]
            for row_cells, row in zip(cells, log.rows, strict=True)
        ]
    return chosen, values


def prefix_directions(
    log: Any, chosen: list[str | None], values: dict[str, list[float | None]]
) -> list[str]:
    """The metric direction as known after each row: from rows <= i and the metric chosen from
    them (or fixed by flag/comment)."""
    n = len(log.rows)
    if log.direction_source in FIXED_SOURCES:
        return [log.metric_direction] * n
    statuses = [r.status for r in log.rows]
    missing = [None] * n
    return [
        infer_metric_direction(name or "", values.get(name, missing)[: i + 1], statuses[: i + 1])[0]
        for i, name in enumerate(chosen)
    ]


def prefix_outcomes(log: Any) -> tuple[list[str | None], np.ndarray]:
    """(outcome, delta) of each row from rows <= i only: its direction, its gap to the best kept
    value before it, and the noise band of the discards up to it."""
    rows = log.rows
    descriptions = [r.description for r in rows]
    statuses = [r.raw_status for r in rows]  # a `BASELINE` status sets the reference, as ingest
    chosen, values = prefix_metrics(log)
    directions = prefix_directions(log, chosen, values)
    missing = [None] * len(rows)
    by_choice = {
        (name, d): metric_deltas(values.get(name, missing), statuses, d, descriptions)
        for name, d in set(zip(chosen, directions, strict=True))
    }
    outcomes: list[str | None] = []
    deltas = np.full(len(rows), np.nan)
    for i, (direction, raw_status) in enumerate(zip(directions, statuses, strict=True)):
        own = by_choice[(chosen[i], direction)]
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
