"""Track the kept configuration as a log advances, so target-only changes ("LR to 0.05") get a direction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from nrr_stats.parser.parse import ParsedChange, parse_description
from nrr_stats.parser.results import strip_result_words_with
from nrr_stats.parser.rules import Rules, load_rules
from nrr_stats.parser.templates import MAX_HISTORY, Template, earlier_match, template_of

Fallback = Callable[[str, ParsedChange, Mapping[str, str]], ParsedChange]
KEPT_STATUSES = frozenset({"keep", "kept", "baseline", "best", "accepted", "improved"})
MIN_ROWS_FOR_DOMAIN = 10  # earlier rows before a log's domain is judged from them
OTHER_SHARE = 0.8  # share of those rows of no ML category that marks a log as not ML training
TRAINING_SHARE = 0.1  # and the most of them that may plainly change an ML-training setting


class ConfigTracker:
    """Tracks the kept configuration as a log advances."""

    def __init__(self, rules: Rules | None = None, fallback: Fallback | None = None):
        self.rules = rules or load_rules()
        # Asked after the rules (text, their parse, the kept configuration): the model parser.
        self.fallback = fallback
        self.current: dict[str, str] = {}
        self.training_rows = 0  # earlier rows that plainly change an ML-training setting
        self.foreign_rows = 0  # earlier rows in the words of another domain (trades, moves, games)
        self.rows = 0  # earlier rows without an ambiguous word
        self.other_rows = 0  # those of no ML-training category (software, systems, strategy)
        # Templates of the earlier rows (numbers taken out) and whether each was kept.
        self.templates: list[tuple[Template, bool]] = []
        self._last: tuple[ParsedChange, Template | None] | None = None

    def state(self) -> dict:
        """What the tracker knows, as JSON-ready data (stored with a session in the bank)."""
        return {
            "current": dict(self.current),
            "training_rows": self.training_rows,
            "foreign_rows": self.foreign_rows,
            "rows": self.rows,
            "other_rows": self.other_rows,
            "templates": [[t.skeleton, list(t.numbers), kept] for t, kept in self.templates],
        }

    @classmethod
    def from_state(cls, state: dict, rules: Rules | None = None) -> ConfigTracker:
        """A tracker that resumes where `state()` left off."""
        tracker = cls(rules)
        tracker.current = {str(k): str(v) for k, v in dict(state.get("current", {})).items()}
        tracker.training_rows = int(state.get("training_rows", 0))
        tracker.foreign_rows = int(state.get("foreign_rows", 0))
        tracker.rows = int(state.get("rows", 0))
        tracker.other_rows = int(state.get("other_rows", 0))
        tracker.templates = [
            (Template(str(skeleton), tuple(str(n) for n in numbers)), bool(kept))
            for skeleton, numbers, kept in state.get("templates", [])
        ][-MAX_HISTORY:]
        return tracker

    def parse(self, text: str) -> ParsedChange:
        """Parse a description against the configuration kept so far and the log's domain so far:
        in a trading or game log, "momentum" or "cooldown" alone does not make an ML category."""
        parsed = parse_description(text, rules=self.rules, config=self.current)
        if self.fallback is not None:
            parsed = self.fallback(text, parsed, self.current)
        own_domain = self.foreign_rows > self.training_rows or self._not_training()
        if parsed.alone is not None and own_domain:
            parsed = parsed.alone  # parts of no category in such a log are its own kind of change
        if parsed.ambiguous and own_domain:
            parsed = replace(
                parsed, category="other", direction=parsed.uncounted or parsed.direction
            )
        template = template_of(strip_result_words_with(text, self.rules)) if text else None
        if template is not None and parsed.direction == "other" and parsed.category != "multiple":
            # no direction from the text: an earlier row written the same way says which way
            direction, before, after = earlier_match(template, self.templates, parsed.to_value)
            if direction:
                from_value = parsed.from_value
                if not from_value and parsed.to_value.strip().lower() == after:
                    from_value = before
                parsed = replace(parsed, direction=direction, from_value=from_value)
        self._last = (parsed, template)
        return parsed

    def _not_training(self) -> bool:
        """True when the log so far is plainly not ML training: several earlier rows, nearly all
        of no ML category ("MemoizedConstitution", "skip DAG validation", ...), so "warmup" or
        "cache" in its next row is that log's own thing."""
        return (
            self.rows >= MIN_ROWS_FOR_DOMAIN
            and self.other_rows >= OTHER_SHARE * self.rows
            and self.training_rows <= TRAINING_SHARE * self.rows
        )

    def observe(self, parsed: ParsedChange, kept: bool) -> None:
        """A row's `from` values reveal the current values (even when discarded); a kept row moves them to `to`."""
        if self._last is not None and self._last[0] is parsed and self._last[1] is not None:
            self.templates = [*self.templates, (self._last[1], kept)][-MAX_HISTORY:]
        self._last = None
        if not parsed.ambiguous:  # a row read by the log's domain does not judge the domain
            self.rows += 1
            self.other_rows += parsed.category == "other"
        if parsed.foreign:
            self.foreign_rows += 1
        elif parsed.category not in ("other", "multiple") and not parsed.ambiguous:
            self.training_rows += 1
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
