"""Decisions queued beside the bank while its write lock is held, folded in later.

A check must not wait on an ingest for its bookkeeping: SQLite has one writer, and an ingest
holds the write lock for its whole transaction. When the lock is not free at once, the
decision is appended here (one JSON line, under an flock on the file) and the next decision
that gets the lock folds the queue into the bank's decisions table (Bank.record_decision).

Folding is exact: the folder claims the queue by renaming it (appenders holding the old file
see the rename and reopen), inserts its lines and records the claim's token in the same
transaction, then deletes the claimed file. A claim left by a folder killed before its commit
is folded again; one left after its commit is recognised by its token and only deleted. A
queue that reaches SEGMENT_BYTES is set aside as a claim by its appender, and each fold takes
at most FOLD_SEGMENTS claims, so no decision pays for folding a whole load's queue.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nrr_stats.files import file_mode

CLAIMED = ".folding"
# A queue this large is set aside whole as a claim when a decision is appended, and a fold takes
# at most FOLD_SEGMENTS of them: the decision that folds pays for a bounded number of rows.
SEGMENT_BYTES = 1 << 20
FOLD_SEGMENTS = 1
# meta keys of folded claims: this prefix, the queue's own tag, the claim's token.
FOLDED_KEY = "decision_queue_folded:"


def queue_tag(path: Path) -> str:
    """What names this machine's queue of a bank among the claims recorded in a shared bank."""
    import hashlib  # not at module level (nor socket): a check with no claims to fold never
    import socket  # needs them (hashlib ~2 ms to load)

    where = f"{socket.gethostname()}:{path.resolve()}"
    return hashlib.sha256(where.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@contextmanager
def _locked_queue(path: Path) -> Iterator[int]:
    """The queue file open for appending under an exclusive flock, the one now at `path`
    (an appender that opened a file just claimed by a folder reopens the new one)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        fd = os.open(path, flags, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            opened = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (
                opened.st_ino,
                opened.st_dev,
            ):
                yield fd
                return
        finally:
            os.close(fd)


def append(path: Path, entry: Mapping[str, Any]) -> None:
    """Queue one decision (a dict of the decisions table's columns); raises OSError when the
    directory beside the bank cannot be written."""
    line = (json.dumps(dict(entry), ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    path.parent.mkdir(parents=True, exist_ok=True)  # a PostgreSQL bank's: ./.nrr
    with _locked_queue(path) as fd:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, "decision queue write cut short", str(path))
        if os.fstat(fd).st_size >= SEGMENT_BYTES:  # full: folded on its own, like a claim
            os.rename(path, _claim_name(path))


def claim(path: Path) -> Path | None:
    """Rename the queue to a claimed file (new decisions then start a new queue); None when
    nothing is queued."""
    if not path.exists():
        return None
    claimed = _claim_name(path)
    with _locked_queue(path):
        if os.stat(path).st_size == 0:
            return None
        os.rename(path, claimed)
    return claimed


def _claim_name(path: Path) -> Path:
    import secrets  # on first use, as queue_tag's imports

    return path.with_name(f"{path.name}.{queue_tag(path)}.{secrets.token_hex(8)}{CLAIMED}")


def claimed_files(path: Path) -> list[Path]:
    """Claims of this queue left on disk (by a killed folder, or one about to delete its
    claim): each is folded, or only deleted when its token says it was folded."""
    if not any(path.parent.glob(f"{path.name}.*{CLAIMED}")):  # none: no tag to compute
        return []
    return sorted(path.parent.glob(f"{path.name}.{queue_tag(path)}.*{CLAIMED}"))


def token_of(claimed: Path) -> str:
    """The claim's token, `<tag>.<random>`: recorded in meta when its lines are folded."""
    tag, random = claimed.name[: -len(CLAIMED)].rsplit(".", 2)[-2:]
    return f"{tag}.{random}"


def read_claimed(claimed: Path) -> list[dict[str, Any]]:
    """The decisions of a claimed file (a torn last line, from a writer killed mid-append, is
    skipped: that append never returned)."""
    entries = []
    for line in claimed.read_bytes().split(b"\n"):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line.decode("utf-8", "surrogatepass")))
        except (ValueError, UnicodeDecodeError):
            continue
    return entries


def pending(path: Path) -> int:
    """Decisions queued and not yet folded (lines of the queue and of claims left on disk)."""
    total = 0
    for file in [path, *claimed_files(path)]:
        try:
            total += sum(1 for line in file.read_bytes().split(b"\n") if line.strip())
        except FileNotFoundError:
            continue
    return total
