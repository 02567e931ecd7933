"""What the two backends' cursors share: the reads passed to the driver's cursor, and the line
for text that cannot be stored. Each backend's `execute` maps its own driver's faults."""

from __future__ import annotations

from typing import Any

from nrr_stats.errors import NrrInputError


class WrappedCursor:
    """A driver cursor (`raw`) behind the bank's one cursor interface."""

    raw: Any

    @property
    def description(self) -> Any:
        return self.raw.description

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount

    def fetchall(self) -> list[Any]:
        return self.raw.fetchall()

    def fetchone(self) -> Any:
        return self.raw.fetchone()


def not_unicode(error: UnicodeEncodeError) -> NrrInputError:
    """The input error for text with lone surrogates or other bytes that are not Unicode."""
    return NrrInputError(f"text that is not valid Unicode cannot be stored ({error.reason})")
