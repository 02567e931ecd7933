"""NK records as files: read them from JSON / JSON lines files and directories (bounded, one
fault per file), write them in the NK reference implementation's layout or as JSON lines.

A file holds one record, a JSON list of records, or one record per line (`.jsonl`). A directory
stands for the `.json` and `.jsonl` files under it, in name order. Only regular files are read
(a FIFO or a device is refused before it is opened for reading, so nothing blocks), at most
MAX_FILE_BYTES each, nested at most MAX_NESTING deep; numbers too long for Python's int
conversion and JSON nested past the interpreter's stack are faults of the file, never
tracebacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nrr_stats.errors import NrrInputError

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NESTING = 64
RECORD_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class RecordItem:
    """One record read from a file: where it came from (file, 1-based record number, and for
    JSON lines the line) and the parsed value (any JSON value; the validators judge it)."""

    path: str
    number: int
    record: Any
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.path}:record {self.number}"


@dataclass(frozen=True)
class FileFault:
    """A file that gave no records: unreadable, not JSON, too large or too deep."""

    path: str
    message: str
    line: int | None = None

    def one_line(self) -> str:
        return NrrInputError(self.message, path=self.path, line=self.line).one_line()


def record_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files the arguments name: each file as given, each directory's record files in order."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix in RECORD_SUFFIXES and p.is_file()
            )
            if not found:
                raise NrrInputError(
                    "no .json or .jsonl record files in the directory", path=str(path)
                )
            out.extend(found)
        else:
            out.append(path)
    return out


def read_records(paths: Iterable[str | Path]) -> tuple[list[RecordItem], list[FileFault]]:
    """Every record of every file (directories expanded), and the files that gave none."""
    items: list[RecordItem] = []
    faults: list[FileFault] = []
    for path in record_files(paths):
        try:
            items.extend(read_record_file(path))
        except NrrInputError as error:
            faults.append(FileFault(error.path or str(path), error.message, error.line))
    return items, faults


def read_record_file(path: Path) -> list[RecordItem]:
    """The records of one file; an NrrInputError naming the file (and line) when it has none."""
    text = _read_text(path)
    name = str(path)
    if path.suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                record = _parse(line, name, number)
                items.append(RecordItem(name, len(items) + 1, record, line=number))
        if not items:
            raise NrrInputError("no records in the file", path=name)
        return items
    data = _parse(text, name, None)
    records = data if isinstance(data, list) else [data]
    if not records:
        raise NrrInputError("no records in the file", path=name)
    return [RecordItem(name, number, record) for number, record in enumerate(records, start=1)]


def _read_text(path: Path) -> str:
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise NrrInputError(f"cannot read: {error.strerror}", path=name) from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NrrInputError(
                "not a regular file (a FIFO, device or socket is not read)", path=name
            )
        if info.st_size > MAX_FILE_BYTES:
            raise NrrInputError(
                f"file is {info.st_size} bytes, at most {MAX_FILE_BYTES} are read", path=name
            )
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise NrrInputError(f"file is over {MAX_FILE_BYTES} bytes", path=name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NrrInputError(f"not UTF-8 text (byte {error.start})", path=name) from None


def _parse(text: str, name: str, line: int | None) -> Any:
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise NrrInputError(
            f"not JSON ({error.msg})", path=name, line=line if line is not None else error.lineno
        ) from None
    except RecursionError:
        raise NrrInputError(
            f"JSON nested deeper than {MAX_NESTING} levels", path=name, line=line
        ) from None
    except ValueError as error:  # int('5000 digits'): Python's integer string limit
        reason = "a number with too many digits" if "digits" in str(error) else str(error)
        raise NrrInputError(f"not usable JSON ({reason})", path=name, line=line) from None
    if _nesting(value) > MAX_NESTING:
        raise NrrInputError(f"JSON nested deeper than {MAX_NESTING} levels", path=name, line=line)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _nesting(value: Any) -> int:
    """The value's nesting depth, without recursion (stops counting past MAX_NESTING)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_NESTING:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def canonical_json(record: Mapping[str, Any]) -> str:
    """The record's text with sorted keys: the same content always gives the same text."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def content_hash(record: Mapping[str, Any]) -> str:
    """16 hex digits of the sha256 of the record's canonical text (its identity on import)."""
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()[:16]


def nk_file_name(record: Mapping[str, Any]) -> str:
    """The record's file name in NK's layout: task_<task_id>[_<experiment>][_deep]_<hash>.json.

    NK names a task's records task_<id>.json, task_<id>_r2.json and task_<id>_deep.json; a bank
    holds many per task, so the experiment and the content's hash keep each name unique and the
    same for the same record on every export.
    """
    parts = ["task", _slug(record.get("task_id", "unknown"))]
    experiment = record.get("experiment")
    experiments = record.get("experiments")
    if isinstance(experiments, list) and experiments:
        experiment = experiments[-1]
    if experiment is not None:
        parts.append(_slug(experiment))
    if isinstance(record.get("depth"), int) and record["depth"] >= 2:
        parts.append("deep")
    parts.append(content_hash(record))
    return "_".join(parts) + ".json"


def _slug(value: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9.-]+", "-", str(value)).strip("-.")
    return text[:40] or "x"


def write_records(records: Sequence[Mapping[str, Any]], out: str | Path) -> list[Path]:
    """Write records to `out`: a `.jsonl` file (one record per line), else a directory with one
    indented JSON file per record in NK's layout. Each file is written whole or not at all."""
    target = Path(out)
    if target.suffix == ".jsonl":
        _atomic_write(target, "".join(canonical_json(r) + "\n" for r in records))
        return [target]
    if target.exists() and not target.is_dir():
        raise NrrInputError("not a directory (give a directory or a .jsonl file)", path=str(target))
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise NrrInputError(
            f"cannot create the directory ({error.strerror})", path=str(target)
        ) from None
    written = []
    for record in records:
        path = target / nk_file_name(record)
        _atomic_write(path, json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _atomic_write(path: Path, text: str) -> None:
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise NrrInputError(f"cannot write ({error.strerror})", path=str(path)) from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
