"""Status synonyms of real logs mapped onto keep / discard / crash / other."""

from __future__ import annotations

import functools
import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


KEEP_WORDS = _words("""keep kept accepted accept improved improvement best new_best yes y true pass passed
    success succeeded merged promoted""")
DISCARD_WORDS = _words("""discard discarded reverted revert worse no n false rejected reject
    regression regressed no_improvement dropped drop declined""")
CRASH_WORDS = _words("""crash crashed error errored failed fail failure oom killed timeout timed_out exception
    diverged nan crash_code crash_infra""")
# Statuses that are recognisably statuses, yet neither a decision nor a crash. size_violation
# (the run broke the artifact-size rule) is 'other' as in the dev MANIFEST, not a discard.
OTHER_WORDS = _words("""baseline running analyze analysis reference tentative repair diagnostic infra verify
    validate validation config baseline_reset run iterate contaminated skip skipped pending
    neutral rerun retry todo wip noop size_violation""")

_SEPARATORS = re.compile(r"[\s\-]+")
_FIRST_WORD = re.compile(r"[a-z][a-z_]*")


def _normalise(raw: str) -> str:
    text = raw.strip().strip("*`'\"[](){}.!:;").strip().lower()
    return _SEPARATORS.sub("_", text)


def _lookup(word: str) -> str | None:
    if word in KEEP_WORDS:
        return "keep"
    if word in DISCARD_WORDS:
        return "discard"
    if word in CRASH_WORDS:
        return "crash"
    if word in OTHER_WORDS:
        return "other"
    return None


@functools.lru_cache(maxsize=4096)
def _classify(raw: str) -> str | None:
    """The group of a status as written, trying the whole text, then its first word."""
    word = _normalise(raw)
    if not word:
        return None
    found = _lookup(word)
    # The first word decides only in short cells ('discard (worse)'), never in free text that
    # happens to start with a status word ('run 4: near-best ...', 'best LR so far ...').
    if found is None and len(raw.split()) <= 3 and len(raw.strip()) <= 24:
        first = _FIRST_WORD.search(word)  # '✅ keep', 'discard (worse)', 'keep*'
        if first and first.group(0) != word and len(first.group(0)) > 1:
            found = _lookup(first.group(0).strip("_"))
    return found


def map_status(raw: str) -> str:
    """Map a status as written ('KEPT', ' reverted ', 'OOM') to keep, discard, crash or other."""
    return _classify(raw) or "other"


def is_status_word(raw: str) -> bool:
    """True when the text reads as a status (any of the four groups), not as free text."""
    return _classify(raw) is not None
