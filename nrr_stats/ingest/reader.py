"""Read one autoresearch results log of any dialect into good rows, bad rows and its column roles."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import math
import os
import stat
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest.columns import (
    find_description_column,
    find_id_column,
    find_leading_status_column,
    find_metric_column,
    find_status_column,
    find_statuses,
    find_terse_description_column,
    header_score,
    names_by_content,
    normalise_name,
    status_share,
)
from nrr_stats.ingest.direction import infer_metric_direction, normalise_direction
from nrr_stats.ingest.repair import Aligner, RunTogetherSplitter, filled_length
from nrr_stats.ingest.status import StatusReading
from nrr_stats.ingest.text import (
    _LINE_END,
    FALLBACK_ENCODING,
    LITERAL_NEWLINE,
    LITERAL_TAB,
    PhysicalLine,
    decode_line,
    ends_unterminated,
    has_open_quote,
    is_missing,
    is_number,
    is_separator_row,
    parse_number,
    sniff_delimiter,
    split_cells,
)

HEADER_SEARCH_LINES = 20
MAX_PROFILE_ROWS = 2000  # rows read to choose columns and learn their shapes
# Fields beyond two rows' worth that a line may hold (delimiters inside a description); more is a
# bad row, never folded into one enormous description.
MAX_EXTRA_FIELDS = 32


@dataclass(frozen=True)
class LogRow:
    """One readable experiment row of a log."""

    row_number: int
    line_number: int
    experiment_id: str
    metric: float | None
    status: str
    raw_status: str
    description: str
    fields: dict[str, str]


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read, with why."""

    line_number: int
    row_number: int | None
    reason: str


