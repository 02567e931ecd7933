"""Store results logs in the bank: read, parse, classify, then write in one transaction.

Re-ingesting a log adds nothing twice (a log is keyed by its header and first row, a row by
its number in the log), and a log that grew adds only its new rows (without parsing the rows
already stored again). A last line without its newline is not yet a row; a changed last row is
an update of that row; forks are told apart by their rows and their files (`match_session`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrr_stats.bank.store import EXPERIMENT_COLUMNS, Bank, utc_now
from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import ResultsLog
from nrr_stats.ingest.outcomes import BASELINE_ROW, OUTCOME_CODES, RowFacts
from nrr_stats.ingest.reader import LogChangedError, LogRow, StreamedLog
from nrr_stats.parser import ConfigTracker, Rules


@dataclass
class IngestSummary:
    """What one log's ingest did: rows stored, skipped and why, status counts, metric chosen."""

    path: str
    session_id: int
    session_created: bool
    rows_read: int
    rows_added: int
    rows_already_present: int
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    metric_name: str = ""
    metric_direction: str = ""
    direction_source: str = ""
    columns: dict[str, str | None] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    other_statuses: dict[str, int] = field(default_factory=dict)
    rows_updated: int = 0  # stored rows this log changed (its last row, finished since)
    pending_line: int | None = None  # a last line with no newline yet: read next time

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "session_id": self.session_id,
            "session_created": self.session_created,
            "rows_read": self.rows_read,
            "rows_added": self.rows_added,
            "rows_already_present": self.rows_already_present,
            "rows_updated": self.rows_updated,
            "pending_line": self.pending_line,
            "rows_skipped": [{"line": line, "reason": reason} for line, reason in self.bad_rows],
            "status_counts": self.status_counts,
            "metric": self.metric_name,
            "metric_direction": self.metric_direction,
            "direction_source": self.direction_source,
            "columns": self.columns,
            "repairs": self.repairs,
            "other_statuses": self.other_statuses,
        }


def _printable(text: str, limit: int = 200) -> str:
    """Log text shown in a summary: control and line-separator characters escaped, so a JSON
    line stays one line for any reader; long text cut."""
    shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def leading_reference_rows(descriptions: Sequence[str], raw_statuses: Sequence[str] = ()) -> int:
    """How many rows at the top only set the reference metric: the first, and leading rows whose
    description or raw status says `baseline`."""
    count = 1 if descriptions else 0
    while count < len(descriptions) and (
        BASELINE_ROW.match(descriptions[count])
        or (count < len(raw_statuses) and BASELINE_ROW.match(raw_statuses[count]))
    ):
        count += 1
    return count


def experiment_rows(
    log: ResultsLog, rules: Rules | None = None, tracker: ConfigTracker | None = None
) -> list[dict[str, Any]]:
    """Turn a read log into bank rows: parsed change, outcome, delta and the kept config before each row.

    The leading reference rows (EVALUATION.md) are stored with status `other`: they are not
    experiments, so they never count as keeps (their raw status is kept as written).
    Pass a `tracker` to read what it knows after the last row.
    """
    tracker = tracker if tracker is not None else ConfigTracker(rules)
    facts = RowFacts.of(
        [row.metric for row in log.rows],
        [row.raw_status if row.status == "other" else row.status for row in log.rows],
        [row.description for row in log.rows],
    )
    maker = _RowMaker(facts, log.metric_direction, tracker)
    return [maker.row(index, row) for index, row in enumerate(log.rows)]


def _reference_rows(facts: RowFacts) -> int:
    """leading_reference_rows of rows read as `facts`: the first, and the baselines after it."""
    baseline = facts.baseline
    count = 1 if facts.size else 0
    while count < facts.size and baseline[count]:
        count += 1
    return count


