"""Find the id, metric, status and description columns of a log by header name and by content."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from nrr_stats.ingest.status import (
    BOOLEAN_CELLS,
    BOOLEAN_DECISION_NAMES,
    StatusReading,
    is_run_ok,
    is_status_word,
    leading_status,
    map_status,
    normalise_status,
    status_group,
)
from nrr_stats.ingest.text import is_missing, is_number, looks_numeric, parse_number

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
    r"(^|_)(seed|id|n|num|count|elapsed|runtime|wall|memory|mem|vram|ram|gb|mb|steps|params|"
    r"timestamp|date|hash|sha|fingerprint|uuid|digest|checksum|commit|pvalue|pval|p_value)(_|$)|"
    r"_p$|^p$"
)
# Names that are rarely the primary metric: read only when no other column can be.
_SECONDARY_METRIC_PATTERNS = re.compile(
    r"(^|_)(delta|diff|change|improvement)(_|$)|^delta|_vs_|^prev|^best_|_before$|_after$|^unnamed_"
)
# Names that name the primary metric outright, then names that usually do.
PRIMARY_NAMES = (
    "metric", "primary_metric", "primary_score", "main_metric", "objective", "target_metric",
    "score", "composite", "composite_score", "fitness",
)  # fmt: skip
# 'score_total', 'overall_score', 'final_metric': a primary name with a word saying it is the sum.
_QUALIFIED_PRIMARY = re.compile(
    r"^((total|overall|final|primary|main|combined|composite|aggregate)_(score|metric|objective))$|"
    r"^((score|metric|objective)_(total|overall|final|primary|main|combined|composite|aggregate))$"
)
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


def status_share(values: Sequence[str]) -> float:
    """Share of the filled cells that read as a keep, discard or crash status."""
    return _share(values, lambda v: is_status_word(v) and map_status(v) != "other")


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
        share = status_share([row[index] for row in rows if index < len(row)])
        if share > best_share:
            best, best_share = index, share
    return best if best_share >= 0.6 else None


def names_by_content(rows: Sequence[Sequence[str]]) -> list[str] | None:
    """Column names for a log written without a header line, from its rows (of one width):
    'status' where at least 60% of the cells are keep, discard or crash words, 'description'
    for the wordiest text column, 'value_<n>' for numeric columns (find_metric_column then
    chooses among them by content), 'commit' for a first column of ids, 'field_<n>' for the
    rest. None when no column reads as statuses (the first line is then the header)."""
    if not rows:
        return None
    width = len(rows[0])
    blank = [""] * width
    status = find_status_column(blank, rows)
    if status is None:
        return None
    description = find_description_column(blank, rows, {status})
    names = []
    for j in range(width):
        values = [row[j] for row in rows if row[j].strip()]
        if j == status:
            names.append("status")
        elif j == description:
            names.append("description")
        elif values and _share(values, is_number) >= 0.6:
            names.append(f"value_{j + 1}")
        elif j == 0 and values:
            names.append("commit")
        else:
            names.append(f"field_{j + 1}")
    return names


def find_leading_status_column(names: Sequence[str], rows: Sequence[Sequence[str]]) -> int | None:
    """For a log with no status column: the free-text column whose cells open with a status
    word ('keep — depth=6', 'DISCARD: lr 0.02') in at least 60% of its filled rows, a keep,
    discard or crash among them; a description-named column first, else the most such cells."""
    best, best_share = None, 0.0
    by_name = [names.index(n) for n in DESCRIPTION_NAMES if n in names]
    order = by_name + [j for j in range(len(names)) if j not in by_name]
    for index in order:
        values = [row[index] for row in rows if index < len(row) and row[index].strip()]
        openings = [leading_status(v) for v in values]
        words = [o[0] for o in openings if o is not None]
        if not values or not any(map_status(w) != "other" for w in words):
            continue
        share = len(words) / len(values)
        if share >= 0.6 and index in by_name:
            return index
        if share > best_share:
            best, best_share = index, share
    return best if best_share >= 0.6 else None


def _wide_letters(text: str) -> int:
    """Letters of scripts written without spaces (Chinese, Japanese), each about a word."""
    return sum(1 for c in text if c.isalpha() and ord(c) > 0x2E7F)


def _is_prose(value: str) -> bool:
    """Text that reads as words: spaced words, or a run of letters of a script written without
    spaces ('新增三个检查点')."""
    text = value.strip()
    return not is_number(text) and (" " in text or _wide_letters(text) >= 4)


def find_description_column(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> int | None:
    """The description column: by name (the one that says what changed), else the free-text column."""
    by_name = _first_named(names, DESCRIPTION_NAMES, taken)
    if by_name is not None:
        return by_name
    for index, name in enumerate(names):
        if index not in taken and ("desc" in name or "change" in name):
            values = [row[index] for row in rows if index < len(row) and row[index].strip()]
            # 'files_changed' holding file names is not the description; prose elsewhere is.
            if not values or _share(values, lambda v: " " in v.strip()) >= 0.3:
                return index
    best, best_score = None, 0.0
    for index in range(len(names)):
        if index in taken:
            continue
        values = [row[index] for row in rows if index < len(row) and row[index].strip()]
        if not values:
            continue
        wordy = _share(values, _is_prose)
        # a wide letter counts twice: it fills two columns and says about as much as a short word
        mean_length = sum(len(v) + _wide_letters(v) for v in values) / len(values)
        if wordy >= 0.5 and mean_length >= 12 and wordy * mean_length > best_score:
            best, best_score = index, wordy * mean_length
    return best


# Cells that name no change: hashes, dates and times, plain counts.
_NOT_TEXT = re.compile(r"[0-9a-f]{6,40}|\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?|\d+", re.IGNORECASE)


def find_terse_description_column(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> int | None:
    """For a log with no free-text column: the column that names each change tersely (a file
    path, an identifier, prose without spaces), the most distinct and longest non-numeric
    values of at least two rows; never an id-named column, hashes, dates or counts."""
    best, best_score = None, 0.0
    for index, name in enumerate(names):
        if index in taken or name in ID_NAMES:
            continue
        values = [row[index].strip() for row in rows if index < len(row) and row[index].strip()]
        texts = [v for v in values if not is_number(v) and not _NOT_TEXT.fullmatch(v)]
        if len(texts) < 2 or len(texts) < 0.6 * len(values):
            continue
        distinct = len(set(texts)) / len(texts)
        mean_length = sum(len(v) for v in texts) / len(texts)
        if distinct >= 0.3 and mean_length >= 4 and distinct * mean_length > best_score:
            best, best_score = index, distinct * mean_length
    return best


def find_id_column(names: Sequence[str], taken: set[int]) -> int | None:
    """The experiment id column (commit hash, run id, iteration), None when the log has none."""
    return _first_named(names, ID_NAMES, taken)


def _numbers(values: Sequence[str]) -> list[float] | None:
    """The column's values as numbers when at least half are, else None."""
    numbers = [parse_number(v) for v in values if looks_numeric(v)]
    return [x for x in numbers if x is not None] if 2 * len(numbers) >= len(values) else None


