"""One output path for every listing command: `--format table|json|jsonl|csv|tsv`.

A command builds its rows as dicts (the JSON form) and, for the table, names its compact
default columns; tables take the terminal's width (rich wraps a long cell, never the row).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nrr_stats.errors import NrrInputError

FORMATS = ("table", "json", "jsonl", "csv", "tsv")


def check_format(fmt: str) -> str:
    """The format, or an input error naming the choices."""
    if fmt not in FORMATS:
        raise NrrInputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def flat(value: Any) -> str:
    """A cell of a CSV/TSV row: lists and dicts as JSON, None as empty."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    table: Callable[[], Any] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    out: Any = None,
) -> None:
    """Print `rows` in `fmt`. The table is `table()` when given (a rich Table), else the
    `columns` of each row; CSV/TSV carry every field of the rows, flattened."""
    out = out or sys.stdout
    check_format(fmt)
    if fmt == "json":
        out.write(json.dumps(list(rows), ensure_ascii=False) + "\n")
    elif fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt in ("csv", "tsv"):
        names = list(rows[0].keys()) if rows else list(columns or [])
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([flat(row.get(name)) for name in names])
    else:
        from nrr_stats.report.tables import print_table

        print_table(table() if table is not None else simple_table(rows, columns or [], title))


def simple_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], title: str | None):
    """A rich table of the given columns; numbers right-aligned."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in columns:
        numeric = bool(rows) and isinstance(rows[0].get(name), int | float)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(_shown(row.get(name)) for name in columns))
    return table


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return flat(value)


def to_text(rows: Sequence[Mapping[str, Any]], fmt: str, **options: Any) -> str:
    """What `emit` prints, as a string (tests, the MCP server)."""
    buffer = io.StringIO()
    emit(rows, fmt, out=buffer, **options)
    return buffer.getvalue()
