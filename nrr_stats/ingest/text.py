"""Bytes to physical lines and lines to cells: encodings, line endings, delimiters, quotes."""

from __future__ import annotations

import codecs
import contextlib
import math
import re
from dataclasses import dataclass

LITERAL_TAB = "\\t"
LITERAL_NEWLINE = "\\n"
WIDE_SPACES = "<2+ spaces>"
SPACES = "<spaces>"
_NUMBER = re.compile(r"^\s*[+-]?(\d[\d_]*\.?\d*|\.\d+)([eE][+-]?\d+)?")
_LETTER = re.compile(r"[A-Za-z]")
_WIDE_GAP = re.compile(r"\s{2,}|\t")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+%?")  # '0,98' (semicolon CSV from a European locale)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
# Cells that mean "no value" rather than a malformed value.
_MISSING = re.compile(
    r"^(|-+|—|–|\?+|n/?a|nan|none|null|nil|inf|-inf|\+inf|infinity|oom|crash(ed)?|err(or)?|"
    r"fail(ed)?|timeout|killed|skip(ped)?|tbd|pending|x)$",
    re.IGNORECASE,
)
# One line end: LF with any CRs before it (CRLF, and CR CR LF from a CRLF file converted twice),
# or a lone CR.
_LINE_END = re.compile(rb"\r*\n|\r")
_SEPARATOR_ROW = re.compile(r"^[\s|+:]*([-=_~*]{3,}[\s|+:]*)+$")


def ends_unterminated(data: bytes) -> bool:
    """True when the last line has no line end: a writer may still be appending to it."""
    return bool(data) and not data.endswith((b"\n", b"\r"))


FALLBACK_ENCODING = "cp1252"  # Windows-1252, a superset of Latin-1's printable characters


def _single_byte_fallback(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte that is not UTF-8 read as Windows-1252 (Latin-1 for the
    five bytes Windows-1252 leaves undefined), so a line's valid UTF-8 stays as written."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    text = "".join(
        bytes([byte]).decode(FALLBACK_ENCODING, errors="ignore") or chr(byte) for byte in bad
    )
    return text, error.end


codecs.register_error("nrr-single-byte-fallback", _single_byte_fallback)


def decode_line(chunk: bytes) -> tuple[str | None, bool]:
    """(text, fell back?): UTF-8, else UTF-8 with each stray byte read as Windows-1252;
    None for a line holding NUL bytes (binary, not text)."""
    if b"\x00" in chunk:
        return None, False
    try:
        return chunk.decode("utf-8"), False
    except UnicodeDecodeError:
        return chunk.decode("utf-8", errors="nrr-single-byte-fallback"), True


@dataclass(frozen=True)
class PhysicalLine:
    """One line of the file: its 1-based number, its text (None when it holds NUL bytes), raw
    bytes, and whether its text needed the single-byte fallback (not UTF-8)."""

    number: int
    text: str | None
    raw: bytes
    fallback: bool = False

    @property
    def is_blank(self) -> bool:
        return not self.raw.strip()

    @property
    def is_comment(self) -> bool:
        return self.raw.lstrip().startswith(b"#")


