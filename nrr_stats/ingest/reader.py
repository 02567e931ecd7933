"""Read one autoresearch results log of any dialect into good rows, bad rows and its column roles."""

from __future__ import annotations

import errno
import hashlib
import math
import os
import stat
from collections import Counter
from dataclasses import dataclass, field

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest.columns import (
    find_description_column,
    find_id_column,
    find_metric_column,
    find_status_column,
    find_statuses,
    header_score,
    normalise_name,
    status_share,
)
from nrr_stats.ingest.direction import infer_metric_direction, normalise_direction
from nrr_stats.ingest.repair import Aligner, RunTogetherSplitter, filled_length
from nrr_stats.ingest.status import StatusReading
from nrr_stats.ingest.text import (
    FALLBACK_ENCODING,
    LITERAL_NEWLINE,
    LITERAL_TAB,
    PhysicalLine,
    ends_unterminated,
    has_open_quote,
    is_missing,
    is_number,
    is_separator_row,
    parse_number,
    sniff_delimiter,
    split_cells,
    split_lines,
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


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The file's bytes; anything but a regular file is refused at once (reading a FIFO with no
    writer, or a device, may never end)."""
    shown = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise NrrInputError(_open_fault(error, path), path=shown) from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise NrrInputError("is a directory, not a results log", path=shown)
        kind = _NOT_REGULAR.get(stat.S_IFMT(mode), "a special file")
        raise NrrInputError(f"not a regular file ({kind}): refused", path=shown)
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return handle.read()
        except OSError as error:
            raise NrrInputError(f"cannot read: {error.strerror or error}", path=shown) from None


def _open_fault(error: OSError, path: str | os.PathLike[str]) -> str:
    if error.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if error.errno == errno.ENOENT:
        return "symlink to a missing file" if os.path.islink(path) else "no such file"
    if error.errno == errno.EISDIR:
        return "is a directory, not a results log"
    return f"cannot read: {error.strerror or error}"


def _hold_unterminated(data: bytes) -> tuple[bytes, bool]:
    """(the bytes up to the last line end, whether a non-blank unterminated last line was cut):
    a last line without its newline may be a row still being written, so it is not yet a row."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or not ends_unterminated(data):
        return data, False  # UTF-16 line ends are two bytes; such logs are read whole
    cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
    return data[:cut], bool(data[cut:].strip())


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


def _find_header(content: list[PhysicalLine], path: str) -> int:
    """Index in `content` of the header: the first line, unless it reads as data (numbers, no
    column names) and a later early line reads as column names (data rows written above it)."""
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
    return 0


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


MAX_LINES_PER_QUOTED_CELL = 50


def _join_quoted_lines(
    content: list[PhysicalLine], start: int, delimiter: str, width: int
) -> tuple[str, int]:
    """(text, extra lines used) for a row whose quoted cell spans lines; (text, 0) when it does not.

    Lines are joined only when that turns a short row into exactly one full row whose quotes
    close, so a description that merely starts with a quote never swallows the next rows.
    """
    text = content[start].text or ""
    if not has_open_quote(text, delimiter):
        return text, 0
    joined = text
    for used in range(1, MAX_LINES_PER_QUOTED_CELL):
        if start + used >= len(content) or content[start + used].text is None:
            break
        following = content[start + used].text or ""
        if len(split_cells(following, delimiter, width)) >= width:
            break  # a whole row of its own: the quote was never meant to span lines
        joined += " " + following  # the line break becomes a space
        if not has_open_quote(joined, delimiter):
            return (
                (joined, used) if len(split_cells(joined, delimiter, width)) == width else (text, 0)
            )
    return text, 0


def _candidates(
    content: list[PhysicalLine],
    header_index: int,
    header: list[str],
    delimiter: str,
    written_header: list[str] | None = None,
) -> list[_Candidate]:
    """Split every content line but the header into cells, numbering rows as EVALUATION.md does.
    `written_header` (the header as written, when `header` was widened) spots repeated headers."""
    width = len(header)
    header_key = [normalise_name(h) for h in written_header or header]
    first_name = (written_header or header)[0].strip().lower()
    candidates: list[_Candidate] = []
    ordinal = 0
    while ordinal < len(content):
        line, row_number = content[ordinal], ordinal
        ordinal += 1
        if row_number == header_index:
            continue
        if line.text is None:
            candidates.append(_Candidate(line, row_number, None))
            continue
        text = line.text
        if '"' in text:
            joined, used = _join_quoted_lines(content, ordinal - 1, delimiter, width)
            if used:
                text, ordinal = joined, ordinal + used
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
        candidates.append(_Candidate(line, row_number, cells, pieces))
    return candidates


WIDE_ROW_SHARE = 0.5  # rows wider than the header, as a share of the rows, before it is widened


