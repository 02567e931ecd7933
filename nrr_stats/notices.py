"""Warnings: printed on stderr as one line, and collected into a check's JSON while it runs.

A warning is something the answer is given despite (a derived file that did not verify, a
decision that could not be recorded): never silent, never fatal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_COLLECTED: ContextVar[list[str] | None] = ContextVar("nrr_warnings", default=None)


def warn(message: str) -> None:
    """Say `message` on stderr (secrets hidden) and add it to the warnings being collected."""
    from nrr_stats.secrets import redact_text

    line = redact_text(" ".join(message.split()))
    print(f"nrr: warning: {line}", file=sys.stderr)
    collected = _COLLECTED.get()
    if collected is not None and line not in collected:
        collected.append(line)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """The warnings given inside the block (a nested block shares its outer block's list)."""
    outer = _COLLECTED.get()
    if outer is not None:
        yield outer
        return
    mine: list[str] = []
    token = _COLLECTED.set(mine)
    try:
        yield mine
    finally:
        _COLLECTED.reset(token)


def say(message: str) -> None:
    """A progress line on stderr (what nrr is waiting for), secrets hidden; not a warning."""
    from nrr_stats.secrets import redact_text

    print(f"nrr: {redact_text(' '.join(message.split()))}", file=sys.stderr, flush=True)
