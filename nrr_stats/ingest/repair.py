"""Fit a row's cells onto the header's columns: ragged rows, trailing and inner delimiters, and
two rows whose newline was lost."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from nrr_stats.ingest.status import is_status_word
from nrr_stats.ingest.text import is_missing, looks_numeric, parse_number

MAX_SEEN_FIRST_VALUES = 4096  # first-column values remembered to cut rows run together


def filled_length(cells: list[str]) -> int:
    """Number of cells up to the last non-empty one (trailing delimiters do not count)."""
    length = len(cells)
    while length > 1 and not cells[length - 1].strip():
        length -= 1
    return length


@dataclass(frozen=True)
class _ColumnProfile:
    """What a column's cells look like in the log's full-width rows: numbers or text, how big,
    and whether the column is ever left empty."""

    numeric_share: float
    magnitude: float | None  # median log10 of the absolute numeric values
    usually_filled: bool
    length: int  # median length of the cells


def _profile(values: list[str]) -> _ColumnProfile:
    present = [v for v in values if not is_missing(v)]
    numeric = [v for v in present if looks_numeric(v)]
    sizes = sorted(math.log10(abs(x)) for v in numeric if (x := parse_number(v)))
    share = len(numeric) / len(present) if present else 0.5
    magnitude = sizes[len(sizes) // 2] if sizes else None
    lengths = sorted(len(v) for v in present)
    return _ColumnProfile(
        share,
        magnitude,
        len(present) >= 0.9 * len(values) if values else False,
        lengths[len(lengths) // 2] if lengths else 0,
    )


class Aligner:
    """Fits a row's cells onto the header's columns, repairing ragged and over-long rows.

    A short row gets its missing cells inserted where its cells best match their columns: the
    status column holds a status word, numeric columns hold numbers of their usual size, text
    columns hold text. Extra cells are trailing empties or delimiters inside the description.
    """

    def __init__(
        self,
        width: int,
        status: int,
        description: int,
        metric: int | None,
        delimiter: str,
        regular: list[list[str]],
        is_status: Callable[[str], bool] = is_status_word,
    ):
        self.is_status = is_status
        self.dropped_fields = 0  # rows read by dropping fields the header does not name
        self.width = width
        self.status = status
        self.description = description
        self.metric = metric
        self.delimiter = delimiter
        self.profiles = [_profile([row[j] for row in regular]) for j in range(width)]

    def _cell_fit(self, column: int, cell: str) -> int:
        profile = self.profiles[column]
        if is_missing(cell):
            return -1 if profile.usually_filled else 0
        numeric = looks_numeric(cell)
        if profile.numeric_share >= 0.6:
            if not numeric:
                return -1
            value = parse_number(cell) or 0.0
            close = profile.magnitude is not None and value != 0
            return 2 if close and abs(math.log10(abs(value)) - profile.magnitude) <= 1 else 1
        if profile.numeric_share <= 0.4:
            return -1 if numeric or len(cell) > 4 * profile.length + 10 else 1
        return 0

    def score(self, cells: list[str]) -> int:
        score = 8 if self.is_status(cells[self.status]) else 0
        text = cells[self.description].strip()
        score += 2 if text and not is_status_word(text) else -2
        for column, cell in enumerate(cells):
            if column not in (self.status, self.description):
                score += self._cell_fit(column, cell) * (2 if column == self.metric else 1)
        return score

    def _short_options(self, cells: list[str]) -> list[list[str]]:
        missing = self.width - len(cells)
        # Pad at the end first, then earlier gaps: the first of equal scores wins.
        return [cells[:gap] + [""] * missing + cells[gap:] for gap in range(len(cells), -1, -1)]

    def align(self, cells: list[str]) -> list[str] | None:
        """Cells fitted to the header width, or None when the status cannot be placed."""
        if len(cells) == self.width and self.is_status(cells[self.status]):
            return cells
        options: list[list[str]] = [cells] if len(cells) == self.width else []
        core = list(cells)
        # Trailing delimiters; a full-width row's empty status cell is a missing status, not one.
        keep = self.status + 1 if len(cells) == self.width else 1
        while len(core) > keep and not core[-1].strip():
            core.pop()
        longer: list[list[str]] = []
        for candidate in dict.fromkeys((tuple(cells), tuple(core))):  # ordered: ties resolve alike
            row = list(candidate)
            if len(row) < self.width:
                options += self._short_options(row)
            elif len(row) == self.width:
                options.append(row)
            else:
                extra = len(row) - self.width
                j = self.description  # delimiters inside the description: fold them back
                options.append(
                    row[:j] + [self.delimiter.join(row[j : j + extra + 1])] + row[j + extra + 1 :]
                )
                options.append(row[: self.width - 1] + [self.delimiter.join(row[self.width - 1 :])])
                longer.append(row)
        # Fields the header does not name, added before the status on some rows only (on most
        # rows the header is widened instead): dropped where that fits the columns better than
        # folding them into the description (a tie keeps the fold, which loses no text).
        dropped = [
            row[:at] + row[at + len(row) - self.width :]
            for row in longer
            for at in range(self.status, -1, -1)  # ties: the fields just before the status
        ]
        best = max(options + dropped, key=self.score)
        if self.is_status(best[self.status]):
            if any(best is option for option in dropped):
                self.dropped_fields += 1
            return best
        # A full row whose status cell holds a word no rule knows ('ablate', 'INFO'): kept, as
        # 'other', rather than lost. A number there is a shifted row, not a status.
        unknown = cells[self.status].strip() if len(cells) == self.width else ""
        return cells if unknown and not looks_numeric(unknown) else None


def _char_class(char: str) -> str:
    """Digits and a-f are one class (commit hashes mix them freely), other letters another."""
    if char.isdigit() or char.lower() in "abcdef":
        return "x"
    return "a" if char.isalpha() else char


class RunTogetherSplitter:
    """Splits a line holding two rows whose newline was lost ('... desc a' + 'b2c3d4e ...').

    With 2n-1 cells, the middle cell is the last cell of one row glued to the first cell of the
    next. The cut is tried where a suffix is: the next value of a counter in the first column
    ('exp9' -> 'exp10'), a first-column value seen before (agent names, repeated commits), or a
    string of the first column's shape (same length and kind of character at each position).
    """

    def __init__(self, aligner: Aligner, regular: list[list[str]]):
        self.aligner = aligner
        values = [row[0].strip() for row in regular if row]
        firsts = [value for value in values if value]
        self.first_can_be_empty = len(firsts) < len(values)
        # The usual shapes of the first column: each length that a good share of its values have,
        # with the kind of character seen at each position (commit hashes of 7 and 40 hex digits).
        self.shapes: dict[int, list[set[str]]] = {}
        for length, count in Counter(len(v) for v in firsts).items():
            if count >= (1 if len(firsts) < 5 else max(2, 0.1 * len(firsts))):
                shaped = [v for v in firsts if len(v) == length]
                self.shapes[length] = [{_char_class(v[i]) for v in shaped} for i in range(length)]
        # Leading words the first column's values share ('clf_', 'reg_', 'autoresearch/').
        leads = Counter(m.group(0) for v in firsts if (m := re.match(r"[A-Za-z]+[_\-/.]", v)))
        self.leads = [lead for lead, count in leads.items() if count >= 2]
        self.seen: set[str] = set()

    def remember(self, cells: list[str]) -> None:
        # Bounded: every cut tries each value seen, and a long log has a value per row.
        if cells[0].strip() and len(self.seen) < MAX_SEEN_FIRST_VALUES:
            self.seen.add(cells[0].strip())

    def _readable(self, cells: list[str]) -> bool:
        return len(cells) == self.aligner.width and self.aligner.is_status(
            cells[self.aligner.status]
        )

    def split(self, cells: list[str]) -> list[list[str]] | None:
        """Two rows (aligned to the header) from one over-long line, or None when none fits."""
        width = self.aligner.width
        if len(cells) == 2 * width:
            first, second = cells[:width], cells[width:]
            if self._readable(first) and self._readable(second):
                return [first, second]
        if len(cells) == 2 * width - 1:
            merged = cells[width - 1]
            for cut in [*self._cuts(merged, cells[0].strip()), len(merged)]:
                # The last resort (no cut found) keeps both rows: the second loses its first cell
                # to the end of the first row's last cell.
                first = cells[: width - 1] + [merged[:cut].rstrip()]
                second = [merged[cut:], *cells[width:]]
                if self._readable(first) and self._readable(second):
                    return [first, second]
        return self._split_ragged(cells)

    def _split_ragged(self, cells: list[str]) -> list[list[str]] | None:
        """Two ragged rows run together: each half may miss one cell, which the aligner restores."""
        width = self.aligner.width
        options: list[tuple[list[str], list[str]]] = []
        for k in range(width - 1, width + 1):  # no cell glued: the line breaks between cells
            if width - 1 <= len(cells) - k <= width:
                options.append((cells[:k], cells[k:]))
        for g in range(width - 2, width):  # the last cell of one row glued to the first of the next
            if g < len(cells) and width - 1 <= len(cells) - g <= width:
                merged = cells[g]
                for cut in self._cuts(merged, cells[0].strip()):
                    options.append(
                        (cells[:g] + [merged[:cut].rstrip()], [merged[cut:], *cells[g + 1 :]])
                    )
        best, best_score = None, None
        for first, second in options:
            aligned = [self.aligner.align(first), self.aligner.align(second)]
            if aligned[0] is None or aligned[1] is None:
                continue
            score = self.aligner.score(aligned[0]) + self.aligner.score(aligned[1])
            if best_score is None or score > best_score:
                best, best_score = [aligned[0], aligned[1]], score
        return best

    def _cuts(self, merged: str, first_value: str) -> list[int]:
        suffixes = []
        counter = re.fullmatch(r"(.*?)(\d+)", first_value)
        if counter:
            prefix, digits = counter.groups()
            suffixes.append(prefix + str(int(digits) + 1).zfill(len(digits)))
        if first_value:
            suffixes.append(first_value)
        suffixes += sorted(self.seen, key=len, reverse=True)
        cuts = [
            len(merged) - len(s) for s in suffixes if len(merged) > len(s) and merged.endswith(s)
        ]
        for length in sorted(self.shapes, reverse=True):
            tail = merged[-length:]
            if len(merged) > length and all(
                _char_class(c) in allowed
                for c, allowed in zip(tail, self.shapes[length], strict=True)
            ):
                cuts.append(len(merged) - length)
        lead_cuts = [merged.rfind(lead) for lead in self.leads]
        cuts += sorted((cut for cut in lead_cuts if cut > 0), reverse=True)
        return list(dict.fromkeys(cuts))