def _widen_header(
    header: list[str], names: list[str], candidates: list[_Candidate]
) -> tuple[list[str], str] | None:
    """A header widened to the rows' width, when most rows are wider than it (a loop that added
    a field without touching the header) and their status sits further right.

    The status column is found by content in the wide rows; the header's names keep their order,
    the fields without a name are placed just before the status (any left over at the end), each
    named 'unnamed_<position>'.
    """
    rows = [c.cells for c in candidates if c.cells is not None and c.pieces is None]
    widths = Counter(filled_length(cells) for cells in rows)
    if not widths:
        return None
    wide, count = widths.most_common(1)[0]
    if wide <= len(header) or wide >= 2 * len(header) - 1:
        return None  # as wide as two rows: rows run together, not a wider dialect
    if count < 3 or count <= WIDE_ROW_SHARE * len(rows):
        return None
    wide_rows = [cells[:wide] for cells in rows if filled_length(cells) == wide]
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
        f"{count} of {len(rows)} rows have {wide} fields but the header names {len(header)}: "
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


def _read_rows(
    candidates: list[_Candidate],
    header: list[str],
    roles: _Roles,
    delimiter: str,
    regular: list[list[str]],
    header_line: int,
    max_field_bytes: int,
    repairs: list[str],
) -> tuple[list[LogRow], list[BadRow]]:
    """Fit each candidate line onto the columns and read it, or say why it cannot be read."""
    aligner = Aligner(
        len(header),
        roles.status,
        roles.description,
        roles.metric,
        delimiter,
        regular,
        roles.reading.recognises,
    )
    splitter = RunTogetherSplitter(aligner, regular)
    rows: list[LogRow] = []
    bad: list[BadRow] = []
    without_metric: list[int] = []
    for candidate in candidates:
        line, row_number = candidate.line, candidate.row_number
        if candidate.cells is None:
            bad.append(
                BadRow(line.number, row_number, "undecodable bytes (NUL bytes: binary, not text)")
            )
            continue
        oversized = _oversized(candidate.cells, header, max_field_bytes)
        if oversized:
            bad.append(BadRow(line.number, row_number, oversized))
            continue
        if len(candidate.cells) > 2 * len(header) + MAX_EXTRA_FIELDS:
            reason = (
                f"ragged row: {len(candidate.cells)} fields for {len(header)} columns"
                f" (over {2 * len(header) + MAX_EXTRA_FIELDS} cannot be one or two rows)"
            )
            bad.append(BadRow(line.number, row_number, reason))
            continue
        if candidate.pieces is not None:
            groups = candidate.pieces
        elif len(candidate.cells) > len(header) and len(candidate.cells) >= 2 * len(header) - 3:
            groups = splitter.split(candidate.cells) or [candidate.cells]
        else:
            groups = [candidate.cells]
        for cells in groups:
            aligned = aligner.align(cells)
            if aligned is None:
                reason = (
                    "text above the header that is not a row"
                    if line.number < header_line
                    else f"ragged row: {len(cells)} fields for {len(header)} columns and no "
                    f"readable status in column '{header[roles.status]}'"
                )
                bad.append(BadRow(line.number, row_number, reason))
                continue
            splitter.remember(aligned)
            result = _make_row(aligned, header, roles, line.number, row_number, without_metric)
            (bad if isinstance(result, BadRow) else rows).append(result)
    if aligner.dropped_fields:
        repairs.append(
            f"{aligner.dropped_fields} row(s) wider than the header read by dropping the fields "
            f"it does not name, before the status column '{header[roles.status]}'"
        )
    if without_metric:
        repairs.append(
            f"{len(without_metric)} keep/discard row(s) stored without a metric: their "
            f"'{header[roles.metric or 0]}' cell is not a number (line(s) {_lines(without_metric)})"
        )
    return rows, bad


def _status_notes(rows: list[LogRow], reading: StatusReading, column: str) -> list[str]:
    """Say which statuses no rule knows (stored as 'other'), and when no row is an outcome."""

    def listed(counts: Counter[str]) -> str:
        shown = ", ".join(f"{word[:40]!r} ({n})" for word, n in counts.most_common(6))
        return shown + (f" and {len(counts) - 6} more" if len(counts) > 6 else "")

    notes = []
    if reading.decision is None:
        unknown = Counter(r.raw_status for r in rows if reading.group(r.raw_status) is None)
        if unknown:
            notes.append(
                f"{sum(unknown.values())} row(s) stored as other: statuses in '{column}' that are "
                f"not a keep, discard or crash word: {listed(unknown)}"
            )
    if rows and not any(r.status in ("keep", "discard", "crash") for r in rows):
        notes.append(
            f"no row reads as keep, discard or crash; is '{column}' the status column? It holds "
            + listed(Counter(r.raw_status for r in rows))
        )
    return notes


