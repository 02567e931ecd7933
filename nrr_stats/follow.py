"""`nrr ingest --follow`: keep a growing results log ingested as the loop appends to it.

The file is polled (a stat per interval, by default 0.2 s): when its size, modification time
or inode moves, it is ingested again (idempotent: only new rows are stored; a partial last line
is not yet a row). A log truncated and rewritten, or rotated (moved away and a new file made at
the path), is simply read again from its start. A bad file is reported on stderr and followed
on; nothing stops the follow but `stop` or Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nrr_stats.errors import NrrInputError


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None  # rotated away, not yet recreated
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def follow_log(
    bank: Any,
    path: str | Path,
    *,
    stop: threading.Event | None = None,
    interval: float = 0.2,
    on_ingest: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    **ingest_options: Any,
) -> int:
    """Ingest `path` now and again whenever it changes, until `stop` is set; return the number
    of rows added. `on_ingest` receives each IngestSummary that added rows."""
    from nrr_stats.bank.ingest import ingest_log

    target = Path(path)
    stop = stop or threading.Event()
    report = on_error or (lambda line: print(f"nrr: {line}", file=sys.stderr))
    seen: tuple[int, int, int] | None = None
    failed: tuple[int, int, int] | None = None
    added = 0
    while not stop.is_set():
        now = _signature(target)
        if now is not None and now != seen and now != failed:
            try:
                summary = ingest_log(bank, target, **ingest_options)
            except NrrInputError as error:
                failed = now  # retried once the file moves again
                report(f"{error.one_line()} (still following)")
            else:
                seen, failed = now, None
                added += summary.rows_added
                if summary.rows_added and on_ingest is not None:
                    on_ingest(summary)
        stop.wait(interval)
    return added


def follow_forever(bank: Any, path: str | Path, **options: Any) -> int:
    """`follow_log` until Ctrl-C; prints a line per ingest that added rows (stderr)."""
    stop = threading.Event()

    def show(summary: Any) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(
            f"nrr: {stamp} {summary.path}: +{summary.rows_added} rows"
            f" (session {summary.session_id}, {summary.rows_read} in the log)",
            file=sys.stderr,
        )

    try:
        return follow_log(bank, path, stop=stop, on_ingest=show, **options)
    except KeyboardInterrupt:
        stop.set()
        return 0