def _delta(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


class _RowMaker:
    """Bank rows of a log made one at a time, in order (the tracker has seen the rows before
    the first one asked for); outcomes and deltas come from the whole log's `facts`."""

    def __init__(self, facts: RowFacts, direction: str, tracker: ConfigTracker):
        self.codes, self.deltas = facts.outcomes(direction)
        self.references = _reference_rows(facts)
        self.tracker = tracker
        self.now = utc_now()
        self._config: tuple[dict[str, str] | None, str] = (None, "")

    def outcome(self, index: int) -> tuple[str | None, float | None]:
        return OUTCOME_CODES[self.codes[index]], _delta(self.deltas[index])

    def status(self, index: int, row: LogRow) -> str:
        return "other" if index < self.references else row.status

    def _config_before(self) -> str:
        # The kept configuration changes on few rows: its JSON is made again only then.
        current = self.tracker.current
        if current != self._config[0]:
            self._config = (dict(current), json.dumps(current, sort_keys=True, ensure_ascii=False))
        return self._config[1]

    def row(self, index: int, row: LogRow) -> dict[str, Any]:
        config_before = self._config_before()
        parsed = self.tracker.parse(row.description)
        self.tracker.observe(parsed, kept=row.status == "keep")
        outcome, delta = self.outcome(index)
        return {
            "ordinal": index,
            "row_number": row.row_number,
            "line_number": row.line_number,
            "experiment_id": row.experiment_id,
            "metric": row.metric,
            "status": self.status(index, row),
            "raw_status": row.raw_status,
            "description": row.description,
            **parsed.bank_fields(),
            "outcome": outcome,
            "delta": delta,
            "config_before": config_before,
            "evidence_weight": 1.0,
            "fields_json": _fields_json(row.fields),
            "ingested_at": self.now,
        }


def _fields_json(fields: dict[str, str]) -> str:
    return json.dumps(fields, ensure_ascii=False)


@dataclass
class _Stored:
    """A stored session of the log's key family, compared row by row with the log."""

    key: str
    session_id: int
    source_path: str
    rows: int  # rows stored
    agrees: bool  # every row both hold is the same, but perhaps the stored last one
    changed_last: int | None  # the ordinal of the stored last row, when the log changes it
    tracker_state: dict[str, Any]


@dataclass
class SessionMatch:
    """Where a log goes: a stored session (its id) or a new one (id None) under `key`."""

    key: str
    session_id: int | None = None
    stored_rows: int = 0
    update_ordinal: int | None = None  # the stored last row this log rewrote
    moved_from: str | None = None  # the stored session's old path, when the log was moved
    tracker_state: dict[str, Any] = field(default_factory=dict)


def _compare(
    bank: Bank, session_id: int, fields: Iterable[str], rows: int
) -> tuple[int, bool, int | None, str, str]:
    """(rows stored, agrees, changed last ordinal, its stored fields, its fields in the log) of
    a stored session against the log's `rows` rows (`fields`, in order), both read in order a
    batch at a time."""
    count, changed, after, was, now = 0, None, -1, "", ""
    agrees = True
    logged = iter(fields)
    at, current = -1, ""
    while batch := bank.query(
        "SELECT ordinal, fields_json FROM experiments WHERE session_id = ? AND ordinal > ?"
        " ORDER BY ordinal LIMIT 2000",
        (session_id, after),
    ):
        for row in batch:
            ordinal, stored = row["ordinal"], row["fields_json"]
            count += 1
            if changed is not None:
                agrees = False  # a changed row that is not the last
            if ordinal < rows:
                while at < ordinal:
                    current, at = next(logged), at + 1
                if current != stored:
                    changed, was, now = ordinal, stored, current
        after = batch[-1]["ordinal"]
    return count, agrees, changed, was, now


def _file_id(path: Path) -> list[int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_dev, status.st_ino]


def _is_torn(stored: str, now: str) -> bool:
    """True when a stored row reads as the log's row cut short (each field as stored is the
    start of the field now): a line read while it was being written."""
    before, after = json.loads(stored), json.loads(now)
    return before.keys() == after.keys() and all(
        after[name].startswith(value) for name, value in before.items()
    )


def _source_path(path: Path) -> str:
    """Where a session's log is, as stored: the path resolved (`nrr check --session PATH`)."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return os.path.abspath(path)


def _same_file(stored: str, path: Path) -> bool:
    if os.path.abspath(stored) in (os.path.abspath(path), _source_path(path)):
        return True
    try:
        return os.path.samefile(stored, path)
    except OSError:
        return False


def match_session(
    bank: Bank, session_key: str, fields: Callable[[], Iterable[str]], rows: int, path: Path
) -> SessionMatch:
    """The stored session this log continues, or a fresh key for a new one (a fork).

    `fields()` gives the log's `rows` rows' fields as stored (`fields_json`), in order, each
    time it is called (a log too long to hold is read again for each stored session).

    Logs that share a header and first row (forks of one baseline) share a key; sessions with it
    are `key`, `key#2`, ... A stored session is this log's when the rows both hold are the same
    and one of: it was read from this file (then a changed last row is an update of that row
    when it was stored cut short by a writer, or the file is the one it was read from, rewritten
    in place by its loop; a new file at the path is another log); the log adds nothing to it (a
    copy or an export); or its file is gone (the log was moved). A log at another path that extends a
    session whose file still exists is a sibling fork, stored as its own session.
    """
    stored: list[_Stored] = []
    suffix = 1
    while True:
        key = session_key if suffix == 1 else f"{session_key}#{suffix}"
        found = bank.query(
            "SELECT id, source_path, tracker_state FROM sessions WHERE session_key = ?", (key,)
        )
        if not found:
            break
        count, agrees, changed, was, now = _compare(bank, found[0]["id"], fields(), rows)
        state = json.loads(found[0]["tracker_state"] or "{}")
        if changed is not None and not (_is_torn(was, now) or state.get("file") == _file_id(path)):
            # Not the same file rewritten in place (a new log at the path, the old one rotated
            # away) and not a row cut short: the changed row makes it another log.
            agrees = False
        stored.append(
            _Stored(key, found[0]["id"], found[0]["source_path"], count, agrees, changed, state)
        )
        suffix += 1

    def chosen(entry: _Stored, **extra: Any) -> SessionMatch:
        return SessionMatch(
            entry.key, entry.session_id, entry.rows, tracker_state=entry.tracker_state, **extra
        )

    for entry in stored:
        if entry.agrees and _same_file(entry.source_path, path):
            return chosen(entry, update_ordinal=entry.changed_last)
    for entry in stored:
        if entry.agrees and entry.changed_last is None and rows <= entry.rows:
            return chosen(entry)
    for entry in stored:
        if entry.agrees and entry.changed_last is None and not os.path.lexists(entry.source_path):
            return chosen(entry, moved_from=entry.source_path)
    return SessionMatch(key)


INSERT_BATCH = 1000
OUTCOME_BATCH = 10_000  # stored rows' refreshed outcomes written at a time
READ_ATTEMPTS = 3  # a log rewritten while it is read is read again, this many times in all
Progress = Callable[[str, int, "int | None"], None]


def ingest_logs(
    bank: Bank,
    paths: Sequence[str | Path],
    *,
    strict: bool = False,
    metric: str | None = None,
    direction: str | None = None,
    rules: Rules | None = None,
    finished: bool = False,
    progress: Progress | None = None,
    session_name: str | None = None,
) -> list[IngestSummary]:
    """Ingest several logs as ONE transaction: a fatal fault in any file writes nothing.

    With `strict`, any bad row is fatal; otherwise good rows are stored and each bad row is
    reported by line in its summary. A last line without its newline is not read (a loop may be
    writing it; it is read on the next ingest) unless `finished` says the logs are complete.
    `progress(path, rows done, rows)` is called after each batch of rows stored, and as rows
    are first read (then with rows None). `session_name` names the session (one log only): a
    log ingested under a name is its own session, never merged with another loop's log.

    Memory is bounded whatever a log's length: each log is read in passes over its file
    (`StreamedLog`), keeping a few bytes per row for its outcomes, and its rows are parsed and
    written a batch at a time. A log whose bytes change between passes (rewritten in place) is
    read again from the start, the transaction rolled back.
    """
    if session_name is not None and len(paths) != 1:
        raise NrrInputError("--session-name names one log's session: give one log")
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            summaries = _ingest_once(
                bank, paths, strict, metric, direction, rules, finished, progress, session_name
            )
            break
        except LogChangedError:
            if attempt == READ_ATTEMPTS:
                raise
    sync_features(bank, [summary.session_id for summary in summaries])
    return summaries


def _ingest_once(
    bank: Bank,
    paths: Sequence[str | Path],
    strict: bool,
    metric: str | None,
    direction: str | None,
    rules: Rules | None,
    finished: bool,
    progress: Progress | None,
    session_name: str | None,
) -> list[IngestSummary]:
    prepared: list[StreamedLog] = []
    try:
        for path in paths:
            log = StreamedLog(
                path,
                metric=metric,
                direction=direction,
                hold_unterminated=not finished,
                progress=(
                    None if progress is None else functools.partial(_reading, progress, str(path))
                ),
            )
            prepared.append(log)
            if strict and log.bad_rows:
                first = log.bad_rows[0]
                more = (
                    f" (and {len(log.bad_rows) - 1} more bad rows)" if len(log.bad_rows) > 1 else ""
                )
                raise NrrInputError(
                    f"{first.reason}{more}; --strict writes nothing",
                    path=str(path),
                    line=first.line_number,
                )
            if not log.row_count:
                raise NrrInputError("no readable rows", path=str(path))
        with bank.transaction():
            bank.lock_inserts()  # before any session row lock: two ingests never wait on each other
            return [_store_log(bank, log, rules, progress, session_name) for log in prepared]
    finally:
        for log in prepared:
            log.close()


def _reading(progress: Progress, path: str, rows: int) -> None:
    progress(path, rows, None)


def _store_log(
    bank: Bank,
    log: StreamedLog,
    rules: Rules | None,
    progress: Progress | None,
    session_name: str | None = None,
) -> IngestSummary:
    """Write one read log into its session, inside the caller's transaction, a batch at a time."""
    path = Path(log.path)
    key = log.session_key if session_name is None else f"{log.session_key}@{session_name}"
    if bank.query("SELECT id FROM sessions WHERE session_key = ?", (key,)):
        fields = lambda: (_fields_json(row.fields) for row in log.rows())  # noqa: E731
        match = match_session(bank, key, fields, log.row_count, path)
    else:
        match = SessionMatch(key)  # a log never seen: nothing to compare
    session_id, created = bank.upsert_session(
        {
            "session_key": match.key,
            "name": session_name or path.name,
            "source_path": _source_path(path),
            "metric_name": log.metric_name,
            "metric_direction": log.metric_direction,
            "direction_source": log.direction_source,
            "header": log.header,
        }
    )
    if match.moved_from is not None:
        bank.execute(
            "UPDATE sessions SET source_path = ?, name = ? WHERE id = ?",
            (_source_path(path), session_name or path.name, session_id),
        )
    # Rows already stored are not parsed again: the tracker resumes from the state it was
    # stored with after them (unless a row changed, or the state predates this record).
    start = 0
    tracker = ConfigTracker(rules)
    total = log.row_count
    if (
        match.update_ordinal is None
        and match.stored_rows
        and match.tracker_state.get("rows") == match.stored_rows
        and match.stored_rows <= total
    ):
        start = match.stored_rows
        tracker = ConfigTracker.from_state(match.tracker_state, rules)
    # A shorter read (a rewriter caught mid-write) leaves the session's state as it was.
    grown = total >= match.stored_rows
    maker = _RowMaker(log.facts, log.metric_direction, tracker)
    added = updated = 0
    outcomes: dict[int, tuple[str | None, float | None]] = {}
    batch: list[dict[str, Any]] = []
    statuses: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for index, read in enumerate(log.rows()):
        status = maker.status(index, read)
        statuses[status] += 1
        if status == "other":
            others[_printable(read.raw_status)] += 1
        if index < match.stored_rows and grown:  # inserted rows carry theirs already
            outcomes[index] = maker.outcome(index)
            if len(outcomes) >= OUTCOME_BATCH:
                bank.update_outcomes(session_id, outcomes)
                outcomes = {}
        if index < start:
            continue  # stored, and the tracker resumes after it
        row = maker.row(index, read)
        row["session_id"] = session_id
        if index == match.update_ordinal:
            updated += _replace_row(bank, row)
            continue
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            added += bank.insert_experiments(batch)
            batch = []
            if progress is not None:
                progress(log.path, index + 1, total)
    added += bank.insert_experiments(batch)
    if grown:
        state = {**tracker.state(), "rows": total, "file": _file_id(path)}
        bank.set_tracker_state(session_id, state)
        bank.update_outcomes(session_id, outcomes)
    if progress is not None:
        progress(log.path, total, total)
    return IngestSummary(
        path=str(log.path),
        session_id=session_id,
        session_created=created,
        rows_read=total,
        rows_added=added,
        rows_already_present=total - added - updated,
        bad_rows=[(bad.line_number, bad.reason) for bad in log.bad_rows],
        status_counts=dict(statuses),
        metric_name=log.metric_name,
        metric_direction=log.metric_direction,
        direction_source=log.direction_source,
        columns=dict(log.columns),
        repairs=[_printable(note) for note in log.repairs],
        other_statuses=dict(others),
        rows_updated=updated,
        pending_line=log.pending_line,
    )


_UPDATED_COLUMNS = [c for c in EXPERIMENT_COLUMNS if c not in ("session_id", "ordinal")]


def _replace_row(bank: Bank, row: dict[str, Any]) -> int:
    """Rewrite a stored row in place (its id, and the records that cite it, stay)."""
    assignments = ", ".join(f"{column} = ?" for column in _UPDATED_COLUMNS)
    return bank.execute(
        f"UPDATE experiments SET {assignments} WHERE session_id = ? AND ordinal = ?",
        [row[c] for c in _UPDATED_COLUMNS] + [row["session_id"], row["ordinal"]],
    ).rowcount


def sync_features(bank: Bank, session_ids: list[int]) -> None:
    """Bring the similarity store beside the bank up to date at the cost of these sessions'
    rows; it is repaired on the next sync if this fails."""
    from nrr_stats.similarity.store import sync_bank_features

    try:
        sync_bank_features(bank, session_ids)
    except OSError as error:
        print(
            f"nrr: warning: similarity store not updated ({error.strerror}); the next check rebuilds it",
            file=sys.stderr,
        )


def ingest_log(bank: Bank, path: str | Path, **options: Any) -> IngestSummary:
    """Ingest one log (see `ingest_logs`)."""
    return ingest_logs(bank, [path], **options)[0]
