"""Store results logs in the bank: read, parse, classify, then write in one transaction.

Re-ingesting a log adds nothing twice (a log is keyed by its header and first row, a row by
its number in the log), and a log that grew adds only its new rows.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nrr_stats.bank.store import Bank, utc_now
from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import ResultsLog, classify_outcomes, metric_deltas, read_results_log
from nrr_stats.ingest.outcomes import BASELINE_ROW
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "session_id": self.session_id,
            "session_created": self.session_created,
            "rows_read": self.rows_read,
            "rows_added": self.rows_added,
            "rows_already_present": self.rows_already_present,
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
    # Raw statuses: a `BASELINE` status sets the reference as a baseline description does; a
    # status the reader inferred for this log ('1' in a 'kept' column) is passed as read.
    statuses = [row.raw_status if row.status == "other" else row.status for row in log.rows]
    metrics = np.array(
        [np.nan if row.metric is None else row.metric for row in log.rows], dtype=float
    )
    descriptions = [row.description for row in log.rows]
    outcomes = classify_outcomes(metrics, statuses, log.metric_direction, descriptions)
    deltas = metric_deltas(metrics, statuses, log.metric_direction, descriptions)
    tracker = tracker if tracker is not None else ConfigTracker(rules)
    now = utc_now()
    references = leading_reference_rows(descriptions, statuses)
    rows = []
    for index, (row, outcome, delta) in enumerate(zip(log.rows, outcomes, deltas, strict=True)):
        config_before = json.dumps(tracker.current, sort_keys=True, ensure_ascii=False)
        parsed = tracker.parse(row.description)
        tracker.observe(parsed, kept=row.status == "keep")
        rows.append(
            {
                "ordinal": index,
                "row_number": row.row_number,
                "line_number": row.line_number,
                "experiment_id": row.experiment_id,
                "metric": row.metric,
                "status": "other" if index < references else row.status,
                "raw_status": row.raw_status,
                "description": row.description,
                **parsed.bank_fields(),
                "outcome": outcome,
                "delta": None if delta is None or not np.isfinite(delta) else float(delta),
                "config_before": config_before,
                "evidence_weight": 1.0,
                "fields_json": json.dumps(row.fields, ensure_ascii=False),
                "ingested_at": now,
            }
        )
    return rows


def matching_session_key(bank: Bank, session_key: str, rows: Sequence[dict[str, Any]]) -> str:
    """The key of the stored session this log continues, or a fresh one for a fork.

    Two logs can share a header and first row (a fork of the same baseline). A stored session is
    this log only if every row they both hold is the same; otherwise the log is stored as a new
    session under `key#2`, `key#3`, ... (found again, identically, when it is re-ingested).
    """
    fields = {row["ordinal"]: row["fields_json"] for row in rows}
    suffix = 1
    while True:
        candidate = session_key if suffix == 1 else f"{session_key}#{suffix}"
        found = bank.query("SELECT id FROM sessions WHERE session_key = ?", (candidate,))
        if not found:
            return candidate
        stored = bank.query(
            "SELECT ordinal, fields_json FROM experiments WHERE session_id = ?", (found[0]["id"],)
        )
        if all(
            fields.get(row["ordinal"], row["fields_json"]) == row["fields_json"] for row in stored
        ):
            return candidate
        suffix += 1


def ingest_logs(
    bank: Bank,
    paths: Sequence[str | Path],
    *,
    strict: bool = False,
    metric: str | None = None,
    direction: str | None = None,
    rules: Rules | None = None,
    session_name: str | None = None,
) -> list[IngestSummary]:
    """Ingest several logs as ONE transaction: a fatal fault in any file writes nothing.

    With `strict`, any bad row is fatal; otherwise good rows are stored and each bad row is
    reported by line in its summary. `session_name` names the session (one log only): a log
    ingested under a name is its own session, never merged with another loop's log.
    """
    if session_name is not None and len(paths) != 1:
        raise NrrInputError("--session-name names one log's session: give one log")
    prepared = []
    for path in paths:
        log = read_results_log(path, metric=metric, direction=direction)
        if strict and log.bad_rows:
            first = log.bad_rows[0]
            more = f" (and {len(log.bad_rows) - 1} more bad rows)" if len(log.bad_rows) > 1 else ""
            raise NrrInputError(
                f"{first.reason}{more}; --strict writes nothing",
                path=str(path),
                line=first.line_number,
            )
        if not log.rows:
            raise NrrInputError("no readable rows", path=str(path))
        tracker = ConfigTracker(rules)
        prepared.append((log, experiment_rows(log, rules, tracker), tracker.state()))

    summaries = []
    with bank.transaction():
        bank.lock_inserts()  # before any session row lock: two ingests never wait on each other
        for log, rows, tracker_state in prepared:
            key = log.session_key if session_name is None else f"{log.session_key}@{session_name}"
            session_key = matching_session_key(bank, key, rows)
            session_id, created = bank.upsert_session(
                {
                    "session_key": session_key,
                    "name": session_name or Path(log.path).name,
                    "source_path": str(Path(log.path).resolve()),
                    "metric_name": log.metric_name,
                    "metric_direction": log.metric_direction,
                    "direction_source": log.direction_source,
                    "header": log.header,
                }
            )
            for row in rows:
                row["session_id"] = session_id
            added = bank.insert_experiments(rows)
            bank.set_tracker_state(session_id, tracker_state)
            bank.update_outcomes(
                session_id, {r["ordinal"]: (r["outcome"], r["delta"]) for r in rows}
            )
            summaries.append(
                IngestSummary(
                    path=str(log.path),
                    session_id=session_id,
                    session_created=created,
                    rows_read=len(rows),
                    rows_added=added,
                    rows_already_present=len(rows) - added,
                    bad_rows=[(bad.line_number, bad.reason) for bad in log.bad_rows],
                    status_counts=dict(Counter(r["status"] for r in rows)),
                    metric_name=log.metric_name,
                    metric_direction=log.metric_direction,
                    direction_source=log.direction_source,
                    columns=dict(log.columns),
                    repairs=[_printable(note) for note in log.repairs],
                    other_statuses=dict(
                        Counter(_printable(r["raw_status"]) for r in rows if r["status"] == "other")
                    ),
                )
            )
    _sync_features(bank, [summary.session_id for summary in summaries])
    return summaries


def _sync_features(bank: Bank, session_ids: list[int]) -> None:
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