def split_lines(data: bytes) -> list[PhysicalLine]:
    """Split on LF, CRLF or lone CR (old Mac files), mixed in any way, and decode each line on
    its own (decode_line)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # Undecodable UTF-16 is left as is: its lines then fail UTF-8 below and are reported.
        with contextlib.suppress(UnicodeDecodeError):
            data = data.decode("utf-16").encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    chunks = _LINE_END.split(data)
    if chunks and chunks[-1] == b"":
        chunks.pop()
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        text, fallback = decode_line(chunk)
        lines.append(PhysicalLine(number, text, chunk, fallback))
    return lines


def sniff_delimiter(header: str) -> str:
    """The delimiter of a header line: tab, the two characters backslash-t, comma, pipe, semicolon,
    or, for logs printed as aligned columns, runs of spaces (WIDE_SPACES) or single spaces (SPACES)."""
    if "\t" in header:
        return "\t"
    if LITERAL_TAB in header:
        return LITERAL_TAB
    counts = {d: header.count(d) for d in (",", "|", ";")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best]:
        return best
    if re.search(r"\S {2,}\S", header):
        return WIDE_SPACES
    if re.search(r"\S \S", header.strip()):
        return SPACES
    return "\t"


def split_cells(line: str, delimiter: str, width: int | None = None) -> list[str]:
    """Split one line into cells, honouring double-quoted cells with doubled quotes inside.

    `width` (the header's column count) bounds a split on single spaces: the last column keeps
    its spaces, as a description at the end of the line does.
    """
    if delimiter == WIDE_SPACES:
        return [_unquote(c) for c in _WIDE_GAP.split(line.strip())]
    if delimiter == SPACES:
        limit = (width - 1) if width else -1
        return [_unquote(c) for c in line.split(None, limit)]
    if delimiter == "\t" and "\t" not in line and LITERAL_TAB in line:
        delimiter = LITERAL_TAB
    pieces = line.split(delimiter)
    if '"' not in line and delimiter != "|":
        return [piece.strip() for piece in pieces]
    if delimiter == "|" and len(pieces) > 1:
        if not pieces[0].strip():
            pieces = pieces[1:]
        if pieces and not pieces[-1].strip():
            pieces = pieces[:-1]
    cells: list[str] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        stripped = piece.strip()
        if stripped.startswith('"') and not _ends_with_odd_quotes(stripped[1:]):
            # A quoted cell that holds the delimiter: join pieces until the closing quote.
            for end in range(index + 1, len(pieces)):
                if _ends_with_odd_quotes(pieces[end].rstrip()):
                    piece = delimiter.join(pieces[index : end + 1])
                    index = end
                    break
        cells.append(_unquote(piece))
        index += 1
    return cells


def has_open_quote(line: str, delimiter: str) -> bool:
    """True when a quoted cell opens on this line and does not close on it (it spans lines)."""
    if delimiter in (WIDE_SPACES, SPACES):
        return False
    pieces = line.split(delimiter)
    index = 0
    while index < len(pieces):
        stripped = pieces[index].strip()
        if stripped.startswith('"') and not _ends_with_odd_quotes(stripped[1:]):
            for end in range(index + 1, len(pieces)):
                if _ends_with_odd_quotes(pieces[end].rstrip()):
                    index = end
                    break
            else:
                return True
        index += 1
    return False


def _ends_with_odd_quotes(text: str) -> bool:
    """True when text ends a quoted cell: an odd run of quotes (a doubled quote is an escape)."""
    return (len(text) - len(text.rstrip('"'))) % 2 == 1


def _unquote(cell: str) -> str:
    stripped = cell.strip()
    if len(stripped) >= 2 and stripped.startswith('"') and stripped.endswith('"'):
        return stripped[1:-1].replace('""', '"').strip()
    return stripped


def is_separator_row(text: str) -> bool:
    """Decorative rules such as '---', '=====', '|---|---|'."""
    return bool(_SEPARATOR_ROW.match(text))


def _plain_number_text(cell: str) -> str:
    """The cell stripped, thousands separators dropped, a decimal comma made a point."""
    text = cell.strip()
    if _THOUSANDS.fullmatch(text):
        return text.replace(",", "")
    if _DECIMAL_COMMA.fullmatch(text):
        return text.replace(",", ".")
    return text


def parse_number(cell: str) -> float | None:
    """The leading number of a cell ('2141.09/3143.16' -> 2141.09, '12.5%' -> 12.5), else None."""
    text = _plain_number_text(cell)
    match = _NUMBER.match(text)
    if not match:
        return None
    try:
        return float(match.group(0).replace("_", ""))
    except ValueError:
        return None


def is_number(cell: str) -> bool:
    """True when the whole cell reads as one number (used to tell data rows from headers)."""
    text = cell.strip()
    if not text:
        return False
    try:
        float(text.rstrip("%").replace(",", ""))
    except ValueError:
        return False
    return True


def is_missing(cell: str) -> bool:
    """True for cells that say 'no value': '', '-', 'N/A', 'nan', 'OOM', 'ERR'."""
    return bool(_MISSING.match(cell.strip()))


def looks_numeric(cell: str) -> bool:
    """A finite number, possibly with a unit-less tail ('12.5%', '143.57*', '2141.09/3143.16'),
    but not a word that starts with digits (a commit hash such as '6e1ac35')."""
    text = _plain_number_text(cell)
    match = _NUMBER.match(text)
    if not match or _LETTER.search(text, match.end()):
        return False
    try:
        return math.isfinite(float(match.group(0).replace("_", "")))
    except ValueError:
        return False
