"""Track the kept configuration as a log advances, so target-only changes ("LR to 0.05") get a direction."""

from __future__ import annotations

from collections.abc import Sequence

from nrr_stats.parser.parse import ParsedChange, parse_description
from nrr_stats.parser.rules import Rules, load_rules

KEPT_STATUSES = frozenset({"keep", "kept", "baseline", "best", "accepted", "improved"})


class ConfigTracker:
    """Tracks the kept configuration as a log advances."""

    def __init__(self, rules: Rules | None = None):
        self.rules = rules or load_rules()
        self.current: dict[str, str] = {}

    def parse(self, text: str) -> ParsedChange:
        """Parse a description against the configuration kept so far."""
        return parse_description(text, rules=self.rules, config=self.current)

    def observe(self, parsed: ParsedChange, kept: bool) -> None:
        """A row's `from` values reveal the current values (even when discarded); a kept row moves them to `to`."""
        stated = list(parsed.settings)
        primary = (parsed.parameter, parsed.from_value, parsed.to_value)
        if parsed.parameter and (parsed.from_value or parsed.to_value) and primary not in stated:
            stated.append(primary)
        for parameter, before, _ in stated:
            if before:
                self.current[parameter] = before
        if kept:
            for parameter, _, after in stated:
                if after:
                    self.current[parameter] = after


def parse_log_descriptions(
    descriptions: Sequence[str], statuses: Sequence[str], rules: Rules | None = None
) -> list[ParsedChange]:
    """Parse a log's descriptions in order; row t's parse uses only rows before t plus its own text."""
    tracker = ConfigTracker(rules)
    parsed_rows: list[ParsedChange] = []
    for index, text in enumerate(descriptions):
        parsed = tracker.parse(text if isinstance(text, str) else "")
        parsed_rows.append(parsed)
        status = statuses[index] if index < len(statuses) else ""
        tracker.observe(parsed, kept=str(status).strip().lower() in KEPT_STATUSES)
    return parsed_rows
