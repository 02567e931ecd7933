"""Regular expressions compiled on first use, and skipped when a text cannot match.

Compiling the parser's regexes is most of a cold process's first parse (Python's regex
compiler is pure Python: ~0.1-8 ms a pattern). A `LazyPattern` compiles when first used; given
`needs`, literal substrings at least one of which every match contains, a text holding none of
them is answered "no match" without compiling or running the regex. That shortcut is taken
only for ASCII text, where case-insensitive matching of ASCII literals is exactly a substring
test of the lower-cased text; other text always runs the regex. The answers are the regex's.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from typing import Any


class LazyPattern:
    """Stands for `re.compile(pattern, flags)`: the methods the parser calls, same answers."""

    __slots__ = ("pattern", "flags", "needs", "_compiled")

    def __init__(self, pattern: str, flags: int = 0, needs: tuple[str, ...] = ()):
        self.pattern, self.flags = pattern, flags
        fold = bool(flags & re.IGNORECASE)
        if any(not word or not word.isascii() for word in needs):
            raise ValueError(f"needs must be non-empty ASCII literals: {needs!r}")
        self.needs = tuple(word.lower() for word in needs) if fold else tuple(needs)
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def cannot_match(self, string: str) -> bool:
        """True when no match is possible in `string` (only ever for ASCII text)."""
        if not self.needs or not string.isascii():
            return False
        text = string.lower() if self.flags & re.IGNORECASE else string
        return not any(word in text for word in self.needs)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return None if self.cannot_match(string) else self.compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return None if self.cannot_match(string) else self.compiled.match(string, pos, endpos)

    def fullmatch(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> re.Match[str] | None:
        return None if self.cannot_match(string) else self.compiled.fullmatch(string, pos, endpos)

    def finditer(
        self, string: str, pos: int = 0, endpos: int = sys.maxsize
    ) -> Iterator[re.Match[str]]:
        if self.cannot_match(string):
            return iter(())
        return self.compiled.finditer(string, pos, endpos)

    def findall(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        return [] if self.cannot_match(string) else self.compiled.findall(string, pos, endpos)

    def sub(self, repl: Any, string: str, count: int = 0) -> str:
        return string if self.cannot_match(string) else self.compiled.sub(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list[str]:
        return [string] if self.cannot_match(string) else self.compiled.split(string, maxsplit)

    def __getattr__(self, name: str) -> Any:  # groups, groupindex, subn, ...: the real pattern's
        return getattr(self.compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, {self.flags!r}, needs={self.needs!r})"


def lazy_compile(pattern: str, flags: int = 0, needs: tuple[str, ...] = ()) -> LazyPattern:
    """`re.compile(pattern, flags)`, compiled on first use (see the module docstring)."""
    return LazyPattern(pattern, flags, needs)
