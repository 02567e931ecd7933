"""Ingest: read autoresearch results logs of any dialect, map statuses, infer the metric's
direction and classify each row's outcome (TAXONOMY.md)."""

from nrr_stats.ingest.direction import infer_metric_direction
from nrr_stats.ingest.outcomes import classify_outcomes, metric_deltas
from nrr_stats.ingest.reader import BadRow, LogRow, ResultsLog, read_results_log
from nrr_stats.ingest.status import map_status

__all__ = [
    "BadRow",
    "LogRow",
    "ResultsLog",
    "classify_outcomes",
    "infer_metric_direction",
    "map_status",
    "metric_deltas",
    "read_results_log",
]
