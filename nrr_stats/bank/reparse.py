"""Re-classify the stored rows after the parser's rules change (`nrr reparse`).

Each session is walked in log order with a fresh ConfigTracker, exactly as ingest walks a log,
so a row's parse sees the configuration kept by the rows before it. Only rows whose parse
changed are written (one transaction); the bank's evidence revision moves with them, so open
readings and saved sums are rebuilt by the next check.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.bank.store import PARSED_COLUMNS, Bank
from nrr_stats.ingest.status import map_status
from nrr_stats.parser import ConfigTracker, Rules, load_rules


@dataclass
class ReparseSummary:
    """What a reparse changed: rows read and rewritten (any parsed field or the configuration
    before them), per session, and the rows that moved from one cell to another."""

    sessions: int = 0
    rows: int = 0
    changed: int = 0
    changed_by_session: dict[str, int] = field(default_factory=dict)
    moves: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "rows": self.rows,
            "changed": self.changed,
            "changed_by_session": dict(self.changed_by_session),
            "moves": [
                {"from": old, "to": new, "rows": count}
                for (old, new), count in self.moves.most_common()
            ],
        }


def _kept(row: dict[str, Any]) -> bool:
    """Whether the tracker takes a row's values as kept: its status, or for a leading reference
    row (stored as `other`) its raw status, as ingest did."""
    if row["status"] != "other":
        return row["status"] == "keep"
    return map_status(row.get("raw_status") or "") == "keep"


def reparse_session(
    rows: list[dict[str, Any]], rules: Rules
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one session (in ordinal order) whose parse differs under `rules`, with their
    new fields, and the tracker's state after the last row."""
    tracker = ConfigTracker(rules)
    changed = []
    for row in rows:
        config_before = json.dumps(tracker.current, sort_keys=True, ensure_ascii=False)
        parsed = tracker.parse(row["description"] or "")
        tracker.observe(parsed, kept=_kept(row))
        fields = {**parsed.bank_fields(), "config_before": config_before}
        if any((row.get(c) or "") != fields[c] for c in PARSED_COLUMNS):
            changed.append({**fields, "ordinal": row["ordinal"], "old": row})
    return changed, tracker.state()


def reparse_bank(
    bank: Bank, rules: Rules | None = None, *, dry_run: bool = False
) -> ReparseSummary:
    """Parse every stored description again with `rules` and store the rows that changed."""
    rules = rules or load_rules()
    summary = ReparseSummary()
    touched: list[int] = []
    with bank.transaction():
        for session in bank.sessions():
            rows = bank.experiments(session["id"])
            changed, state = reparse_session(rows, rules)
            summary.sessions += 1
            summary.rows += len(rows)
            if changed:
                summary.changed += len(changed)
                summary.changed_by_session[session["name"] or session["session_key"]] = len(changed)
                for row in changed:
                    old = f"{row['old']['category']}/{row['old']['direction']}"
                    new = f"{row['category']}/{row['direction']}"
                    if old != new:
                        summary.moves[(old, new)] += 1
                touched.append(int(session["id"]))
            if not dry_run:
                bank.update_parsed(session["id"], changed)
                bank.set_tracker_state(session["id"], state)
    if touched and not dry_run:
        _sync_features(bank, touched)
    return summary


def _sync_features(bank: Bank, session_ids: list[int]) -> None:
    from nrr_stats.similarity.store import sync_bank_features

    try:
        sync_bank_features(bank, session_ids)
    except OSError as error:
        print(
            f"nrr: warning: similarity store not updated ({error.strerror}); the next check rebuilds it",
            file=sys.stderr,
        )