@dataclass
class ResultsLog:
    """A log read: its columns, its metric and direction, its good and bad rows."""

    path: str
    header: list[str]
    columns: dict[str, str | None]
    metric_name: str
    metric_direction: str
    direction_source: str
    rows: list[LogRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    session_key: str = ""
    repairs: list[str] = field(
        default_factory=list
    )  # what the reader inferred or mended, said plainly
    pending_line: int | None = None  # an unterminated last line held back (hold_unterminated)


@dataclass
class _Candidate:
    """A content line split into cells, waiting for the columns to be known."""

    line: PhysicalLine
    row_number: int
    cells: list[str] | None  # None: undecodable
    pieces: list[list[str]] | None = None  # rows run together on one line via a literal '\n'


_NOT_REGULAR = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


READ_BLOCK_BYTES = 1 << 20
# A log up to this size is read once and held, so every pass over it reads the same bytes; a
# larger one is read again on each pass, its bytes checked against the first pass's digest.
HOLD_WHOLE_BYTES = 4 << 20
# A line longer than this is no results-log row: refused rather than held whole in memory.
MAX_LINE_BYTES = 16 << 20
MAX_COMMENT_LINES = 1000  # comment lines kept from above the header (for the direction)


class LogChangedError(NrrInputError):
    """The log's bytes changed between two passes of one read (rewritten in place)."""


class _Source:
    """A log's bytes as lines, read as many times as a streamed read needs, always the same lines:
    the first pass fixes how many bytes are read (up to the last line end, when an unterminated
    last line is held back) and their digest; a later pass that finds other bytes raises
    LogChangedError. Anything but a regular file is refused at once (reading a FIFO with no
    writer, or a device, may never end)."""

    def __init__(self, path: str | os.PathLike[str], hold_unterminated: bool):
        self.shown = str(path)
        try:
            # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
            descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as error:
            raise NrrInputError(_open_fault(error, path), path=self.shown) from None
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            os.close(descriptor)
            if stat.S_ISDIR(status.st_mode):
                raise NrrInputError("is a directory, not a results log", path=self.shown)
            kind = _NOT_REGULAR.get(stat.S_IFMT(status.st_mode), "a special file")
            raise NrrInputError(f"not a regular file ({kind}): refused", path=self.shown)
        self._handle = os.fdopen(descriptor, "rb")
        self.hold = hold_unterminated
        self.whole: bytes | None = None
        if status.st_size <= HOLD_WHOLE_BYTES:
            self.whole = self._read(-1)
        elif self._read(2) in (b"\xff\xfe", b"\xfe\xff"):
            self._handle.seek(0)
            self.whole = self._read(-1)  # UTF-16: decoded whole, as its line ends are two bytes
        if self.whole is not None:
            self._handle.close()
            if self.whole.startswith((b"\xff\xfe", b"\xfe\xff")):
                # Undecodable UTF-16 is left as is: its lines then fail UTF-8 and are reported.
                with contextlib.suppress(UnicodeDecodeError):
                    self.whole = self.whole.decode("utf-16").encode("utf-8")
                self.hold = False  # read whole (its line ends were two bytes)
        self.limit: int | None = None  # bytes of the lines read, set by the first pass
        self.digest: bytes | None = None
        self.held = False  # a non-blank unterminated last line was held back
        self.line_count = 0
        self.has_text = False  # any byte but whitespace in what is read

    def _read(self, size: int) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as error:
            raise NrrInputError(
                f"cannot read: {error.strerror or error}", path=self.shown
            ) from None

    def close(self) -> None:
        if self.whole is None:
            self._handle.close()

    def _blocks(self) -> Iterator[bytes]:
        if self.whole is not None:
            yield self.whole if self.limit is None else self.whole[: self.limit]
            return
        self._handle.seek(0)
        left = self.limit
        while left is None or left > 0:
            block = self._read(READ_BLOCK_BYTES if left is None else min(READ_BLOCK_BYTES, left))
            if not block:
                break
            if left is not None:
                left -= len(block)
            yield block

    def lines(self) -> Iterator[PhysicalLine]:
        """The log's lines, split on LF, CRLF or lone CR (mixed in any way), each decoded on its
        own (decode_line). A pass stopped early leaves the source as it was."""
        first_pass = self.limit is None
        digest = hashlib.blake2b(digest_size=16)
        carry, number, emitted, has_text, started = b"", 0, 0, False, False
        blocks = self._blocks()
        while True:
            block = next(blocks, None)
            data = carry + block if block is not None else carry
            if not started and data:
                started = True
                if data.startswith(b"\xef\xbb\xbf"):
                    digest.update(data[:3])
                    emitted += 3
                    has_text = True
                    data = data[3:]
            if block is not None:
                # Cut after the last line end, never inside a run of CRs that a LF may follow.
                end = len(data.rstrip(b"\r"))
                cut = max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1
                if cut == 0:
                    if len(data) > MAX_LINE_BYTES:
                        raise NrrInputError(
                            f"a line of over {MAX_LINE_BYTES >> 20} MB: not a results log",
                            path=self.shown,
                            line=number + 1,
                        )
                    carry = data
                    continue
                carry, data = data[cut:], data[:cut]
            else:
                carry = b""
                if first_pass and self.hold and ends_unterminated(data):
                    cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
                    self.held = bool(data[cut:].strip())
                    data = data[:cut]
            digest.update(data)
            emitted += len(data)
            has_text = has_text or bool(data.strip())
            chunks = _LINE_END.split(data)
            if chunks and chunks[-1] == b"":
                chunks.pop()
            for chunk in chunks:
                number += 1
                text, fallback = decode_line(chunk)
                yield PhysicalLine(number, text, chunk, fallback)
            if block is None:
                break
        if first_pass:
            self.limit, self.digest = emitted, digest.digest()
            self.line_count, self.has_text = number, has_text
        elif digest.digest() != self.digest:
            raise LogChangedError("the log changed while it was read", path=self.shown)


def _open_fault(error: OSError, path: str | os.PathLike[str]) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if error.errno == errno.ENOENT:
        return "symlink to a missing file" if os.path.islink(path) else "no such file"
    if error.errno == errno.EISDIR:
        return "is a directory, not a results log"
    return f"cannot read: {error.strerror or error}"


def _unique_names(cells: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for position, cell in enumerate(cells, start=1):
        name = cell.strip() or f"column_{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


def _find_header(content: list[PhysicalLine], path: str) -> int | None:
    """Index in `content` of the header: the first line, unless it reads as data (numbers, no
    column names) and a later early line reads as column names (data rows written above it).
    None when no early line reads as column names and the first one does not either."""
    first = content[0]
    if first.text is None:
        if not any(line.text is not None for line in content[1:HEADER_SEARCH_LINES]):
            raise NrrInputError(
                "undecodable bytes in the header (NUL bytes: binary, not text)",
                path=path,
                line=first.number,
            )
    else:
        cells = split_cells(first.text, sniff_delimiter(first.text))
        if len(cells) >= 2 and header_score(cells) >= 1 and not any(map(is_number, cells)):
            return 0
    for index, line in enumerate(content[:HEADER_SEARCH_LINES]):
        if line.text is None:
            continue
        cells = split_cells(line.text, sniff_delimiter(line.text))
        if len(cells) >= 2 and header_score(cells) >= 2:
            return index
    if first.text is None:
        raise NrrInputError(
            "undecodable bytes in the header (NUL bytes: binary, not text)",
            path=path,
            line=first.number,
        )
    return None


def _headerless_names(content: list[PhysicalLine]) -> list[str] | None:
    """Column names by content when the log has no header line: its first line is a row of the
    same width as most early lines, with a keep, discard or crash word where their statuses
    are (names_by_content). None when the first line may be a header."""
    first = content[0].text
    if first is None:
        return None
    delimiter = sniff_delimiter(first)
    width = len(split_cells(first, delimiter))
    rows = [
        cells
        for line in content
        if line.text is not None and len(cells := split_cells(line.text, delimiter)) == width
    ]
    if width < 2 or 2 * len(rows) < len(content):
        return None
    names = names_by_content(rows)
    if names is None or not status_share([rows[0][names.index("status")]]):
        return None
    return names


def _metric_value(cell: str) -> tuple[float | None, bool]:
    """(value, malformed?): '' / '-' / 'N/A' / 'OOM' are missing values, 'abc' is malformed."""
    text = cell.strip()
    if is_missing(text):
        return None, False
    value = parse_number(text)
    if value is None:
        return None, True
    if not math.isfinite(value):
        return None, False
    return value, False


def stored_metric(cell: str, status: str) -> tuple[float | None, bool]:
    """A row's metric as ingest stores it: _metric_value, and a crashed run's 0.0 is no value
    (crashed runs log 0.0 for 'no value')."""
    value, malformed = _metric_value(cell)
    return (None if status == "crash" and value == 0.0 else value), malformed


class _LineNumbers:
    """How many lines, and the first few of their numbers (said in a repair note)."""

    def __init__(self, keep: int = 8):
        self.count, self.first, self._keep = 0, [], keep

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first) < self._keep:
            self.first.append(number)

    def __bool__(self) -> bool:
        return self.count > 0

    def shown(self) -> str:
        return _lines(self.first, total=self.count)


class _EvenSample:
    """An even sample of a stream of unknown length in bounded memory: every item while there
    are at most 2 x `size` (then thinned to every (n // size)-th, as a list would be), beyond
    that every 2^k-th item, between `size` and 2 x `size` of them."""

    def __init__(self, size: int):
        self.size, self.step, self.seen = size, 1, 0
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        if self.seen % self.step == 0:
            self.items.append(item)
            if len(self.items) > 2 * self.size:
                self.items = self.items[::2]
                self.step *= 2
        self.seen += 1

    def sample(self) -> list[Any]:
        if self.step == 1:
            return self.items[:: max(1, len(self.items) // self.size)]
        return self.items


class _Lookahead:
    """The content lines of a pass, with a look at the next few (a quoted cell spanning lines)."""

    def __init__(self, lines: Iterator[PhysicalLine]):
        self._lines = lines
        self._ahead: deque[PhysicalLine] = deque()

    def peek(self, offset: int) -> PhysicalLine | None:
        while len(self._ahead) <= offset:
            line = next(self._lines, None)
            if line is None:
                return None
            self._ahead.append(line)
        return self._ahead[offset]

    def take(self) -> PhysicalLine | None:
        return self._ahead.popleft() if self._ahead else next(self._lines, None)


MAX_LINES_PER_QUOTED_CELL = 50


def _join_quoted_lines(ahead: _Lookahead, text: str, delimiter: str, width: int) -> tuple[str, int]:
    """(text, following lines used) for a row whose quoted cell spans lines; (text, 0) when it
    does not.

    Lines are joined only when that turns a short row into exactly one full row whose quotes
    close, so a description that merely starts with a quote never swallows the next rows.
    """
    if not has_open_quote(text, delimiter):
        return text, 0
    joined = text
    for used in range(1, MAX_LINES_PER_QUOTED_CELL):
        line = ahead.peek(used - 1)
        if line is None or line.text is None:
            break
        following = line.text
        if len(split_cells(following, delimiter, width)) >= width:
            break  # a whole row of its own: the quote was never meant to span lines
        joined += " " + following  # the line break becomes a space
        if not has_open_quote(joined, delimiter):
            return (
                (joined, used) if len(split_cells(joined, delimiter, width)) == width else (text, 0)
            )
    return text, 0


def _candidates(
    content: Iterable[PhysicalLine],
    header_index: int,
    header: list[str],
    delimiter: str,
    written_header: list[str] | None = None,
) -> Iterator[_Candidate]:
    """Split every content line but the header into cells, numbering rows as EVALUATION.md does.
    `written_header` (the header as written, when `header` was widened) spots repeated headers."""
    width = len(header)
    header_key = [normalise_name(h) for h in written_header or header]
    first_name = (written_header or header)[0].strip().lower()
    ahead = _Lookahead(iter(content))
    ordinal = -1
    while (line := ahead.take()) is not None:
        ordinal += 1
        row_number = ordinal
        if row_number == header_index:
            continue
        if line.text is None:
            yield _Candidate(line, row_number, None)
            continue
        text = line.text
        if '"' in text:
            joined, used = _join_quoted_lines(ahead, text, delimiter, width)
            if used:
                text, ordinal = joined, ordinal + used
                for _ in range(used):
                    ahead.take()
        if is_separator_row(text):
            continue
        cells = split_cells(text, delimiter, width)
        if len(cells) != width and delimiter == "\t" and LITERAL_TAB in text:
            # Some fields written with the two characters backslash-t instead of a tab.
            repaired = split_cells(text.replace(LITERAL_TAB, "\t"), delimiter, width)
            if abs(filled_length(repaired) - width) < abs(filled_length(cells) - width):
                cells = repaired
        if len(cells) > width and filled_length(cells) <= width:
            cells = cells[:width]  # trailing delimiters
        if (
            cells
            and cells[0].strip().lower() == first_name
            and [normalise_name(c) for c in cells] == header_key
        ):
            continue  # the header repeated (logs appended to one another)
        pieces = None
        if LITERAL_NEWLINE in text and len(cells) > width:
            parts = [split_cells(p, delimiter, width) for p in text.split(LITERAL_NEWLINE)]
            if all(len(p) >= width - 1 for p in parts):
                pieces = parts
        yield _Candidate(line, row_number, cells, pieces)


WIDE_ROW_SHARE = 0.5  # rows wider than the header, as a share of the rows, before it is widened


def _widen_header(
    header: list[str], names: list[str], widths: Counter[int], rows: int, sample: list[list[str]]
) -> tuple[list[str], str] | None:
    """A header widened to the rows' width, when most rows are wider than it (a loop that added
    a field without touching the header) and their status sits further right.

    `widths` counts the rows (not run together) by filled width, `rows` is their number and
    `sample` an even sample of them (all of them up to 2 x MAX_PROFILE_ROWS). The status column
    is found by content in the wide rows; the header's names keep their order, the fields
    without a name are placed just before the status (any left over at the end), each named
    'unnamed_<position>'.
    """
    if not widths:
        return None
    wide, count = widths.most_common(1)[0]
    if wide <= len(header) or wide >= 2 * len(header) - 1:
        return None  # as wide as two rows: rows run together, not a wider dialect
    if count < 3 or count <= WIDE_ROW_SHARE * rows:
        return None
    wide_rows = [cells[:wide] for cells in sample if filled_length(cells) == wide]
    extra_fields = wide - len(header)
    named_status = find_status_column(names, [])
    if named_status is None:
        # No column is named as the status: it is the column of status words in the wide rows,
        # the unnamed fields just before it.
        found = find_status_column([""] * wide, wide_rows)
        if found is None or found < extra_fields:
            return None
        named_status = found - extra_fields
    # The status moved right by one to `extra_fields` places: the column of status words there.
    status_at, best = None, 0.0
    for at in range(named_status + 1, named_status + extra_fields + 1):
        share = status_share([row[at] for row in wide_rows])
        if share > best:
            status_at, best = at, share
    if status_at is None or best < 0.6:
        return None  # the status is where the header says: extra cells belong to the text
    shift = status_at - named_status
    # Names before the status keep their place; the status and the names after it move right.
    placed = {index + (shift if index >= named_status else 0): n for index, n in enumerate(header)}
    widened = [placed.get(p, f"unnamed_{p + 1}") for p in range(wide)]
    extra = [p + 1 for p in range(wide) if p not in placed]
    note = (
        f"{count} of {rows} rows have {wide} fields but the header names {len(header)}: "
        f"status found in field {status_at + 1} by its content; field(s) "
        f"{', '.join(map(str, extra))} added as unnamed columns"
    )
    return widened, note


@dataclass(frozen=True)
class _Roles:
    """Column positions of the four roles in the header, and how the status cells read."""

    status: int
    description: int
    metric: int | None
    id: int | None
    reading: StatusReading

    @classmethod
    def of(
        cls, header: list[str], columns: dict[str, str | None], reading: StatusReading
    ) -> _Roles:
        def position(role: str) -> int | None:
            name = columns[role]
            return header.index(name) if name is not None else None

        status, description = position("status"), position("description")
        assert status is not None and description is not None  # _choose_columns raises otherwise
        return cls(status, description, position("metric"), position("id"), reading)


class _RowReader:
    """Fits each candidate line onto the columns and reads it, or says why it cannot be read;
    the same candidates always read the same way (a pass over the log is repeatable)."""

    def __init__(
        self,
        header: list[str],
        roles: _Roles,
        delimiter: str,
        regular: list[list[str]],
        header_line: int,
        max_field_bytes: int,
    ):
        self.header, self.roles, self.header_line = header, roles, header_line
        self.max_field_bytes = max_field_bytes
        self.aligner = Aligner(
            len(header),
            roles.status,
            roles.description,
            roles.metric,
            delimiter,
            regular,
            roles.reading.recognises,
        )
        self.splitter = RunTogetherSplitter(self.aligner, regular)
        self.without_metric = _LineNumbers()

    def read(self, candidates: Iterable[_Candidate]) -> Iterator[LogRow | BadRow]:
        header, roles = self.header, self.roles
        for candidate in candidates:
            line, row_number = candidate.line, candidate.row_number
            if candidate.cells is None:
                yield BadRow(
                    line.number, row_number, "undecodable bytes (NUL bytes: binary, not text)"
                )
                continue
            oversized = _oversized(candidate.cells, header, self.max_field_bytes)
            if oversized:
                yield BadRow(line.number, row_number, oversized)
                continue
            if len(candidate.cells) > 2 * len(header) + MAX_EXTRA_FIELDS:
                reason = (
                    f"ragged row: {len(candidate.cells)} fields for {len(header)} columns"
                    f" (over {2 * len(header) + MAX_EXTRA_FIELDS} cannot be one or two rows)"
                )
                yield BadRow(line.number, row_number, reason)
                continue
            if candidate.pieces is not None:
                groups = candidate.pieces
            elif len(candidate.cells) > len(header) and len(candidate.cells) >= 2 * len(header) - 3:
                groups = self.splitter.split(candidate.cells) or [candidate.cells]
            else:
                groups = [candidate.cells]
            for cells in groups:
                aligned = self.aligner.align(cells)
                if aligned is None:
                    reason = (
                        "text above the header that is not a row"
                        if line.number < self.header_line
                        else f"ragged row: {len(cells)} fields for {len(header)} columns and no "
                        f"readable status in column '{header[roles.status]}'"
                    )
                    yield BadRow(line.number, row_number, reason)
                    continue
                self.splitter.remember(aligned)
                yield _make_row(
                    aligned, header, roles, line.number, row_number, self.without_metric
                )

    def notes(self) -> list[str]:
        """What the rows read so far needed (said as repairs)."""
        header, roles, notes = self.header, self.roles, []
        if self.aligner.dropped_fields:
            notes.append(
                f"{self.aligner.dropped_fields} row(s) wider than the header read by dropping the "
                f"fields it does not name, before the status column '{header[roles.status]}'"
            )
        if self.without_metric:
            notes.append(
                f"{self.without_metric.count} keep/discard row(s) stored without a metric: their"
                f" '{header[roles.metric or 0]}' cell is not a number (line(s) "
                f"{self.without_metric.shown()})"
            )
        return notes


MAX_STATUS_WORDS = 10_000  # distinct statuses counted for the notes (a hostile log has millions)


class _StatusTally:
    """The statuses no rule knows, and whether any row is an outcome, counted row by row."""

    def __init__(self, reading: StatusReading):
        self.reading = reading
        self.unknown: Counter[str] = Counter()
        self.unknown_rows = 0
        self.raw: Counter[str] | None = Counter()  # all raw statuses, until an outcome is seen
        self.rows = 0

    def add(self, row: LogRow) -> None:
        self.rows += 1
        if self.reading.decision is None and self.reading.group(row.raw_status) is None:
            self.unknown_rows += 1
            if row.raw_status in self.unknown or len(self.unknown) < MAX_STATUS_WORDS:
                self.unknown[row.raw_status] += 1
        if self.raw is not None:
            if row.status in ("keep", "discard", "crash"):
                self.raw = None
            elif row.raw_status in self.raw or len(self.raw) < MAX_STATUS_WORDS:
                self.raw[row.raw_status] += 1

    def notes(self, column: str) -> list[str]:
        """Say which statuses no rule knows (stored as 'other'), and when no row is an outcome."""

        def listed(counts: Counter[str]) -> str:
            shown = ", ".join(f"{word[:40]!r} ({n})" for word, n in counts.most_common(6))
            return shown + (f" and {len(counts) - 6} more" if len(counts) > 6 else "")

        notes = []
        if self.unknown:
            notes.append(
                f"{self.unknown_rows} row(s) stored as other: statuses in '{column}' that are "
                f"not a keep, discard or crash word: {listed(self.unknown)}"
            )
        if self.rows and self.raw is not None:
            notes.append(
                f"no row reads as keep, discard or crash; is '{column}' the status column? It holds "
                + listed(self.raw)
            )
        return notes


def _lines(numbers: list[int], limit: int = 8, total: int | None = None) -> str:
    total = len(numbers) if total is None else total
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f", ... ({total} in all)" if total > limit else "")


READ_STATUSES = ("keep", "discard", "crash", "other")
PROGRESS_EVERY_ROWS = 10_000


class StreamedLog:
    """A log read in bounded memory: its columns, metric, direction, session key, bad rows and
    a few bytes per row (`facts`, for the outcomes), its rows read again from the file on each
    call of `rows()` (the same rows each time: LogChangedError if the file changed under it).

    Use as a context manager (or call `close`): it keeps the file open between passes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metric: str | None = None,
        direction: str | None = None,
        max_field_bytes: int = 65536,
        hold_unterminated: bool = False,
        progress: Callable[[int], None] | None = None,
    ):
        self.path = str(path)
        self._source = _Source(path, hold_unterminated)
        try:
            self._profile(metric, max_field_bytes)
            self._first_read(direction, progress)
        except BaseException:
            self._source.close()
            raise

    def __enter__(self) -> StreamedLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def _content(self, comments: list[PhysicalLine] | None = None) -> Iterator[PhysicalLine]:
        """One pass's content lines (not blank, not comments); the first pass also notes the
        lines that fell back to Windows-1252 and the comment lines."""
        for line in self._source.lines():
            if comments is not None and line.fallback:
                self._fallen_back.add(line.number)
            if line.is_blank:
                continue
            if line.is_comment:
                if comments is not None and len(comments) < MAX_COMMENT_LINES:
                    comments.append(line)
                continue
            yield line

    def _profile(self, metric: str | None, max_field_bytes: int) -> None:
        """First pass: the header, the columns and their roles, from counts and even samples."""
        shown = self.path
        self._fallen_back = _LineNumbers()
        comment_lines: list[PhysicalLine] = []
        content = self._content(comment_lines)
        first = list(itertools.islice(content, HEADER_SEARCH_LINES))
        if not first:
            for _ in content:
                pass
            if not self._source.has_text:
                held = self._source.held
                fault = "only an unfinished first line (no newline yet)" if held else "empty file"
                raise NrrInputError(fault, path=shown)
            raise NrrInputError("no header and no data rows (only comments)", path=shown)
        header_index = _find_header(first, shown)
        named = _headerless_names(first) if header_index is None else None
        header_line = first[header_index or 0]  # the first line stands in for a missing header
        if header_line.text is None:  # _find_header returns a decodable line: types kept honest
            raise NrrInputError(
                "undecodable bytes in the header", path=shown, line=header_line.number
            )
        delimiter = sniff_delimiter(header_line.text)
        header_cells = named or split_cells(header_line.text, delimiter)
        header = _unique_names(header_cells[: filled_length(header_cells)])
        headerless = None
        if named is not None:
            header_index = -1  # every line is a row: the first one is row 0
            headerless = (
                f"no header line: line {header_line.number} is a row; columns named by their "
                f"content: {', '.join(header)}"
            )
        else:
            header_index = header_index or 0
        if not header or not any(cell.strip() for cell in header_cells):
            raise NrrInputError("the header names no columns", path=shown, line=header_line.number)
        names = [normalise_name(h) for h in header]
        separators = _LineNumbers()

        def counted(lines: Iterable[PhysicalLine]) -> Iterator[PhysicalLine]:
            for line in lines:
                if (
                    line is not header_line
                    and line.text is not None
                    and is_separator_row(line.text)
                ):
                    separators.add(line.number)
                yield line

        widths: Counter[int] = Counter()
        rows, candidates = 0, 0
        sample, regular = _EvenSample(MAX_PROFILE_ROWS), _EvenSample(MAX_PROFILE_ROWS)
        lines = counted(itertools.chain(first, content))
        for candidate in _candidates(lines, header_index, header, delimiter):
            candidates += 1
            if candidate.cells is None:
                continue
            if candidate.pieces is None:
                widths[filled_length(candidate.cells)] += 1
                rows += 1
                sample.add(candidate.cells)
            if len(candidate.cells) == len(header):
                regular.add(candidate.cells)
        for _ in lines:  # lines after the last candidate (a quote left open) still count
            pass
        self.repairs: list[str] = [headerless] if headerless else []
        if self._fallen_back:
            self.repairs.append(
                f"{self._fallen_back.count} line(s) not valid UTF-8 (line(s) "
                f"{self._fallen_back.shown()}): their stray bytes read as {FALLBACK_ENCODING} "
                "(Windows-1252 / Latin-1)"
            )
        if not candidates:
            raise NrrInputError("header only: no data rows", path=shown, line=header_line.number)
        if separators:
            self.repairs.append(
                f"{separators.count} separator line(s) skipped (line(s) {separators.shown()}): "
                "rules between rows, not experiments"
            )
        written_header = None
        widened = _widen_header(header, names, widths, rows, sample.items)
        sample.items = []
        if widened is not None:
            wide_header, note = widened
            self.repairs.append(note)
            written_header, header = header, wide_header
            names = [normalise_name(h) for h in wide_header]
            regular = _EvenSample(MAX_PROFILE_ROWS)
            for candidate in _candidates(
                self._content(), header_index, header, delimiter, written_header
            ):
                if candidate.cells is not None and len(candidate.cells) == len(header):
                    regular.add(candidate.cells)
        profile = regular.sample()
        columns, reading = _choose_columns(
            header, names, profile, metric, shown, header_line.number
        )
        self.repairs.extend(reading.notes)
        self.header, self.columns, self.metric_name = header, columns, columns["metric"] or ""
        self._reading, self._header_line = reading, header_line
        self._comments = [
            line.text or "" for line in comment_lines if line.number < header_line.number
        ]
        self._layout = (header_index, delimiter, written_header)
        self._roles = _Roles.of(header, columns, reading)
        self._profile_rows, self._max_field_bytes = profile, max_field_bytes

    def _passes(self) -> tuple[_RowReader, Iterator[LogRow | BadRow]]:
        header_index, delimiter, written_header = self._layout
        reader = _RowReader(
            self.header,
            self._roles,
            delimiter,
            self._profile_rows,
            self._header_line.number,
            self._max_field_bytes,
        )
        candidates = _candidates(
            self._content(), header_index, self.header, delimiter, written_header
        )
        return reader, reader.read(candidates)

    def _first_read(self, direction: str | None, progress: Callable[[int], None] | None) -> None:
        """Second pass: every row read once, kept as a few bytes (outcome facts, statuses)."""
        from nrr_stats.ingest.outcomes import RowFacts

        shown = self.path
        reader, rows = self._passes()
        tally = _StatusTally(self._reading)
        facts = RowFacts()
        statuses = bytearray()
        bad: list[BadRow] = []
        first_cells: list[str] = []
        for row in rows:
            if isinstance(row, BadRow):
                bad.append(row)
                continue
            if not first_cells:
                # The first readable row as read (padded, unquoted, stripped), so an exported
                # copy keeps the key.
                first_cells = list(row.fields.values())
            tally.add(row)
            facts.add(
                row.metric, row.raw_status if row.status == "other" else row.status, row.description
            )
            statuses.append(READ_STATUSES.index(row.status))
            if progress is not None and facts.size % PROGRESS_EVERY_ROWS == 0:
                progress(facts.size)
        self.repairs.extend(reader.notes())
        if not facts.size and not bad:
            raise NrrInputError(
                "header only: no data rows", path=shown, line=self._header_line.number
            )
        self.repairs.extend(tally.notes(self.columns["status"] or ""))
        if direction is not None:
            chosen = normalise_direction(direction)
            if chosen is None:
                raise NrrInputError(
                    f"direction must be 'lower' or 'higher', not {direction!r}", path=shown
                )
            self.metric_direction, self.direction_source = chosen, "flag"
        else:
            self.metric_direction, self.direction_source = infer_metric_direction(
                self.metric_name,
                facts.metrics,
                _StatusNames(statuses),
                self._comments,
            )
        self.facts = facts
        self.row_count = facts.size
        self.bad_rows = sorted(bad, key=lambda b: b.line_number)
        self.session_key = _session_key(self.header, first_cells)
        self.pending_line = self._source.line_count + 1 if self._source.held else None

    def rows(self) -> Iterator[LogRow]:
        """The log's readable rows in order, read again from the file."""
        _, rows = self._passes()
        for row in rows:
            if isinstance(row, LogRow):
                yield row

    def whole(self) -> ResultsLog:
        """The log with all its rows in memory (for logs that fit: backtests, tests)."""
        return ResultsLog(
            path=self.path,
            header=self.header,
            columns=self.columns,
            metric_name=self.metric_name,
            metric_direction=self.metric_direction,
            direction_source=self.direction_source,
            rows=list(self.rows()),
            bad_rows=self.bad_rows,
            session_key=self.session_key,
            repairs=self.repairs,
            pending_line=self.pending_line,
        )


class _StatusNames(Sequence[str]):
    """Row statuses held as one byte each, read as their names."""

    def __init__(self, codes: bytearray):
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [READ_STATUSES[c] for c in self._codes[index]]
        return READ_STATUSES[self._codes[index]]

    def __iter__(self) -> Iterator[str]:
        return (READ_STATUSES[c] for c in self._codes)


def read_results_log(
    path: str | os.PathLike[str],
    *,
    metric: str | None = None,
    direction: str | None = None,
    max_field_bytes: int = 65536,
    hold_unterminated: bool = False,
) -> ResultsLog:
    """Read a results log; file-level faults raise NrrInputError, row-level faults become BadRows.

    With `hold_unterminated` a last line without its line end is not read (a loop may be writing
    it): its number is `pending_line`, and it is read once its newline is written.

    Row numbers follow EVALUATION.md: the index among non-blank, non-comment lines after the first
    such line. Data rows written before the real header (a log whose header is on line 3) are read
    with that header and numbered the same way (the very first line gets row 0).
    A log too long to hold is read with `StreamedLog`, its rows a pass at a time.
    """
    with StreamedLog(
        path,
        metric=metric,
        direction=direction,
        max_field_bytes=max_field_bytes,
        hold_unterminated=hold_unterminated,
    ) as log:
        return log.whole()


def _choose_columns(
    header: list[str],
    names: list[str],
    regular: list[list[str]],
    metric: str | None,
    path: str,
    header_line: int,
) -> tuple[dict[str, str | None], StatusReading]:
    shown_header = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")

    def missing(role: str) -> NrrInputError:
        return NrrInputError(f"no {role} column among: {shown_header}", path=path, line=header_line)

    found = find_status_column(names, regular)
    if found is not None:
        reading = find_statuses(names, regular, found)
        taken = {reading.column} | ({reading.decision} if reading.decision is not None else set())
        description_i = find_description_column(names, regular, taken)
    else:
        leading = find_leading_status_column(names, regular)
        if leading is None:
            raise missing("status")
        note = (
            f"no status column: each row's status read from the word its '{header[leading]}' "
            "opens with ('keep — ...', 'discard: ...'), the rest of the text its description"
        )
        reading = StatusReading(leading, notes=(note,), leading=True)
        taken, description_i = {leading}, leading
    status_i = reading.column
    if description_i is None:
        description_i = find_terse_description_column(names, regular, taken)
        if description_i is None:
            raise missing("description")
        note = (
            f"no free-text column: each change read from '{header[description_i]}' "
            "(its values name the changes tersely)"
        )
        reading = replace(reading, notes=(*reading.notes, note))
    taken.add(description_i)
    id_i = find_id_column(names, taken)
    if id_i is not None:
        taken.add(id_i)
    if metric is not None:
        wanted = normalise_name(metric)
        if wanted not in names:
            raise NrrInputError(
                f"no metric column named {metric!r} among: {shown_header}",
                path=path,
                line=header_line,
            )
        metric_i: int | None = names.index(wanted)
    else:
        outcome_rows = [r for r in regular if reading.read(r)[0] in ("keep", "discard")]
        metric_i = find_metric_column(names, regular, taken, outcome_rows)
    columns = {
        "id": header[id_i] if id_i is not None else None,
        "metric": header[metric_i] if metric_i is not None else None,
        "status": header[status_i],
        "description": header[description_i],
    }
    if reading.decision is not None:
        columns["decision"] = header[reading.decision]
    return columns, reading


def _oversized(cells: list[str], header: list[str], limit: int) -> str | None:
    for position, cell in enumerate(cells):
        if 4 * len(cell) <= limit:
            continue  # a UTF-8 character takes at most 4 bytes
        size = len(cell.encode("utf-8"))
        if size > limit:
            name = header[position] if position < len(header) else f"field {position + 1}"
            return f"field '{name}' is {size} bytes, over the {limit}-byte limit"
    return None


def _make_row(
    cells: list[str],
    header: list[str],
    roles: _Roles,
    line_number: int,
    row_number: int,
    without_metric: _LineNumbers,
) -> LogRow | BadRow:
    """One aligned row read into a LogRow, or a BadRow for an empty status. A keep or discard
    row whose metric cell is not a number is stored without a metric (its line is noted in
    `without_metric`)."""
    status, raw_status = roles.reading.read(cells)
    if not raw_status:
        where = f"column '{header[roles.status]}'"
        if roles.reading.leading:
            return BadRow(line_number, row_number, f"no status word opens {where}")
        return BadRow(line_number, row_number, f"empty status in {where}")
    value: float | None = None
    if roles.metric is not None:
        value, malformed = stored_metric(cells[roles.metric], status)
        if malformed and status in ("keep", "discard"):
            without_metric.add(line_number)  # stored without a metric, said in the repairs
    return LogRow(
        row_number=row_number,
        line_number=line_number,
        experiment_id=cells[roles.id].strip() if roles.id is not None else "",
        metric=value,
        status=status,
        raw_status=raw_status,
        description=roles.reading.description(cells, roles.description),
        fields=dict(zip(header, (c.strip() for c in cells), strict=True)),
    )


def _session_key(header: list[str], first_row: list[str]) -> str:
    """Stable id of a log: its header and first data row, so appending rows (or moving, renaming
    or exporting the file) keeps it. Two forks whose logs share header and first row share it."""
    digest = hashlib.sha256()
    for part in ["\t".join(header), "\t".join(c.strip() for c in first_row)]:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]
