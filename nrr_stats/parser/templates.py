"""Direction from an earlier row written the same way: "ae160 dyn260" after a kept "ae160 dyn200".

Loops often describe a sweep by rewriting one description and changing a number. When the parse
finds no direction ("dyn260" names no parameter the tracker knows), the earlier row whose text is
the same but for its numbers says where the value was: the changed numbers are the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nrr_stats.parser.values import compare

# A number as written, with a magnitude suffix or exponent ("0.98", "2^19", "512KB" -> "512", "1e-3").
TEMPLATE_NUMBER = re.compile(
    r"(?<![\d.])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?:\^\d+)?(?:[kKmM](?![a-zA-Z]))?"
)
# Rows that repeat a configuration (seeds, re-runs) are not sweeps of a value.
NOT_A_SWEEP = re.compile(
    r"\b(?:seeds?|random[_ ]state|re-?runs?|repeat\w*|retry|reproduc\w*|confirm\w*|verif\w*)",
    re.I,
)
# A row's index is not a setting: "exp-12:", "Deepen iter3:", "H4:", "v2" count rows, they do not move.
INDEX = re.compile(
    r"\b(?:iter(?:ation)?s?|exp|experiment|run|trial|round|stage|phase|attempt|version|h|v|s)"
    r"\s?[-#_]?\d+[a-z]?\b",
    re.I,
)
MAX_HISTORY = 64  # earlier rows remembered per log (a sweep is rewritten within a few rows)


@dataclass(frozen=True)
class Template:
    """A description's text with its numbers taken out, and the numbers in order."""

    skeleton: str
    numbers: tuple[str, ...]


def template_of(text: str) -> Template | None:
    """The template of a (result-scrubbed) description; None when it has no number or too few words
    to be a sweep's rewrite, or names a seed or a run index."""
    text = INDEX.sub("<n>", re.sub(r"\s+", " ", text.strip().lower()))
    numbers = tuple(m.group(0) for m in TEMPLATE_NUMBER.finditer(text))
    if not numbers or NOT_A_SWEEP.search(text):
        return None
    skeleton = TEMPLATE_NUMBER.sub("#", text)
    if len(re.findall(r"[a-z]{2,}", skeleton)) < 1:
        return None
    return Template(skeleton, numbers)


def template_direction(now: Template, before: Template, to_value: str = "") -> tuple[str, str, str]:
    """(direction, from, to) when `now` rewrites `before` by moving its numbers one way; else ("", "", "").

    `to_value` is the value the row's own parse found, if any: it must be one of the moved numbers
    (the template and the parse agree on what changed)."""
    if now.skeleton != before.skeleton or len(now.numbers) != len(before.numbers):
        return ("", "", "")
    moved = [(a, b) for a, b in zip(before.numbers, now.numbers, strict=True) if a != b]
    if not moved:
        return ("", "", "")
    target = to_value.strip().lower()
    if target:
        moved = [(a, b) for a, b in moved if b == target]
        if not moved:
            return ("", "", "")
    ways = {compare(a, b) for a, b in moved}
    if len(ways) != 1 or not ways <= {"increase", "decrease"}:
        return ("", "", "")
    first_from, first_to = moved[0]
    return (ways.pop(), first_from, first_to)


def earlier_match(
    now: Template, history: list[tuple[Template, bool]], to_value: str = ""
) -> tuple[str, str, str]:
    """Direction against the latest earlier row of the same template: the latest kept one (the value in
    force), else the latest of any status (the log's last word on that value)."""
    same = [(t, kept) for t, kept in history if t.skeleton == now.skeleton]
    if not same:
        return ("", "", "")
    kept_rows = [t for t, kept in same if kept]
    before = kept_rows[-1] if kept_rows else same[-1][0]
    return template_direction(now, before, to_value)