def _is_counter_or_constant(numbers: Sequence[float]) -> bool:
    """A column that is one value throughout, or integers rising on every row (a generation or
    iteration counter, an epoch timestamp): never the metric while another column can be."""
    if len(set(numbers)) <= 1:
        return len(numbers) > 1
    integers = all(float(x).is_integer() for x in numbers)
    return (
        integers
        and len(numbers) >= 3
        and all(b > a for a, b in zip(numbers, numbers[1:], strict=False))
    )


def metric_candidates(
    names: Sequence[str], rows: Sequence[Sequence[str]], taken: set[int]
) -> list[int]:
    """Columns that could hold the primary metric: mostly numbers, never an id, hash, count or
    p-value; a delta, a running best, a counter or a constant only when nothing else is."""
    first, second = [], []
    for index, name in enumerate(names):
        if index in taken or name in NOT_METRIC_NAMES or _NOT_METRIC_PATTERNS.search(name):
            continue
        values = [row[index] for row in rows if index < len(row) and not is_missing(row[index])]
        numbers = _numbers(values) if values else None
        if numbers is None:
            continue
        weak = _SECONDARY_METRIC_PATTERNS.search(name) or _is_counter_or_constant(numbers)
        (second if weak else first).append(index)
    return first or second


def _malformed_share(index: int, rows: Sequence[Sequence[str]]) -> float:
    """Share of rows whose cell in this column is neither a number nor a missing-value marker."""
    cells = [row[index] for row in rows if index < len(row)]
    bad = sum(1 for c in cells if not is_missing(c) and parse_number(c) is None)
    return bad / len(cells) if cells else 0.0


def find_metric_column(
    names: Sequence[str],
    rows: Sequence[Sequence[str]],
    taken: set[int],
    outcome_rows: Sequence[Sequence[str]] = (),
) -> int | None:
    """The primary metric: an outright name ('metric', 'score'), a COCO mAP@.5:.95, a validation
    metric, else the first numeric column after the id (autoresearch writes the metric first).
    When no column holds mostly numbers, a column named as a metric still is one (its unreadable
    cells are then stored as missing values rather than a log without a metric). A candidate
    that is not a number on most keep and discard rows yields to one that is."""
    candidates = metric_candidates(names, rows, taken)
    if outcome_rows and len(candidates) > 1:
        readable = [i for i in candidates if _malformed_share(i, outcome_rows) <= 0.5]
        candidates = readable or candidates
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
        if _QUALIFIED_PRIMARY.match(names[index]):
            return index
    for index in candidates:
        if _COCO_PRIMARY.search(names[index]):
            return index
    for index in candidates:
        if _VALIDATION_PREFIX.match(names[index]):
            return index
    return candidates[0]


