"""Read a proposal as `nrr check` receives it: a description, `KEY = value` lines, a unified diff.

The NRR loop contract sends free text that may mix all three; this module separates them and
turns them into parsed changes (category, direction, parameter, from, to). A unified diff is read
by its `+`/`-` lines only, whatever its context width: `-KEY = a` with `+KEY = b` is a change of
KEY from a to b; context lines and changed code that sets no named value are not read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from nrr_stats.parser import ConfigTracker, ParsedChange

_ASSIGNMENT = re.compile(
    r"""^(?P<sign>[+-])?\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][\w\[\], .]*)?\s*=\s*
        (?P<value>[^#]+?)\s*,?\s*(?:\#.*)?$""",
    re.VERBOSE,
)
_LITERAL = re.compile(
    r"""^(?:[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:e[-+]?\d+)?[kKmMbB%x]?|'[^']*'|"[^"]*"|True|False|None)$"""
)
_DIFF_HEADER = re.compile(r"^(?:---|\+\+\+|@@|diff --git|index [0-9a-f]+)")
# What makes a text a unified diff: a hunk header or git's file header.
_DIFF_START = re.compile(r"^(?:@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@|diff --git )")
_HUNK = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")

FORMS = ("text", "key=value", "diff")


@dataclass(frozen=True)
class ProposalLine:
    """One line of the proposal that the answer was read from: its number (1-based), text, use."""

    number: int
    text: str
    use: str  # "description" | "set" (KEY = value) | "from" (-KEY = a) | "to" (+KEY = b)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.number, "text": self.text, "use": self.use}


@dataclass(frozen=True)
class ValueChange:
    """One named value the proposal changes: KEY from `old` (None: not given) to `new`."""

    key: str
    old: str | None
    new: str

    def text(self) -> str:
        """The change as one line the parser reads on its own (`KEY a -> b` or `KEY = b`)."""
        return f"{self.key} {self.old} -> {self.new}" if self.old else f"{self.key} = {self.new}"


@dataclass(frozen=True)
class Proposal:
    """A proposal split into its description and the values it sets, and how it was read."""

    text: str
    description: str
    new_values: dict[str, str] = field(default_factory=dict)
    old_values: dict[str, str] = field(default_factory=dict)
    form: str = "text"  # one of FORMS: the richest structure found
    lines: tuple[ProposalLine, ...] = ()  # the lines read (description and values)
    ignored_lines: int = 0  # diff context, headers and code lines that set no named value

    @property
    def changes(self) -> list[ValueChange]:
        """Every value the proposal changes, in the order it sets them (a `-KEY`/`+KEY` pair that
        keeps the value is no change)."""
        return [
            ValueChange(key, self.old_values.get(key), new) for key, new in self.new_values.items()
        ]

    def read_as(self) -> dict[str, Any]:
        """How the proposal was read, for the answer: form, the lines used, every change."""
        return {
            "form": self.form,
            "lines_used": [line.as_dict() for line in self.lines],
            "lines_ignored": self.ignored_lines,
            "changes": [
                {"parameter": change.key, "from": change.old, "to": change.new}
                for change in self.changes
            ],
        }


def read_proposal(text: str) -> Proposal:
    """Split proposal text into description lines and `KEY = value` / `-KEY = a` / `+KEY = b` lines.

    A text holding a hunk header (`@@ -1,7 +1,7 @@`) or `diff --git` is a unified diff: lines
    before its first header are description (or `KEY = value`), inside a hunk only `+`/`-` lines
    are read and context lines are not. Without headers, a `+KEY = value` line still counts as
    a diff line (the form `git diff -U0 | grep` leaves).
    """
    raw_lines = text.splitlines()
    is_diff = any(_DIFF_START.match(line) for line in raw_lines)
    reader = _Reader()
    in_diff = False
    old_left = new_left = 0  # lines of the current hunk still to come, from its header
    for number, raw_line in enumerate(raw_lines, start=1):
        hunk = _HUNK.match(raw_line) if is_diff else None
        if hunk:
            in_diff = True
            old_left, new_left = _count(hunk["old"]), _count(hunk["new"])
            reader.ignored += 1
        elif (old_left or new_left) and raw_line[:1] in ("+", "-", " ", ""):
            if raw_line[:1] == "+":
                new_left -= 1
                reader.diff_line(number, raw_line)
            elif raw_line[:1] == "-":
                old_left -= 1
                reader.diff_line(number, raw_line)
            else:  # a context line (an empty one when an editor stripped its space)
                old_left, new_left = max(old_left - 1, 0), max(new_left - 1, 0)
                reader.ignored += bool(raw_line.strip())
        elif in_diff and raw_line[:1] in ("+", "-") and not raw_line.startswith(("+++", "---")):
            reader.diff_line(number, raw_line)  # a hand-written hunk longer than its header says
        elif in_diff or (is_diff and _DIFF_START.match(raw_line)):
            # File headers, `\ No newline at end of file`, text between files: not read.
            in_diff = True
            reader.ignored += bool(raw_line.strip())
        else:
            reader.plain_line(number, raw_line)
    return reader.proposal(text, is_diff)


def _count(text: str | None) -> int:
    return 1 if text is None else int(text)


class _Reader:
    """Collects a proposal's lines as `read_proposal` walks them."""

    def __init__(self) -> None:
        self.description: list[str] = []
        self.new_values: dict[str, str] = {}
        self.old_values: dict[str, str] = {}
        self.lines: list[tuple[ProposalLine, str | None]] = []
        self.ignored = 0
        self.signed = self.assigned = False

    def diff_line(self, number: int, raw_line: str) -> None:
        """A `+`/`-` line of a hunk: a named value set or unset, else changed code (not read)."""
        match = _ASSIGNMENT.match(raw_line[0] + raw_line[1:].strip())
        if match and _sets_a_value(match["key"], match["value"].strip()):
            self._value(number, raw_line, match)
        else:
            self.ignored += 1

    def plain_line(self, number: int, raw_line: str) -> None:
        line = raw_line.strip()
        if not line:
            return
        if _DIFF_HEADER.match(line):
            self.ignored += 1
            return
        match = _ASSIGNMENT.match(line)
        if match and _sets_a_value(match["key"], match["value"].strip()):
            self._value(number, raw_line, match)
        elif line[0] in "+-" and len(line) > 1 and not line[1].isdigit():
            self.ignored += 1  # a changed code line that sets no named value
        else:
            self.description.append(line)
            self.lines.append((ProposalLine(number, raw_line, "description"), None))

    def _value(self, number: int, raw_line: str, match: re.Match[str]) -> None:
        key = match["key"].upper()
        value = match["value"].strip().strip("'\"")
        sign = match["sign"]
        self.signed |= sign is not None
        self.assigned = True
        (self.old_values if sign == "-" else self.new_values)[key] = value
        use = {"-": "from", "+": "to"}.get(sign or "", "set")
        self.lines.append((ProposalLine(number, raw_line, use), key))

    def proposal(self, text: str, is_diff: bool) -> Proposal:
        # A -KEY/+KEY pair that keeps the value (a comment or spacing edit) changes nothing.
        unchanged = {k for k, v in self.new_values.items() if self.old_values.get(k) == v}
        new_values = {k: v for k, v in self.new_values.items() if k not in unchanged}
        lines = tuple(line for line, key in self.lines if key is None or key not in unchanged)
        form = "diff" if is_diff or self.signed else "key=value" if self.assigned else "text"
        return Proposal(
            text,
            " ".join(self.description),
            new_values,
            dict(self.old_values),
            form,
            lines,
            self.ignored + len(self.lines) - len(lines),
        )


def _sets_a_value(key: str, value: str) -> bool:
    """A hyperparameter line (`MATRIX_LR = 0.04`, `lr = 3e-4`), not code (`x = f(y)`)."""
    return key.isupper() or bool(_LITERAL.match(value))


def _assignment_text(proposal: Proposal, config: Mapping[str, str]) -> str:
    parts = []
    for key, new in proposal.new_values.items():
        old = proposal.old_values.get(key, config.get(key, ""))
        parts.append(f"{key} {old} -> {new}" if old else f"{key} = {new}")
    return " and ".join(parts)


def proposal_change(proposal: Proposal, tracker: ConfigTracker | None = None) -> ParsedChange:
    """The change a proposal makes: from its description, completed or replaced by its assignments.

    `tracker` holds the session's kept configuration and domain; `-KEY = old` diff lines add to
    what it knows. A `from` value the text does not give is taken from the kept configuration.
    """
    base = tracker if tracker is not None else ConfigTracker()
    known = ConfigTracker.from_state(
        {**base.state(), "current": {**base.current, **proposal.old_values}}, base.rules
    )
    change = _change_from_text(proposal, known)
    if change.parameter and not change.from_value and change.parameter in known.current:
        return replace(change, from_value=known.current[change.parameter])
    return change


def _change_from_text(proposal: Proposal, known: ConfigTracker) -> ParsedChange:
    from_description = known.parse(proposal.description)
    if not proposal.new_values:
        return from_description
    from_values = known.parse(_assignment_text(proposal, known.current))
    if not proposal.description or from_description.category == "other":
        return from_values
    if from_description.parameter or from_values.category != from_description.category:
        return from_description
    return ParsedChange(
        category=from_description.category,
        direction=from_description.direction
        if from_description.direction != "other"
        else from_values.direction,
        parameter=from_values.parameter,
        from_value=from_description.from_value or from_values.from_value,
        to_value=from_description.to_value or from_values.to_value,
    )
