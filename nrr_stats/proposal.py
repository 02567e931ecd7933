"""Read a proposal as `nrr check` receives it: a description, `KEY = value` lines, diff lines.

The NRR loop contract sends free text that may mix all three; this module separates them and
turns them into one parsed change (category, direction, parameter, from, to).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from nrr_stats.parser import ConfigTracker, ParsedChange

_ASSIGNMENT = re.compile(
    r"""^(?P<sign>[+-])?\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][\w\[\], .]*)?\s*=\s*
        (?P<value>[^#]+?)\s*(?:\#.*)?$""",
    re.VERBOSE,
)
_LITERAL = re.compile(
    r"""^(?:[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:e[-+]?\d+)?[kKmMbB%x]?|'[^']*'|"[^"]*"|True|False|None)$"""
)
_DIFF_HEADER = re.compile(r"^(?:---|\+\+\+|@@|diff --git|index [0-9a-f]+)")


@dataclass(frozen=True)
class Proposal:
    """A proposal split into its description and the values it sets."""

    text: str
    description: str
    new_values: dict[str, str] = field(default_factory=dict)
    old_values: dict[str, str] = field(default_factory=dict)


def read_proposal(text: str) -> Proposal:
    """Split proposal text into description lines, `KEY = value` / `+KEY = value` lines and `-KEY = value` lines."""
    description_lines: list[str] = []
    new_values: dict[str, str] = {}
    old_values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or _DIFF_HEADER.match(line):
            continue
        match = _ASSIGNMENT.match(line)
        if match and _sets_a_value(match["key"], match["value"].strip()):
            key = match["key"].upper()
            value = match["value"].strip().strip("'\"")
            (old_values if match["sign"] == "-" else new_values)[key] = value
        elif line[0] in "+-" and len(line) > 1 and not line[1].isdigit():
            continue  # a changed code line that sets no named value
        else:
            description_lines.append(line)
    return Proposal(text, " ".join(description_lines), new_values, old_values)


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
