"""Ingest: read autoresearch results logs of any dialect, map statuses, infer the metric's
direction and classify each row's outcome (TAXONOMY.md).

Choices the issue left open (details in each module):
- Row numbers follow EVALUATION.md: the index among non-blank, non-comment lines after the
  first such line; unreadable rows, separator rules and repeated headers still take a number.
  Data rows above a late header (alessoh) are read with it; the very first line is row 0.
  Two rows glued on one line share its line and row number.
- Statuses map as the dev MANIFESTs count them (size_violation is 'other'); an empty status
  cell is a bad row; a word no rule knows, on a full row, is 'other'. Per log, the status
  column may be read with a separate decision column, as 1/0, or with one inferred word
  (columns.find_statuses); every such inference is said in ResultsLog.repairs.
- Missing-value markers in the metric ('', '-', 'N/A', 'OOM', 'ERR') read as None on any row;
  other text on a keep or discard row stores the row without a metric (a repair). Crash rows
  store None for 0.0.
- Lines that are not UTF-8 read each stray byte as Windows-1252 (a repair); NUL bytes make a
  line undecodable (a bad row).
- Direction: flag > '# metric_direction' comment > strong name cue > kept rows > weak name cue
  ('score') > 'lower' (direction.py). The kept-rows source reads the whole log passed in.
- session_key hashes the header and the first readable row only.
"""

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