def _lines(numbers: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in numbers[:limit])
    return shown + (f", ... ({len(numbers)} in all)" if len(numbers) > limit else "")


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
    """
    shown = str(path)
    repairs: list[str] = []
    data = _read_bytes(path)
    held = False
    if hold_unterminated:
        data, held = _hold_unterminated(data)
    if not data.strip():
        fault = "only an unfinished first line (no newline yet)" if held else "empty file"
        raise NrrInputError(fault, path=shown)
    lines = split_lines(data)
    fallen_back = [line.number for line in lines if line.fallback]
    if fallen_back:
        repairs.append(
            f"{len(fallen_back)} line(s) not valid UTF-8 (line(s) {_lines(fallen_back)}): "
            f"their stray bytes read as {FALLBACK_ENCODING} (Windows-1252 / Latin-1)"
        )
    content = [line for line in lines if not line.is_blank and not line.is_comment]
    if not content:
        raise NrrInputError("no header and no data rows (only comments)", path=shown)
    header_index = _find_header(content, shown)
    header_line = content[header_index]
    if header_line.text is None:  # _find_header returns a decodable line; this keeps types honest
        raise NrrInputError("undecodable bytes in the header", path=shown, line=header_line.number)
    comments = [
        line.text or "" for line in lines if line.is_comment and line.number < header_line.number
    ]
    delimiter = sniff_delimiter(header_line.text)
    header_cells = split_cells(header_line.text, delimiter)
    header = _unique_names(header_cells[: filled_length(header_cells)])
    if not header or not any(cell.strip() for cell in header_cells):
        raise NrrInputError("the header names no columns", path=shown, line=header_line.number)
    names = [normalise_name(h) for h in header]

    candidates = _candidates(content, header_index, header, delimiter)
    if not candidates:
        raise NrrInputError("header only: no data rows", path=shown, line=header_line.number)
    separators = [
        line.number
        for line in content
        if line is not header_line and line.text is not None and is_separator_row(line.text)
    ]
    if separators:
        repairs.append(
            f"{len(separators)} separator line(s) skipped (line(s) {_lines(separators)}): "
            "rules between rows, not experiments"
        )
    widened = _widen_header(header, names, candidates)
    if widened is not None:
        wide_header, note = widened
        repairs.append(note)
        candidates = _candidates(content, header_index, wide_header, delimiter, header)
        header, names = wide_header, [normalise_name(h) for h in wide_header]

    regular = [c.cells for c in candidates if c.cells is not None and len(c.cells) == len(header)]
    regular = regular[:: max(1, len(regular) // MAX_PROFILE_ROWS)]  # an even sample of long logs
    columns, reading = _choose_columns(header, names, regular, metric, shown, header_line.number)
    repairs.extend(reading.notes)
    roles = _Roles.of(header, columns, reading)
    rows, bad = _read_rows(
        candidates, header, roles, delimiter, regular, header_line.number, max_field_bytes, repairs
    )

    if not rows and not bad:
        raise NrrInputError("header only: no data rows", path=shown, line=header_line.number)
    repairs.extend(_status_notes(rows, reading, columns["status"] or ""))
    metric_name = columns["metric"] or ""
    if direction is not None:
        chosen = normalise_direction(direction)
        if chosen is None:
            raise NrrInputError(
                f"direction must be 'lower' or 'higher', not {direction!r}", path=shown
            )
        metric_direction, source = chosen, "flag"
    else:
        metric_direction, source = infer_metric_direction(
            metric_name, [r.metric for r in rows], [r.status for r in rows], comments
        )
    # The first readable row as read (padded, unquoted, stripped), so an exported copy keeps the key.
    first_cells = list(rows[0].fields.values()) if rows else []
    return ResultsLog(
        path=shown,
        header=header,
        columns=columns,
        metric_name=metric_name,
        metric_direction=metric_direction,
        direction_source=source,
        rows=rows,
        bad_rows=sorted(bad, key=lambda b: b.line_number),
        session_key=_session_key(header, first_cells),
        repairs=repairs,
        pending_line=len(lines) + 1 if held else None,
    )


def _choose_columns(
    header: list[str],
    names: list[str],
    regular: list[list[str]],
    metric: str | None,
    path: str,
    header_line: int,
) -> tuple[dict[str, str | None], StatusReading]:
    shown_header = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    found = find_status_column(names, regular)
    if found is None:
        raise NrrInputError(f"no status column among: {shown_header}", path=path, line=header_line)
    reading = find_statuses(names, regular, found)
    status_i = reading.column
    taken = {status_i} | ({reading.decision} if reading.decision is not None else set())
    description_i = find_description_column(names, regular, taken)
    if description_i is None:
        raise NrrInputError(
            f"no description column among: {shown_header}", path=path, line=header_line
        )
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
    without_metric: list[int],
) -> LogRow | BadRow:
    """One aligned row read into a LogRow, or a BadRow for an empty status. A keep or discard
    row whose metric cell is not a number is stored without a metric (its line is appended to
    `without_metric`)."""
    status, raw_status = roles.reading.read(cells)
    if not raw_status:
        return BadRow(line_number, row_number, f"empty status in column '{header[roles.status]}'")
    value: float | None = None
    if roles.metric is not None:
        value, malformed = _metric_value(cells[roles.metric])
        if malformed and status in ("keep", "discard"):
            without_metric.append(line_number)  # stored without a metric, said in the repairs
    if status == "crash" and value == 0.0:
        value = None  # crashed runs log 0.0 for 'no value'
    return LogRow(
        row_number=row_number,
        line_number=line_number,
        experiment_id=cells[roles.id].strip() if roles.id is not None else "",
        metric=value,
        status=status,
        raw_status=raw_status,
        description=cells[roles.description].strip(),
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
