"""Find the id, metric, status and description columns of a log by header name and by content."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nrr_stats.ingest.status import is_status_word, map_status
from nrr_stats.ingest.text import is_missing, is_number, parse_number

# Names in order of preference: the first present wins.
STATUS_NAMES = (
    "status", "final_status", "decision", "verdict", "outcome", "result_status", "kept", "keep",
    "accepted", "kept_or_discarded", "keep_discard", "action", "state",
)  # fmt: skip
DESCRIPTION_NAMES = (
    "description", "desc", "experiment_desc", "experiment_description", "model_description",
    "change_description", "change", "changes", "mutation", "title", "idea", "proposal",
    "hypothesis", "summary", "experiment_name", "message", "details", "note", "notes", "comment",
    "comments",
)  # fmt: skip
ID_NAMES = (
    "commit", "commit_hash", "commit_sha", "git_commit", "sha", "hash", "experiment_id", "exp_id",
    "id", "config_id", "run_id", "trial_id", "experiment", "exp", "run", "run_name", "name",
    "iteration", "iter", "trial", "step", "snapshot", "tag", "version",
)  # fmt: skip
# Names that are never the primary metric, whatever their values.
NOT_METRIC_NAMES = frozenset(
    ID_NAMES
    + (
        "timestamp", "time_stamp", "date", "datetime", "time", "started", "finished", "seed",
        "batch_id", "cycle", "agent", "thread", "kind", "track", "model", "guard", "idx", "index",
        "delta", "improvement", "old", "new", "from", "to", "param", "parameter", "category",
        "games_played", "n", "count", "commit_time",
    )
)  # fmt: skip
_NOT_METRIC_PATTERNS = re.compile(
    r"(^|_)(delta|diff|change|improvement|seed|id|n|num|count|elapsed|runtime|wall|memory|"
    r"mem|vram|ram|gb|mb|steps|params|timestamp|date)(_|$)|^delta|_vs_|^prev|^best_|_before$|_after$"
)
# Names that name the primary metric outright, then names that usually do.
PRIMARY_NAMES = (
    "metric", "primary_metric", "primary_score", "main_metric", "objective", "target_metric",
    "score", "composite", "composite_score", "fitness",
)  # fmt: skip
_COCO_PRIMARY = re.compile(r"map_?50[_\-:]?95|map_?5095")
_VALIDATION_PREFIX = re.compile(r"^(val|valid|validation|eval|dev)_")


_NAME_SEPARATORS = re.compile(r"[^a-z0-9@]+")


def normalise_name(name: str) -> str:
    """Header names compared case- and punctuation-insensitively: ' Val-BPB ' -> 'val_bpb'."""
    text = name.strip().strip('"').strip().lower()
    return _NAME_SEPARATORS.sub("_", text).strip("_")


KNOWN_HEADER_NAMES = frozenset(
    STATUS_NAMES + DESCRIPTION_NAMES + ID_NAMES + PRIMARY_NAMES + tuple(NOT_METRIC_NAMES)
    + ("val_bpb", "val_loss", "memory_gb", "val_accuracy", "accuracy", "loss", "peak_vram_mb")
)  # fmt: skip


def header_score(cells: Sequence[str]) -> int:
    """How much a line looks like a header: known column names, minus numbers and status words."""
    names = [normalise_name(c) for c in cells]
    known = sum(1 for n in names if n in KNOWN_HEADER_NAMES or n.startswith(("val_", "valid_")))
    numeric = sum(1 for c in cells if is_number(c))
    return known - 2 * numeric


def _first_named(names: Sequence[str], wanted: Sequence[str], taken: set[int]) -> int | None:
    for name in wanted:
        for index, present in enumerate(names):
            if present == name and index not in taken:
                return index
    return None


def _share(values: Sequence[str], test) -> float:
    filled = [v for v in values if v.strip()]
    return sum(1 for v in filled if test(v)) / len(filled) if filled else 0.0


def find_status_column(names: Sequence[str], rows: Sequence[Sequence[str]]) -> int | None:
    """The status column: by name, else the column whose values read as statuses."""
    by_name = _first_named(names, STATUS_NAMES, set())
    if by_name is not None:
        return by_name
    for index, name in enumerate(names):
        if name.endswith("status") or name.startswith("status"):
            return index
    best, best_share = None, 0.0
    for index in range(len(names)):
        values = [row[index] for row in rows if index < len(row)]
        share = _share(values, lambda v: is_status_word(v) and map_status(v) != "other")
        if share > best_share:
            best, best_share = index, share
    return best if best_share >= 0.6 else None


def find_description_column(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> int | None:
    """The description column: by name (the one that says what changed), else the free-text column."""
    by_name = _first_named(names, DESCRIPTION_NAMES, taken)
    if by_name is not None:
        return by_name
    for index, name in enumerate(names):
        if index not in taken and ("desc" in name or "change" in name):
            return index
    best, best_score = None, 0.0
    for index in range(len(names)):
        if index in taken:
            continue
        values = [row[index] for row in rows if index < len(row) and row[index].strip()]
        if not values:
            continue
        wordy = _share(values, lambda v: " " in v.strip() and not is_number(v))
        mean_length = sum(len(v) for v in values) / len(values)
        if wordy >= 0.5 and mean_length >= 12 and wordy * mean_length > best_score:
            best, best_score = index, wordy * mean_length
    return best


def find_id_column(names: Sequence[str], taken: set[int]) -> int | None:
    """The experiment id column (commit hash, run id, iteration), None when the log has none."""
    return _first_named(names, ID_NAMES, taken)


def metric_candidates(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> list[int]:
    """Columns that could hold the primary metric: mostly numbers, not an id, count or delta."""
    candidates = []
    for index, name in enumerate(names):
        if index in taken or name in NOT_METRIC_NAMES or _NOT_METRIC_PATTERNS.search(name):
            continue
        values = [row[index] for row in rows if index < len(row) and not is_missing(row[index])]
        if not values:
            continue
        numeric = sum(1 for v in values if parse_number(v) is not None) / len(values)
        if numeric >= 0.5:
            candidates.append(index)
    return candidates


def find_metric_column(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> int | None:
    """The primary metric: an outright name ('metric', 'score'), a COCO mAP@.5:.95, a validation
    metric, else the first numeric column after the id (autoresearch writes the metric first).
    When no column holds mostly numbers, a column named as a metric still is one (its unreadable
    cells then make bad rows rather than a log without a metric)."""
    candidates = metric_candidates(names, rows, taken)
    if not candidates:
        candidates = [
            index
            for index, name in enumerate(names)
            if index not in taken
            and (
                name in PRIMARY_NAMES
                or _VALIDATION_PREFIX.match(name)
                or _COCO_PRIMARY.search(name)
            )
        ]
        if not candidates:
            return None
    for wanted in PRIMARY_NAMES:
        for index in candidates:
            if names[index] == wanted:
                return index
    for index in candidates:
        if _COCO_PRIMARY.search(names[index]):
            return index
    for index in candidates:
        if _VALIDATION_PREFIX.match(names[index]):
            return index
    return candidates[0]
