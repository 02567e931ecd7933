"""Status synonyms of real logs mapped onto keep / discard / crash / other."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


KEEP_WORDS = _words("""keep kept accepted accept improved improvement best new_best yes y true pass passed
    success succeeded merged promoted promote better""")
DISCARD_WORDS = _words("""discard discarded reverted revert worse no n false rejected reject
    regression regressed no_improvement dropped drop declined demoted same unchanged""")
CRASH_WORDS = _words("""crash crashed error errored failed fail failure oom killed timeout timed_out exception
    diverged nan crash_code crash_infra incorrect invalid blocked aborted""")
# Statuses that are recognisably statuses, yet neither a decision nor a crash. size_violation
# (the run broke the artifact-size rule) is 'other' as in the dev MANIFEST, not a discard.
OTHER_WORDS = _words("""baseline running analyze analysis reference tentative repair diagnostic infra verify
    validate validation config baseline_reset run iterate contaminated skip skipped pending
    neutral rerun retry todo wip noop size_violation missing marker separator queued started
    in_progress info note planned ablate ablation duplicate inconclusive proposed candidate
    stopped""")
# Words a run-status column uses for "the run finished" when a separate column holds the decision.
RUN_OK_WORDS = _words("ok done complete completed finished ran success succeeded")
# Binary decision cells of a column named as a decision ('kept', 'accepted'): 1 is kept, 0 is not.
BOOLEAN_DECISION_NAMES = _words(
    "kept keep accepted accept improved is_kept is_best promoted merged success decision verdict"
)
BOOLEAN_CELLS = {"1": "keep", "1.0": "keep", "0": "discard", "0.0": "discard"}

_SEPARATORS = re.compile(r"[\s\-]+")
# A status written at the head of a free-text cell: 'keep — depth=6', 'DISCARD: lr 0.02',
# '[crash] OOM at step 3', 'revert - too slow'. The word, then a dash, colon, bar or arrow (a
# hyphen only between spaces: 'keep-alive' is a word), or the word in brackets; then the text.
_LEADING = re.compile(
    r"^\s*(?:\[\s*(?P<bracketed>[A-Za-z][A-Za-z_]*)\s*\]|\(\s*(?P<parenthesised>[A-Za-z][A-Za-z_]*)\s*\)"
    r"|(?P<word>[A-Za-z][A-Za-z_]*)(?:\s*(?:\u2014|\u2013|:|\||=>|->|\u2192)|\s+--?(?=\s)))"
    r"\s*(?P<rest>.*)$",
    re.DOTALL,
)
_PARTS = re.compile(r"[_/+]+")
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
    if found is None and " " not in raw.strip() and len(word) <= 80:
        found = _compound(word)
    return found


def _compound(word: str) -> str | None:
    """A status written as one compound token ('discard_iai', 'neutral-kept',
    'rejected_primary_ce_only'): its first keep, discard or crash part decides, else 'other'
    when a part is a known non-outcome status. A negation ('not_kept') decides nothing."""
    parts = [p for p in _PARTS.split(word) if p]
    if len(parts) < 2 or any(p in ("not", "non", "un") for p in parts):
        return None
    groups = [_lookup(p) for p in parts]
    for group in groups:
        if group in ("keep", "discard", "crash"):
            return group
    return "other" if "other" in groups else None


def map_status(raw: str) -> str:
    """Map a status as written ('KEPT', ' reverted ', 'OOM') to keep, discard, crash or other."""
    return _classify(raw) or "other"


def is_status_word(raw: str) -> bool:
    """True when the text reads as a status (any of the four groups), not as free text."""
    return _classify(raw) is not None


def normalise_status(raw: str) -> str:
    """A status cell as the synonym lists compare it: trimmed, lower case, spaces as '_'."""
    return _normalise(raw)


def status_group(raw: str) -> str | None:
    """keep / discard / crash / other for a recognised status, None for text that is not one."""
    return _classify(raw)


def leading_status(text: str) -> tuple[str, str] | None:
    """(status word as written, the text after it) when a free-text cell opens with a status
    word and a separator ('keep — depth=6 lr 0.01' -> ('keep', 'depth=6 lr 0.01')); None when
    it does not, or when the word is no status."""
    found = _LEADING.match(text)
    if found is None:
        return None
    word = found.group("bracketed") or found.group("parenthesised") or found.group("word")
    if _lookup(_normalise(word)) is None:
        return None
    return word, found.group("rest").strip()


def is_run_ok(raw: str) -> bool:
    """True for a run status that says only 'the run finished' ('ok', 'done', 'success')."""
    return _normalise(raw) in RUN_OK_WORDS


@dataclass(frozen=True)
class StatusReading:
    """How one log's status cells read, learnt from the whole column (see columns.find_statuses).

    `column` holds the status; `decision`, when set, is a separate decision column: a crashed run
    (a crash word in `column`) is a crash, otherwise the decision decides keep or discard.
    `words` maps further normalised cells of this log to a group (a 1/0 'kept' column, the one
    unnamed value of a column that names only keeps). `notes` say what was inferred. With
    `leading`, the status is the word a free-text `column` opens with (leading_status), and
    the text after it is the row's description.
    """

    column: int
    decision: int | None = None
    words: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    leading: bool = False

    def group(self, cell: str) -> str | None:
        """The group of one status as written (a cell of this log's status or decision column,
        or the word a leading-status cell opens with), None when unrecognised."""
        found = self.words.get(_normalise(cell))
        return found if found is not None else _classify(cell)

    def description(self, cells: list[str], column: int) -> str:
        """A row's description from its description column: without its leading status word
        when the status is read from there."""
        text = cells[column].strip()
        if self.leading:  # the status column is then the description column
            opening = leading_status(text)
            return opening[1] if opening is not None else text
        return text

    def recognises(self, cell: str) -> bool:
        """True when the cell reads as a status of this log (used to place ragged rows)."""
        if self.leading:
            opening = leading_status(cell)
            return opening is not None and self.group(opening[0]) is not None
        return self.group(cell) is not None or (self.decision is not None and is_run_ok(cell))

    def read(self, cells: list[str]) -> tuple[str, str]:
        """(status, raw status as written) of one aligned row; a cell no rule reads is 'other'."""
        raw = cells[self.column].strip()
        if self.leading:
            opening = leading_status(raw)
            return (self.group(opening[0]) or "other", opening[0]) if opening else ("other", "")
        if self.decision is None:
            return self.group(raw) or "other", raw
        decision = cells[self.decision].strip()
        written = f"{raw}/{decision}" if raw and decision else (raw or decision)
        run, decided = self.group(raw), self.group(decision)
        if run == "crash" or (decided == "crash" and not raw):
            return "crash", written
        if decided in ("keep", "discard"):
            return decided, written
        if run in ("keep", "discard") and not is_run_ok(raw):
            return run, written
        return "other", written
