"""Re-classify the stored rows after the parser's rules change (`nrr reparse`).

Each session is walked in log order with a fresh ConfigTracker, exactly as ingest walks a log,
so a row's parse sees the configuration kept by the rows before it. Only rows whose parse
changed are written (one transaction); the bank's evidence revision moves with them, so open
readings and saved sums are rebuilt by the next check.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.bank.ingest import sync_features
from nrr_stats.bank.store import PARSED_COLUMNS, Bank
from nrr_stats.ingest.status import map_status
from nrr_stats.parser import ConfigTracker, Rules, load_rules
from nrr_stats.parser.tracker import Fallback


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
    rows: list[dict[str, Any]], rules: Rules, fallback: Fallback | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of one session (in ordinal order) whose parse differs under `rules`, with their
    new fields, and the tracker's state after the last row."""
    tracker = ConfigTracker(rules, fallback)
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
    bank: Bank,
    rules: Rules | None = None,
    *,
    dry_run: bool = False,
    fallback: Fallback | None = None,
    session_ids: set[int] | None = None,
) -> ReparseSummary:
    """Parse every stored description again with `rules` (and `fallback`, the model parser, for
    what the rules leave at `other`) and store the rows that changed; only `session_ids` when
    given."""
    rules = rules or load_rules()
    summary = ReparseSummary()
    touched: list[int] = []
    with bank.transaction():
        for session in bank.sessions():
            if session_ids is not None and int(session["id"]) not in session_ids:
                continue
            rows = bank.experiments(session["id"])
            changed, state = reparse_session(rows, rules, fallback)
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
        sync_features(bank, touched)
    return summary


def reparse_with_model(
    bank: Bank,
    rules: Rules,
    parser: Any,
    *,
    session_ids: set[int] | None = None,
    dry_run: bool = False,
) -> ReparseSummary:
    """Reparse with the model parser (`nrr_stats.parser.llm.ModelParser`) behind the rules.

    The model is asked outside any transaction (a bank is never held locked while the network
    answers), once per description the rules leave at `other` and the bank has not cached;
    then the rows are reparsed from the cache and the new answers stored with them.
    """
    parser.cache.update(bank.cached_parses())
    for session in bank.sessions():
        if session_ids is not None and int(session["id"]) not in session_ids:
            continue
        tracker = ConfigTracker(rules)
        for row in bank.experiments(session["id"]):
            text = row["description"] or ""
            parsed = tracker.parse(text)
            if parsed.category == "other" and text.strip():
                parser.ask(text)
            tracker.observe(parsed, kept=_kept(row))
    summary = reparse_bank(
        bank, rules, dry_run=dry_run, fallback=parser.fallback, session_ids=session_ids
    )
    if parser.fresh and not dry_run:
        with bank.transaction():
            bank.store_parses(parser.fresh)
        parser.fresh.clear()
    return summary