def _cells(rows: Sequence[Sequence[str]], index: int) -> list[str]:
    return [row[index].strip() for row in rows if index < len(row) and row[index].strip()]


def _decisive_share(values: Sequence[str], words: dict[str, str] | None = None) -> float:
    """Share of cells that are a keep or discard (not a mere 'the run finished'), with the words
    this log adds (`words`, normalised cell -> group)."""
    if not values:
        return 0.0
    words = words or {}

    def decisive(value: str) -> bool:
        group = words.get(normalise_status(value)) or status_group(value)
        return group in ("keep", "discard") and not is_run_ok(value)

    return sum(1 for v in values if decisive(v)) / len(values)


def _run_share(values: Sequence[str]) -> float:
    """Share of cells that are a run status: finished ('ok', 'done') or crashed."""
    if not values or not any(is_run_ok(v) for v in values):
        return 0.0
    return sum(1 for v in values if is_run_ok(v) or status_group(v) == "crash") / len(values)


_RUN_STATUS_NAME = re.compile(r"status|state|run|exit|result")
# Status columns named as the decision itself: a run-status column beside them holds the crashes.
DECISION_NAMES = frozenset(
    ("decision", "verdict", "outcome", "kept", "keep", "accepted", "keep_discard", "action")
)
_TOKEN = re.compile(r"^[^\s]{1,24}$")


def _decision_words(name: str, values: Sequence[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Words one log's decision column adds to the synonym lists, and the notes saying so:
    1 / 0 in a column named as a decision ('kept', 'decision'); the one other word of a column
    whose recognised values are only keeps or only discards ('improved' / 'recorded')."""
    if name in BOOLEAN_DECISION_NAMES and values:
        plain = [v for v in values if v in BOOLEAN_CELLS or not is_status_word(v)]
        if sum(1 for v in plain if v in BOOLEAN_CELLS) >= 0.9 * len(values):
            return dict(BOOLEAN_CELLS), (
                f"status column '{name}' holds 1/0: 1 read as keep, 0 as discard",
            )
    poles = {status_group(v) for v in values} & {"keep", "discard"}
    if len(poles) == 1:
        unknown = Counter(
            normalise_status(v)
            for v in values
            if status_group(v) is None and _TOKEN.match(v) and re.search("[A-Za-z]", v)
        )
        if len(unknown) == 1:
            word, count = next(iter(unknown.items()))
            # at least 3 rows: on a log's first rows one stray word must not become a decision
            if count >= max(3, 0.15 * len(values)):
                other_pole = "discard" if poles == {"keep"} else "keep"
                return {word: other_pole}, (
                    f"status '{word}' ({count} rows) read as {other_pole}: the only other value "
                    f"of '{name}' beside its {next(iter(poles))} words",
                )
    return {}, ()


_COMBINED = "(a crashed run is a crash, otherwise the decision decides keep or discard)"


def find_statuses(
    names: Sequence[str], rows: Sequence[Sequence[str]], status: int
) -> StatusReading:
    """How the log's status cells read, from the status column and its neighbours' content.

    - A run status apart from the decision: the status column says 'ok' / 'crash' and another
      column holds the decisions (promote / reject, accept / reject, keep / revert); or the status
      column holds the decisions (or is named as them) and a column named as a run status holds
      'ok' / 'crash'.
    - The decision column's own words (_decision_words): 1 / 0, or one unnamed opposite.
    """
    values = _cells(rows, status)
    shown = names[status]
    others = [j for j in range(len(names)) if j != status]
    words, notes = _decision_words(shown, values)
    decisive, run = _decisive_share(values, words), _run_share(values)
    if decisive < 0.5 and run >= 0.6:
        best, chosen = 0.0, None
        for j in others:
            j_values = _cells(rows, j)
            j_words, j_notes = _decision_words(names[j], j_values)
            share = _decisive_share(j_values, j_words)
            if share > best:
                best, chosen = share, (j, j_words, j_notes)
        if chosen is not None and best >= 0.6:
            j, j_words, j_notes = chosen
            note = f"status column '{shown}' holds run statuses; decisions read from '{names[j]}' "
            return StatusReading(status, j, j_words, (note + _COMBINED, *j_notes))
    if decisive >= 0.6 or shown in DECISION_NAMES:
        for j in others:
            if _RUN_STATUS_NAME.search(names[j]) and _run_share(_cells(rows, j)) >= 0.6:
                note = f"run status read from '{names[j]}' beside the decisions in '{shown}' "
                return StatusReading(j, status, words, (note + _COMBINED, *notes))
    return StatusReading(status, words=words, notes=notes)
