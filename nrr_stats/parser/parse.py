"""Parse one free-text experiment description into category, direction, parameter, from and to."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.parser.changes import (
    ARROW_PAIR,
    ASSIGN,
    FROM_TO,
    MOTIVE,
    NUM,
    NUM_TO_NUM,
    STOP,
    Change,
    alias_of,
    noun_phrase_before,
    parameter_name,
    stated_settings,
    value_changes,
)
from nrr_stats.parser.lazy_regex import lazy_compile
from nrr_stats.parser.results import strip_result_words_with
from nrr_stats.parser.rules import GENERIC_OTHER_WORDS, Rules, Term, load_rules, phrase_regex
from nrr_stats.parser.values import compare, multiplier, to_number

MAX_CHARS = 2000  # a description longer than this is parsed from its opening only

# --- clause structure ---------------------------------------------------------------------------
PREFIX_TAG = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*|(?:s\d+\s+)?(?:exp|experiment|iter|iteration|run|trial|v)\s?[-#_]?\d+[a-z]?(?:[+&/]\d+[a-z]?)*\b\s*[:.)\-—]*\s*"
    # a phase named before its number and a colon: "Deepen iter3:", "Phase 2:", "broad round 4:"
    r"|(?:[A-Za-z]+\s+){0,2}(?:phase|stage|round|iter|iteration|exp|experiment)\s?[-#_]?\d+[a-z]?\s*:\s*)+",
    re.I,
)
# Separators between two changes of one description ("lr 0.02, wd 0.1", "A and B"); not the
# result-word cutter's (results.RESULT_CLAUSE_SPLIT), which also cuts at ". ", ": ", " - ".
CHANGE_CLAUSE_SPLIT = re.compile(
    r";|,\s+|\s\+\s|(?<=[a-z0-9])\+(?=[a-z])|\s+and\s+|\s+plus\s+|\s&\s", re.I
)
# A discarded row often says which value is still best: "softcap 30 (15 is better)", "(WD=0.2 better)".
STILL_BEST = lazy_compile(
    # "(15 is better)", "(WD=0.2 better)", "...: 0.8 is still optimal" (outside brackets with is/was)
    rf"(?:\(\s*(?:[A-Za-z_]\w*\s*=\s*)?(?P<val>{NUM})\s+(?:is\s+|was\s+)?"
    rf"|(?:[:;,]|\s[—–-])\s*(?:[A-Za-z_]\w*\s*=\s*)?(?P<val2>{NUM})\s+(?:is\s+|was\s+|(?=still\s)))"
    r"(?:still\s+)?(?:slightly\s+|much\s+|clearly\s+)?(?:the\s+|a\s+)?"
    r"(?:better|optimal|best|sweet\s+spot|ideal)\b",
    re.I,
    needs=("better", "optimal", "best", "sweet", "ideal"),
)
BASELINE = re.compile(
    r"\b(baseline|re-?run|reproduc\w*|sanity check|reference run|control run|initial state|no changes)\b",
    re.I,
)
# "vs 1.311 baseline", "than baseline", "(baseline 8)": the baseline named as what a result or a
# value is compared with, not a row that re-runs the baseline
BASELINE_COMPARED = re.compile(
    r"(?:\b(?:vs\.?|versus|than|over|from|to|relative\s+to|compared\s+(?:to|with)|against|above|"
    r"below|beats?|matches|match|of)\s+(?:the\s+|our\s+|a\s+)?(?:[-+]?[\d.,]+\w*%?\s+)?"
    r"(?:[A-Za-z]+\s+)?$)",
    re.I,
)


def _names_baseline_row(text: str) -> bool:
    """True when the text names the baseline as the row itself ("baseline", "re-run baseline"),
    not as the reference a comparison names ("1.38 vs 1.31 baseline", "-12% from baseline") or
    as the value in force in an aside ("depth 10 (baseline 8)")."""
    for match in BASELINE.finditer(text):
        if (
            match.group(1).lower().startswith("baseline")
            and (
                BASELINE_COMPARED.search(text[max(0, match.start() - 40) : match.start()])
                # "depth 10 (baseline 8)": the value in force, in an aside
                or (
                    not _outside_brackets(text, match.start())
                    and re.match(r"\s*[:=]?\s*[-+]?\.?\d", text[match.end() :])
                )
            )
        ):
            continue
        return True
    return False


# "..., reproduce best result": anywhere in the row (outside brackets), it re-runs what is known
REPRODUCE = re.compile(r"\b(?:reproduc\w*|re-?produc\w*|replicat\w*)\b", re.I)
# "SWA + lr=4e-4 rerun": a row that runs a configuration again states it, it changes nothing
RERUN = re.compile(r"\bre-?run(?:s|ning)?\b", re.I)
# Where a row's remarks begin: a dash, colon or semicolon after the statement
REMARKS = re.compile(r"\s(?:—|–|--?)\s|:\s|;")
REVERT = re.compile(r"^\s*(?:revert(?:ed|ing)?|roll\s?back|undo|restore[ds]?|go\s+back)\b", re.I)
SWEEP = re.compile(r"\[[^\]]*[,.]{1,2}[^\]]*\]|\bsweep\b|\bgrid\b|\bscan\b", re.I)


@dataclass(frozen=True)
class ParsedChange:
    """What one description proposes: a TAXONOMY category and direction, plus parameter and values."""

    category: str
    direction: str
    parameter: str
    from_value: str
    to_value: str
    # Every (PARAMETER, from, to) the text states; lets ConfigTracker learn several values at once.
    settings: tuple[tuple[str, str, str], ...] = field(default=(), compare=False, repr=False)
    # Named only by a word that is ML vocabulary in ML logs alone ("momentum", "cooldown").
    ambiguous: bool = field(default=False, compare=False, repr=False)
    # The text uses words of another domain (trades, chess moves, games).
    foreign: bool = field(default=False, compare=False, repr=False)
    # A `multiple` change: the parse of each change it names, in the order written.
    parts: tuple[ParsedChange, ...] = field(default=(), compare=False, repr=False)
    # "add" / "remove" read as increase / decrease because the category counts something
    # ("add a block"): what the direction is when the category turns out not to apply.
    uncounted: str = field(default="", compare=False, repr=False)
    # A `multiple` made only by counting a part of no category ("add X pairs + temp 0.02->0.05"):
    # the row read as one change, for a log that is not ML training (where such parts are the
    # log's own kind of change and two of them are not two categories).
    alone: ParsedChange | None = field(default=None, compare=False, repr=False)

    def bank_fields(self) -> dict[str, str]:
        """The change as the bank's experiment columns store it."""
        return {
            "category": self.category,
            "direction": self.direction,
            "parameter": self.parameter,
            "from_value": self.from_value,
            "to_value": self.to_value,
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: keys category, direction, parameter, from, to (and, for a `multiple`
        change, parts: the same keys for each change it names)."""
        out: dict[str, Any] = {
            "category": self.category,
            "direction": self.direction,
            "parameter": self.parameter,
            "from": self.from_value,
            "to": self.to_value,
        }
        if self.parts:
            out["parts"] = [part.as_dict() for part in self.parts]
        return out


OTHER = ParsedChange("other", "other", "", "", "")


@dataclass(frozen=True)
class Mention:
    """A category term found in the text, with its span in the focus text."""

    start: int
    end: int
    term: Term


@dataclass
class Clause:
    """A piece of the description that may state one change."""

    start: int
    end: int
    text: str
    mentions: list[Mention] = field(default_factory=list)


def _lower_keep_length(text: str) -> str:
    """Lower-cased character by character, a character whose lower case is longer kept as is
    (so spans match the text's); ASCII text, the common case, at once."""
    if text.isascii():
        return text.lower()
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)


def _norm_for_match(text: str) -> str:
    return re.sub(r"[_\-]", " ", _lower_keep_length(text))


def _find_mentions(text: str, rules: Rules) -> list[Mention]:
    """Category terms in the text: longest first, a user's category winning ties, no overlaps
    (found once per text and rule set: a parse asks for one text's mentions several times)."""
    found = rules.remembered(rules.mentions, text, lambda: tuple(_search_mentions(text, rules)))
    return list(found)


def _search_mentions(text: str, rules: Rules) -> list[Mention]:
    norm = _norm_for_match(text)
    found: list[tuple[int, int, int, Term]] = []
    for term in rules.terms_meeting(norm):
        for match in term.regex.finditer(norm):
            if term.is_pattern and _starts_a_value(norm, match.start()):
                continue  # "depth=10 dim=256": "10 dim" is DEPTH's value and the next key
            if match.end() > match.start():
                user_first = 0 if term.category in rules.user_categories else 1
                found.append((match.start(), match.end(), user_first, term))
    found.sort(key=lambda f: (-(f[1] - f[0]), f[2], f[0], not f[3].parameter))
    taken: list[Mention] = []
    for start, end, _, term in found:
        if all(end <= m.start or start >= m.end for m in taken):
            taken.append(Mention(start, end, term))
    taken.sort(key=lambda m: m.start)
    return taken


def _starts_a_value(norm: str, start: int) -> bool:
    """True when a match opens with the number assigned by a KEY=V or KEY: V before it."""
    return norm[start : start + 1].isdigit() and re.search(r"[=:]\s*$", norm[:start]) is not None


def _clauses(text: str) -> list[Clause]:
    """Split at top-level separators (not inside brackets), then drop each clause's stated motive."""
    pieces: list[Clause] = []
    depth, start = 0, 0
    cuts: list[tuple[int, int]] = []
    for match in CHANGE_CLAUSE_SPLIT.finditer(text):
        depth = text.count("(", 0, match.start()) - text.count(")", 0, match.start())
        depth += text.count("[", 0, match.start()) - text.count("]", 0, match.start())
        if depth <= 0:
            cuts.append((match.start(), match.end()))
    after_motive = False
    for cut_start, cut_end in [*cuts, (len(text), len(text))]:
        body_end = cut_start
        motive = MOTIVE.search(text, start, body_end)
        if motive and motive.start() > start:
            body_end = motive.start()
        body = text[start:body_end]
        # after a stated motive the rest is rationale, unless it states another value change
        if body.strip() and (not after_motive or ARROW_PAIR.search(body) or ASSIGN.search(body)):
            pieces.append(Clause(start, body_end, body))
        after_motive = after_motive or motive is not None
        start = cut_end
    return pieces


def _is_head(mention: Mention) -> bool:
    return mention.term.is_head


def _head_of(group: list[Mention], rules: Rules) -> Mention:
    """The mention naming the thing changed in a noun compound: a user's category, else its last head
    word, else its first word."""
    users = [m for m in group if m.term.category in rules.user_categories]
    if users:
        return users[0]
    heads = [m for m in group if _is_head(m)]
    return heads[-1] if heads else group[0]


def _groups(text: str, mentions: list[Mention]) -> list[list[Mention]]:
    groups: list[list[Mention]] = []
    for mention in mentions:
        previous = groups[-1][-1] if groups else None
        both_numeric = previous is not None and all(
            re.search(r"\d", text[m.start : m.end]) for m in (previous, mention)
        )
        if (
            previous is not None
            and not both_numeric
            and re.fullmatch(
                r"[\s_\-]{0,2}(?:\d+[\s_\-]{1,2})?", text[previous.end : mention.start]
            )
        ):
            groups[-1].append(mention)
        else:
            groups.append([mention])
    return groups


def _outside_brackets(text: str, position: int) -> bool:
    return text.count("(", 0, position) <= text.count(")", 0, position)


def _direction_words(text: str, rules: Rules) -> list[tuple[int, str, str]]:
    """(position, direction, word) of each direction word in the text, in order."""
    norm = _norm_for_match(text)
    hits: list[tuple[int, int, str, str]] = []
    for direction, word in rules.direction_words_meeting(norm):
        for match in _word_regex(word).finditer(norm):
            if (
                word in CLAUSE_START_VERBS
                and norm[: match.start()].strip(" ,;:-")
                and not ADVERB_BEFORE.search(norm[: match.start()])
                and not (word in MOVE_VERBS and STEP_AFTER.match(norm, match.end()))
            ):
                continue  # "residual skip", "cut" as nouns: verbs only when they lead
            if (
                "_"
                in text[max(0, match.start() - 1) : match.start()]
                + text[match.end() : match.end() + 1]
            ):
                continue  # part of an identifier: "drop_rate", "no_shuffle"
            hits.append((match.start(), match.end(), direction, word))
    hits.sort(key=lambda h: (h[0], -(h[1] - h[0])))
    result: list[tuple[int, str, str]] = []
    last_end = -1
    for start, end, direction, word in hits:
        if start >= last_end:
            result.append((start, direction, word))
            last_end = end
    return result


_WORD_CACHE: dict[str, re.Pattern[str]] = {}
# Verbs of building something, in logs of software and systems work ("Recognize cones ...").
BUILDING_VERBS = frozenset(
    {"recognize", "recognise", "bind", "cache", "dedupe", "deduplicate", "deduplicated", "reuse"}
    | {"memoize", "precompute", "precomputed", "implement", "implemented", "support", "detect"}
)
# Words that are verbs of a change only when they open the description ("skip X", "new game: ...").
CLAUSE_START_VERBS = frozenset(
    {"skip", "cut", "trim", "narrow", "boost", "bump", "grow", "new", "require"}
    | BUILDING_VERBS
    | {"standardise", "standardize", "standardised", "standardized"}
    # gerunds that are nouns after a noun ("scope narrowing", "range extending"): verbs when leading
    | {"extending", "lengthening", "widening", "deepening", "growing", "boosting", "bumping"}
    | {"expanding", "loosening", "shortening", "shrinking", "narrowing", "cutting"}
    | {"tightening"}
)


# "also cut dropout", "then trim the MLP": a verb that leads its clause after an adverb
ADVERB_BEFORE = re.compile(r"(?:^|[\s,;:(])(?:also|then|further|slightly|just|only)\s+$")
# "dropout cut to 0.05", "MLP ratio trimmed by 1": a verb of moving that says where to
MOVE_VERBS = frozenset({"cut", "trim", "narrow", "bump", "grow", "boost"})
STEP_AFTER = re.compile(r"\s+(?:to|by)\s+[-+]?\.?\d")


def _word_regex(word: str) -> re.Pattern[str]:
    if word not in _WORD_CACHE:
        _WORD_CACHE[word] = re.compile(phrase_regex(word, plural=False))
    return _WORD_CACHE[word]


def _attach(changes: list[Change], groups: list[list[Mention]], text: str) -> dict[int, Change]:
    """Link each value to the noun compound it qualifies, by index: the compound its key is part of,
    else the nearest compound before it in the clause, else a compound right after a bare number
    ("16 refine layers", "5% warmup")."""
    spans = [(group[0].start, group[-1].end) for group in groups]
    linked: dict[int, Change] = {}
    trailing: list[tuple[int, Change]] = []
    for change in changes:
        keyed = [
            index
            for index, (start, end) in enumerate(spans)
            if change.key_start <= start < change.position
            or start <= change.position < end
            or start <= change.key_start < end
        ]
        before = [index for index, (_, end) in enumerate(spans) if end <= change.key_start]
        after = [index for index, (start, _) in enumerate(spans) if start >= change.position]
        target: int | None = None
        value_end = change.position + len(change.to_value)
        counts_next = (
            bool(after)
            and not change.explicit_pair
            and re.fullmatch(r"\s{1,2}", text[value_end : spans[after[0]][0]]) is not None
        )
        if keyed:
            target = keyed[-1]
        elif (
            before
            and change.key_start == change.position  # "KEY=V" belongs to its own KEY
            and re.fullmatch(
                r"[^,;\d]{0,30}",
                STEP.sub(
                    " ", text[spans[before[-1]][1] : change.key_start]
                ),  # "X by 1 from 3 to 4"
            )
            # "a block with 256 filters": the number counts the noun after it, not the block
            and not (
                counts_next and DETAIL_WORD.search(text[spans[before[-1]][1] : change.key_start])
            )
        ):
            target = before[-1]
        elif after and re.fullmatch(
            r"[\w.%^x\s\-]{0,25}", text[change.position : spans[after[0]][0]]
        ):
            trailing.append((after[0], change))  # used when no value follows the compound
        elif after and change.explicit_pair and _counts(text, change, spans[after[0]]):
            trailing.append((after[0], change))  # "8 -> 16 threads": the pair counts the noun
        if target is not None and _bracket_detail(text, change, spans[target][0]):
            target = None
        if target is not None and (
            target not in linked or change.strength > linked[target].strength
        ):
            linked[target] = change
    nearest: dict[int, Change] = {}
    for target, change in trailing:  # the number closest to the noun: "15m max hold to 2 bars" -> 2
        if target not in nearest or change.position > nearest[target].position:
            nearest[target] = change
    for target, change in nearest.items():
        linked.setdefault(target, change)
    return linked


COUNT_QUALIFIERS = frozenset({"more", "extra", "additional", "fewer", "less"})  # "2 more heads"


def _pair_end(text: str, change: Change) -> int:
    """Where the written target of a pair ends ("8 -> 16| threads"); its start when not found."""
    at = text.find(change.to_value, change.position)
    return at + len(change.to_value) if at >= 0 else change.position


def _counts(text: str, change: Change, span: tuple[int, int]) -> bool:
    """True when a pair's target is followed by the noun it counts ("8 -> 16 threads") or is the
    opening of a mention that counts ("2 -> 4 layers")."""
    end = _pair_end(text, change)
    if span[0] < end <= span[1]:
        return True
    return re.fullmatch(r"\s{1,2}", text[end : span[0]]) is not None


STEP = re.compile(r"\bby\s+[\d.]+[x%]?(?=\s)", re.I)
DETAIL_WORD = re.compile(r"\b(?:with|using|via|of)\b", re.I)


def _bracket_detail(text: str, change: Change, target_start: int) -> bool:
    """True for a bare number inside brackets that hold more than it, read against a mention outside:
    "hetero attention schedule (linear*4+sliding*4)" gives the schedule no value; "clipping (0.5)" does."""
    if change.explicit_pair or change.key_start != change.position:
        return False
    if _outside_brackets(text, change.position) or not _outside_brackets(text, target_start):
        return False
    opening = text.rfind("(", 0, change.position)
    closing = text.find(")", change.position)
    inner = text[opening + 1 : closing if closing >= 0 else len(text)]
    return inner.strip() != change.to_value


def _is_option(text: str, rules: Rules) -> str:
    """The option word (as written) a text names, e.g. "SwiGLU" in "SwiGLU MLP"; "" when none."""
    norm = _norm_for_match(text)
    best: tuple[int, int] | None = None
    for word in rules.option_words:
        if word.split(" ")[0] not in norm:
            continue  # cannot match: its regex need not be compiled
        match = _word_regex(word).search(norm)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), match.end())
    return text[best[0] : best[1]] if best else ""


def _is_technique(mention: Mention, text: str, rules: Rules) -> bool:
    span = re.sub(r"[_\-\s]+", " ", text[mention.start : mention.end].lower())
    return any(span == word or span.endswith(" " + word) for word in rules.technique_words)


def _same_as_config(change: Change, parameter: str, config: Mapping[str, str]) -> bool:
    current = config.get(parameter)
    if current is None or change.from_value:
        return False
    if current.strip().lower() == change.to_value.strip().lower():
        return True
    a, b = to_number(current), to_number(change.to_value)
    return a is not None and b is not None and a == b


def _direction_from_value(
    change: Change, parameter: str, config: Mapping[str, str], text: str = ""
) -> str:
    if change.from_value:
        return compare(change.from_value, change.to_value)
    if SWEEP.search(change.to_value):
        return "other"
    lowered = change.to_value.strip().lower()
    if lowered in ("false", "off", "none", "disabled", "no"):
        return "remove"
    if lowered in ("true", "on", "enabled", "yes"):
        return "add"
    factor = multiplier(change.to_value)
    current = known_value(parameter, config, change.to_value)
    if current is not None and (factor is None or multiplier(current)):
        return compare(current, change.to_value)
    if factor is not None and factor != 1:
        return "increase" if factor > 1 else "decrease"
    if text and _choice_setting(text, change):
        return "replace"  # "activation=gelu", "grow_policy='lossguide'": a setting takes a choice
    return ""


def _choice_setting(text: str, change: Change) -> bool:
    """A KEY=word written as a setting ("activation=gelu"), not as code ("g = df.groupby(...)")."""
    if change.key_start == change.position or not CHOICE_VALUE.fullmatch(change.to_value.strip()):
        return False
    between = text[change.key_start : change.position]
    after = text[change.position + len(change.to_value) :]
    return "=" in between and " " not in between and not re.match(r"\s*[(\[./*+\-]", after)


# A value that names a choice rather than a quantity: a word, maybe quoted ("gelu", "'lossguide'").
CHOICE_VALUE = re.compile(r"(['\"]?)[A-Za-z][\w.:\-]*\1")


@functools.lru_cache(maxsize=8192)  # a log's config names, asked for at every row's parse
def _name_words(name: str) -> frozenset[str]:
    """The words of a parameter name, singular ("N_HEADS" and "N_HEAD" name one setting)."""
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("S") else w for w in name.split("_"))


def known_value(parameter: str, config: Mapping[str, str], to_value: str = "") -> str | None:
    """The kept value of a parameter: its own entry, else the one entry whose name contains it or
    is contained in it, word by word ("batch=32K" after "total_batch=65K") and, when the new value
    is a number, within a factor of ten of it; None when unknown."""
    if not parameter:
        return None
    if parameter in config:
        return config[parameter]
    words = _name_words(parameter)
    related = [key for key in config if (named := _name_words(key)) >= words or named <= words]
    if len(related) != 1:
        return None
    current, new = to_number(config[related[0]]), to_number(to_value) if to_value else None
    if new is not None and not (current and 0.1 <= new / current <= 10):
        return None  # "BATCH=256" is not the "TOTAL_BATCH_SIZE" of 2^18
    return config[related[0]]


SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\betc)\.\s+|[。！？]")


def _main_statement(text: str) -> str:
    """The proposal proper: the first sentence, and before ": " when a change is already stated there
    ("DEPTH 4->6: undertrained ..."), since what follows is commentary."""
    for match in SENTENCE_END.finditer(text):
        if match.start() >= 8:
            text = text[: match.start()]
            break
    colon = text.find(": ")
    if colon > 0:
        head = text[:colon]
        tail = text[colon + 2 :]
        opening = ARROW_PAIR.match(tail) or NUM_TO_NUM.match(tail)
        if opening and re.fullmatch(r"[A-Za-z_][\w.\- ]{0,40}", head):
            # "beta2: 0.95→0.9": the key, then its change; what follows the pair is commentary
            return f"{head}: {tail[: opening.end()]}".strip()
        if (
            ARROW_PAIR.search(head)
            or FROM_TO.search(head)
            or ASSIGN.search(head)
            # "lr: 0.02" names a value; "mirror-flip half the positions: 400/400" reports one
            or (re.match(r"\s*[\d.]", tail) and (re.search(r"\d", head) or len(head.split()) > 3))
        ):
            text = head
    return text.strip()


# "worse than 0.3", "no gain over 512KB": the value the new one is compared with (the one in force)
COMPARED_WITH = re.compile(
    r"\b(?:worse|better|gains?|improvements?|slower|faster)\s+(?:than|over)\s+"
    r"(?P<val>[-+]?\.?\d[\w.]*?)(?=[\s,;:)]|$)",
    re.I,
)


# "262 vs 270 at 5e-3", "worse than 1.31 at lr 0.02": the result of the value in force, named by "at"
COMPARED_AT = re.compile(
    r"\b(?:vs\.?|versus|than|over)\s+[^,;:()]{0,30}?\bat\s+(?:[A-Za-z_]\w*\s*=?\s*)?"
    r"(?P<val>[-+]?\.?\d[\w.\-]*?)(?=[\s,;:)]|$)",
    re.I,
)


def _unit(value: str) -> str:
    return re.sub(r"^[-+.\d,e]*", "", value.strip().lower())


def _revealed_current(
    raw: str, parameter: str, to_value: str = ""
) -> tuple[tuple[str, str, str], ...]:
    """A value a (raw, unscrubbed) row says is still best, or compares the new value with in the
    same unit: the kept configuration's current value."""
    if not parameter:
        return ()
    found = STILL_BEST.search(raw)
    if found:
        return ((parameter, found.group("val") or found.group("val2"), ""),)
    if to_value and to_number(to_value) is not None:
        matches = [(m, False) for m in COMPARED_WITH.finditer(raw)]
        for match, at_setting in [*matches, *((m, True) for m in COMPARED_AT.finditer(raw))]:
            value = match.group("val")
            if not at_setting and re.search(
                r"\d\s*(?:\w+ly\s+|much\s+|a\s+bit\s+)?$", raw[: match.start()]
            ):
                continue  # "1.23 better than 1.25": metrics compared, not settings
            old, new = to_number(value), to_number(to_value)
            if old and new and _unit(value) == _unit(to_value) and 0.1 <= new / old <= 10:
                return ((parameter, value, ""),)
    return ()


# "(higher than optimal)", "lower than default": the new value against the one in force
THAN_CURRENT = re.compile(
    r"\b(?P<word>higher|larger|bigger|more|longer|lower|smaller|fewer|less|shorter)\s+than\s+"
    r"(?:the\s+)?(?:optimal|optimum|default|best|current|baseline|before|previous|usual|tuned)\b",
    re.I,
)
MORE_WORDS = frozenset({"higher", "larger", "bigger", "more", "longer", "wider", "deeper"})


def _direction_from_aside(
    raw: str, parsed: ParsedChange, revealed: tuple[tuple[str, str, str], ...], rules: Rules
) -> ParsedChange:
    """A direction the result words cut away still says: a value still best or compared with
    ("crop padding 8 (4 is optimal)"), the stated pair ending at the new value ("x0_init 0.15
    (increase x0 skip from 0.1 to 0.15; too strong)"), "higher than optimal"."""
    to_value = parsed.to_value
    if to_value and not parsed.from_value:
        starts = [(before, True) for _, before, _ in revealed]
        for pattern in (FROM_TO, ARROW_PAIR, NUM_TO_NUM):
            for match in pattern.finditer(raw):
                groups = match.groupdict()
                if groups["b"].strip() == to_value:
                    starts.append(
                        (groups.get("a") or groups.get("n") or groups.get("w") or "", False)
                    )
        for before, guarded in starts:
            moved = compare(before.strip(), to_value)
            old, new = to_number(before), to_number(to_value)
            if guarded and old and new and not 0.1 <= new / old <= 10:
                continue  # "lr 0.03: 1.23 still best" names a metric, not the setting
            if moved in ("increase", "decrease"):
                return dataclasses.replace(parsed, direction=moved, from_value=before.strip())
    found = THAN_CURRENT.search(raw)
    if found and parsed.parameter:
        moved = "increase" if found.group("word").lower() in MORE_WORDS else "decrease"
        return dataclasses.replace(parsed, direction=moved)
    factor = TIMES_DEFAULT.search(raw)
    if factor and parsed.parameter and float(factor.group("f")) != 1:
        moved = "increase" if float(factor.group("f")) > 1 else "decrease"
        return dataclasses.replace(parsed, direction=moved)
    for said in COMPARATIVE_OF.finditer(raw):
        # "EMBEDDING_LR=0.4: lower embedding LR worse": the comment names the same thing
        named = _find_mentions(said.group("what"), rules)
        if named and named[0].term.category == parsed.category:
            moved = "increase" if said.group("word").lower() in MORE_WORDS else "decrease"
            return dataclasses.replace(parsed, direction=moved)
    return parsed


# "(0.3x default)", "10x the default": a factor of the value in force
TIMES_DEFAULT = re.compile(
    r"(?<![\w.])(?P<f>\d+(?:\.\d+)?)\s?[x×]\s+(?:the\s+)?(?:default|baseline|current)\b", re.I
)
COMPARATIVE_OF = re.compile(
    r"\b(?P<word>higher|larger|bigger|more|longer|wider|deeper|lower|smaller|fewer|less|shorter|"
    r"narrower|shallower)\s+(?P<what>[A-Za-z][\w\-]*(?:\s+[A-Za-z][\w\-]*){0,2})",
    re.I,
)


def parse_description(
    text: str, *, rules: Rules | None = None, config: Mapping[str, str] | None = None
) -> ParsedChange:
    """Parse a description into a ParsedChange; never raises, always returns vocabulary words.

    `config` is the kept configuration known so far (PARAMETER -> value as written): it gives
    "LR to 0.05" a direction when the current LR is known.
    """
    rules = rules or load_rules()
    config = config or {}
    if not isinstance(text, str):
        return OTHER
    raw = text[:MAX_CHARS]
    cleaned = strip_result_words_with(raw, rules)
    parsed = _parse_clean(cleaned, rules, config)
    extra = _revealed_current(raw, parsed.parameter, parsed.to_value)
    if (
        parsed.direction == "add"
        and extra
        and not parsed.from_value
        and compare(extra[0][1], parsed.to_value) in ("increase", "decrease")
    ):
        # "dropout 0.3 (0.1 is optimal)": a technique the row says is in force at another value
        parsed = dataclasses.replace(
            parsed, direction=compare(extra[0][1], parsed.to_value), from_value=extra[0][1]
        )
    to_zero = parsed.direction == "decrease" and to_number(parsed.to_value) == 0
    if parsed.category not in ("other", "multiple") and (
        parsed.direction == "other" or (to_zero and not parsed.from_value)
    ):
        # "eta_min=0 (eta_min=1e-4 was better)": the aside names where a value taken to 0 started
        parsed = _direction_from_aside(raw, parsed, extra, rules)
    foreign = any(
        m.term.category == "other" and _span_norm(cleaned, m) not in GENERIC_OTHER_WORDS
        for m in _find_mentions(cleaned, rules)
    )
    if extra or foreign:
        parsed = dataclasses.replace(parsed, settings=parsed.settings + extra, foreign=foreign)
    return parsed


def _span_norm(text: str, mention: Mention) -> str:
    return re.sub(r"[_\-\s]+", " ", text[mention.start : mention.end].lower()).strip()


# A spaced dash or a colon after which a row often comments on its change ("dropout 0.2 — more
# overfitting", "use GeLU: more stable").
COMMENT_CUT = re.compile(r"\s+(?:—|–|--?)\s+|(?<=\S):\s+")
# Words that go on with the change after the cut rather than comment on it ("..., also bump ...").
GOES_ON = re.compile(r"(?:also|and|then|plus|\+)\s+", re.I)
# A comparative adjective ("more", "fewer", "bigger", "lower"): it describes, it does not act.
COMPARATIVE = re.compile(r"(?:more|less|fewer|[a-z]{2,}er)", re.I)


# A row's own index or tag ("exp25", "iter3", "run 2", "Issue #3", "H4"): it counts rows, it is no value.
ROW_INDEX = re.compile(
    r"\b(?:iter(?:ation)?s?|exp|experiment|run|trial|round|stage|phase|attempt|version|issue|"
    r"h|v|s|a|lane)\s?[-#_]?\d+[a-z]?\b|#\d+",
    re.I,
)


def _states_change(text: str, rules: Rules, by_verb: bool) -> bool:
    """True when a text states a change by itself: a value that is not a row index, or (when
    `by_verb`) a verb of change that is not a comparative ("use GeLU", "dropout 0.2"; not
    "warmup", "exp25 (Issue #3)" or "more stable")."""
    unindexed = ROW_INDEX.sub(" ", text)
    if value_changes(unindexed, rules):
        return True
    return by_verb and any(
        direction != "other" and not COMPARATIVE.fullmatch(word)
        for _, direction, word in _direction_words(unindexed, rules)
    )


def _without_commentary(text: str, rules: Rules) -> str:
    """The change a row states before a dash or colon that comments on it ("grid cell 32 — grid 4x
    bigger, more dirty cells" -> "grid cell 32"): after a head that states a change, a tail that
    opens with neither a verb of change nor a setting is a remark on the outcome, and its
    comparatives and numbers are not the change. A tail that goes on ("— also add dropout",
    ": lr 0.02") is kept, and a colon after a tag ("Tune: ...", "Ablate a3: ...") is no cut."""
    for cut in COMMENT_CUT.finditer(text):
        head, tail = text[: cut.start()], text[cut.end() :]
        if not re.search(r"[A-Za-z]{2}", head) or not _outside_brackets(text, cut.start()):
            continue
        dash = ":" not in cut.group()
        if not dash and not _states_change(head, rules, by_verb=False):
            continue
        rest = tail[GOES_ON.match(tail).end() :] if GOES_ON.match(tail) else tail
        opening = _direction_words(rest[:40], rules)
        acts = bool(opening) and opening[0][0] == 0 and not COMPARATIVE.fullmatch(opening[0][2])
        setting = (
            ASSIGN.match(rest) or ARROW_PAIR.match(rest) or re.match(r"[A-Za-z_]\w*\s+\d", rest)
        )
        if acts or setting:
            continue
        return head.strip()
    return text


# "LRx2", "widthx0.5": a multiplier written onto the name it scales
GLUED_TIMES = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z_]{0,20}?)([x×]\d+(?:\.\d+)?)(?![\w.])")


def _unglue_multipliers(text: str, rules: Rules) -> str:
    """ "LRx2" -> "LR x2" when the letters before the "x" name a parameter the rules know."""

    def split(match: re.Match[str]) -> str:
        name = match.group(1)
        known = (
            name.lower().replace("_", " ") in rules.parameters
            or alias_of(name, rules)
            or any(m.start == 0 and m.end == len(name) for m in _find_mentions(name, rules))
        )
        return f"{name} {match.group(2)}" if known else match.group(0)

    return GLUED_TIMES.sub(split, text) if "x" in text or "×" in text else text


# A value as a setting writes it right after its name ("depth 8", "lr=3e-4", "batch: 64").
_SETTING_VALUE = rf"\s*[=:]?\s*{NUM}"
VALUE_THEN_SPACE = re.compile(rf"{NUM}(\s+)$")


def _split_juxtaposed(text: str, rules: Rules) -> str:
    """ "depth 8 dropout 0.1" -> "depth 8, dropout 0.1"; "depth 2 200 epochs" -> "depth 2, 200
    epochs": settings written one after another without a separator are separate settings, each
    name with the value next to it (not the value of the name before it). A new setting opens at
    a named setting (a term of the rules) followed by its own value, or at a count of a named
    noun ("200 epochs", "12 heads"), and only right after a named setting and its value."""
    mentions = _find_mentions(text, rules)
    cuts: list[int] = []
    for previous, mention in zip(mentions, mentions[1:], strict=False):
        before = text[previous.end : mention.start]
        if previous.term.is_pattern or not _outside_brackets(text, mention.start):
            continue
        if not re.fullmatch(rf"{_SETTING_VALUE}\s+", before):
            continue
        counted = mention.term.is_pattern and re.match(NUM, text[mention.start :])
        valued = not mention.term.is_pattern and re.match(
            rf"{_SETTING_VALUE}(?![\w.])", text[mention.end :]
        )
        if counted or valued:
            cuts.append(previous.end + VALUE_THEN_SPACE.search(before).start(1))
    for cut in reversed(cuts):
        text = f"{text[:cut]},{text[cut:]}"
    return text


def _parse_clean(text: str, rules: Rules, config: Mapping[str, str]) -> ParsedChange:
    text = _main_statement(PREFIX_TAG.sub("", text, count=1).strip())
    text = _unglue_multipliers(text, rules)
    text = _split_juxtaposed(text, rules)
    head = _without_commentary(text, rules)
    if head != text:
        parsed = _parse_statement(head, rules, config)
        if parsed.category != "other" or parsed.direction != "other":
            return parsed  # the change as stated; the remark after it is no part of it
    return _parse_statement(text, rules, config)


def _parse_statement(
    text: str, rules: Rules, config: Mapping[str, str], loose: bool = True
) -> ParsedChange:
    if not text:
        return OTHER
    clauses = _clauses(text)
    all_changes = value_changes(text, rules)
    settings = stated_settings(all_changes, text, rules)
    if not clauses:
        return ParsedChange("other", "other", "", "", "", settings)
    first = clauses[0].text
    if REVERT.match(text):
        return ParsedChange("other", "other", "", "", "", settings)
    reproduced = REPRODUCE.search(text)
    if reproduced is None:
        remarks = REMARKS.search(text)
        reproduced = RERUN.search(text[: remarks.start() if remarks else len(text)])
    if reproduced and not _outside_brackets(text, reproduced.start()):
        reproduced = None
    if (
        (_names_baseline_row(first) or reproduced)
        and not ARROW_PAIR.search(first)
        and not FROM_TO.search(first)
    ):
        # a baseline states the configuration as it is: its values are current, kept or not,
        # including those named by the words around them ("6-layer GPT, dim=384, 6 heads")
        body = _parse_clean(REPRODUCE.sub(" ", BASELINE.sub(" ", text)), rules, {})
        stated = list(settings) + [v for v in body.settings if v not in settings]
        primary = (body.parameter, body.from_value, body.to_value)
        if body.parameter and (body.from_value or body.to_value) and primary not in stated:
            stated.append(primary)
        current = tuple((name, after or before, "") for name, before, after in stated)
        return ParsedChange("other", "other", "", "", "", current)

    # A clause changes its head mention when the mention carries a value, or the clause has a verb.
    spans = [
        (m.start, m.end)
        for m in _find_mentions(text, rules)
        if m.term.category != "other" and not m.term.is_pattern
    ]
    # a verb inside a longer named thing is not a verb: "skip connections", "drop path"
    verbs_all = [
        v
        for v in _direction_words(text, rules)
        if v[1] in ("increase", "decrease")  # "fewer layers": a comparative still says which way
        or not any(s <= v[0] < e and e - s > len(v[2]) for s, e in spans)
    ]
    proposals: list[tuple[str, Mention | None, Change | None, Clause]] = []
    restating: list[tuple[str, Mention | None, Change | None, Clause]] = []  # only restate config
    fallback: list[tuple[str, Mention, Clause]] = []
    named_values: list[tuple[str, str, str]] = []  # values linked to a named thing, for the tracker
    for clause in clauses:
        mentions = [
            Mention(m.start + clause.start, m.end + clause.start, m.term)
            for m in _find_mentions(clause.text, rules)
        ]
        mentions = [m for m in mentions if not _is_context(text, m)]
        local_changes = [c for c in all_changes if clause.start <= c.position < clause.end]
        clause_verbs = [v for v in verbs_all if clause.start <= v[0] < clause.end]
        outside = [m for m in mentions if _outside_brackets(text, m.start)]
        stated_outside = any(
            _outside_brackets(text, c.position) and (c.explicit_pair or c.key_start != c.position)
            for c in local_changes
        )
        if not outside and not stated_outside:
            outside = mentions  # only the brackets name anything: "(halve embedding LR)"
        groups = _groups(text, outside)
        heads = [_head_of(g, rules) for g in groups]
        linked = _attach(local_changes, groups, text)
        detail_from = _detail_start(text, clause)
        counted = False
        restated: set[int] = set()  # indices into this clause's heads (never id(): ids are reused)
        for index, head in enumerate(heads):
            change = linked.get(index)
            valued = change is not None or bool(re.search(r"\d", text[head.start : head.end]))
            if (
                change is not None
                and head.term.parameter
                and change.key_start == change.position  # not an explicit KEY=V
                and _directly_names(text, head, change)
            ):
                change.parameter = head.term.parameter
            parameter = change.parameter if change and change.parameter else head.term.parameter
            if change is not None and parameter and not change.parameter:
                named_values.append((parameter, change.from_value, change.to_value))
            # a term without a parameter of its own is kept under the name the row writes
            written = parameter or (
                parameter_name(text[head.start : head.end], rules)
                if change is not None and _directly_names(text, head, change)
                else ""
            )
            if change and written and _same_as_config(change, written, config):
                restated.add(index)
                continue  # restates the kept configuration: not a change
            if head.start >= detail_from and heads[0].start < detail_from:
                continue  # "add a block with 256 filters": the filters are a detail of the block
            if valued or (not counted and clause_verbs):
                proposals.append((head.term.category, head, change, clause))
                counted = True
        fresh = [h for i, h in enumerate(heads) if i not in restated]
        if fresh:
            fallback.append((fresh[0].term.category, fresh[0], clause))
        if not counted and not heads and (local_changes or clause_verbs):
            # "gamma=0.99 n_envs=16" with gamma already 0.99: the setting that moves is the change
            moving = [
                c
                for c in local_changes
                if not (c.parameter and _same_as_config(c, c.parameter, config))
            ]
            strongest = sorted(moving or local_changes, key=lambda c: -c.strength)
            chosen = strongest[0] if strongest else None
            if moving or clause_verbs or not local_changes:
                proposals.append(("other", None, chosen, clause))
            else:
                restating.append(("other", None, chosen, clause))

    proposals = proposals or restating
    settings = stated_settings(all_changes, text, rules)  # now with the names linked above
    settings += tuple(v for v in named_values if v not in settings)
    named = [p for p in proposals if p[0] != "other"]
    joined = _joined_changes(text, all_changes, config, rules, loose)
    if joined and len({p[0] for p in named}) < 2:
        # "batch=128+train_freq=2+alpha=1.0": changes joined by "+" are changes made together
        alone = None
        if loose and not _joined_changes(text, all_changes, config, rules, loose=False):
            alone = _parse_statement(text, rules, config, loose=False)
        return ParsedChange(
            "multiple", "other", "", "", "", settings, parts=tuple(joined), alone=alone
        )
    if len({p[0] for p in named}) >= 2:
        parts = tuple(
            _finish(cat, m, c, cl, clauses, text, rules, config, verbs_all, settings)
            for cat, m, c, cl in named
        )
        return ParsedChange("multiple", "other", "", "", "", settings, parts=parts)
    change: Change | None
    named_fallback = [f for f in fallback if f[0] != "other"]
    if named:
        category, mention, change, clause = named[0]
    elif named_fallback and all(p[1] is None and _bare(p[2]) for p in proposals):
        category, mention, clause = named_fallback[0]
        change = None
    elif proposals:
        category, mention, change, clause = proposals[0]
        if (
            mention is None
            and _bare(change)
            and change
            and not _outside_brackets(text, change.position)
        ):
            change = None  # "buffer reuse in f (avoid 100K allocs)": a number in an aside
        elif mention is None and _bare(change) and change and _in_compound(text, change):
            change = None  # "depth-3 negamax search": the number is part of the thing's name
    elif fallback:
        category, mention, clause = fallback[0]
        change = None
    else:
        direction = "add" if _names_a_new_thing(text) else "other"
        if direction == "add" and _instead(text, verbs_all):
            direction = "replace"  # "use 4-ary heaps for the queue instead of binary heaps"
        option = _is_option(text[: _detail_start(text, clauses[0])], rules)
        if option and not NOT_NEW.search(text):
            # "BM25 first stage", "dual simplex": a method named alone replaces the one in use
            return ParsedChange("other", "replace", "", "", option, settings)
        switched = SWITCHED.search(text)
        if switched and re.search(r"[A-Za-z]", text[: switched.start()]):
            direction = SWITCH_WORDS[switched.group(1).lower()]  # "presolve off", "cuts on"
        return ParsedChange("other", direction, "", "", "", settings)
    parsed = _finish(
        category, mention, change, clause, clauses, text, rules, config, verbs_all, settings
    )
    if parsed.direction == "other" and parsed.category != "multiple":
        return _one_way_parts(text, parsed, rules, config)
    return parsed


def _in_compound(text: str, change: Change) -> bool:
    """True when a bare number opens a hyphenated modifier ("3-way ensemble", "4-buffer scatter",
    "2-pass shared weights"): it names the thing, it is no value set ("ResNet-32" is one)."""
    end = change.position + len(change.to_value)
    return re.match(r"-[A-Za-z]{2}", text[end : end + 3]) is not None


def _one_way_parts(
    text: str, parsed: ParsedChange, rules: Rules, config: Mapping[str, str]
) -> ParsedChange:
    """A row of parts joined by " + " whose only stated direction is one way ("persistent_workers +
    prefetch_factor=4": a switch added, a value of unknown direction set with it) goes that way,
    by the part that states it, when every part is of the row's category or of none."""
    cuts = _plus_cuts(text)
    if not cuts:
        return parsed
    parts = [_parse_statement(text[a:b].strip(), rules, config) for a, b in _spans(text, cuts)]
    if any(p.category not in (parsed.category, "other") for p in parts):
        return parsed
    ways = {p.direction for p in parts} - {"other"}
    if len(ways) != 1:
        return parsed
    way = ways.pop()
    chosen = next(p for p in parts if p.direction == way)
    if chosen.category != parsed.category:
        return parsed  # "GBR depth 3 + crash filter": the filter added is not the depth set
    settings = parsed.settings + tuple(v for v in chosen.settings if v not in parsed.settings)
    return dataclasses.replace(chosen, settings=settings)


# A "+" joining two changes: "a=1 + b=2", "batch=128+alpha=1.0" (not "+1 layer", "+50%").
PLUS_JOIN = re.compile(r"\s\+\s|(?<=[A-Za-z0-9])\+(?=[A-Za-z])")


def _plus_cuts(text: str) -> list[re.Match[str]]:
    """The top-level "+" joins of a description (none inside brackets)."""
    return [m for m in PLUS_JOIN.finditer(text) if _outside_brackets(text, m.start())]


def _spans(text: str, cuts: list[re.Match[str]]) -> list[tuple[int, int]]:
    """(start, end) of each part between the cuts."""
    starts = [0, *(m.end() for m in cuts)]
    ends = [*(m.start() for m in cuts), len(text)]
    return list(zip(starts, ends, strict=True))


def _joined_changes(
    text: str, changes: list[Change], config: Mapping[str, str], rules: Rules, loose: bool = True
) -> list[ParsedChange]:
    """The parts of a description cut at top-level "+" when at least two of them are different
    changes; [] otherwise. A part joined by a spaced " + " ("2-layer encoder + final LayerNorm")
    counts by the category it names; a part joined by a bare "+" ("batch=128+alpha=1.0") counts
    only when it sets a parameter explicitly (KEY=V or A->B) to a value not already in force, so
    "MSE+all features" (one thing named in two words) stays one change. Two parts of one category
    ("feature crosses + log features") are one change, and so are settings of one category.

    `loose` (issue 13, fifth pass) also counts two kinds of spaced part of no category: one
    that sets a name from A to B ("+ finetune temp 0.02->0.05"), and one opening with a verb of
    change ("add X pairs + ...") when another part counts; ParsedChange.alone keeps the strict
    reading for logs that are not ML training."""
    cuts = _plus_cuts(text)
    if not cuts:
        return []
    spaced = [m.group().strip() != m.group() for m in cuts]
    parts: list[tuple[int, ParsedChange]] = []
    acted: list[tuple[int, ParsedChange]] = []  # of no category, stated by a verb ("add X pairs")
    seen: set[str] = set()
    for index, (start, end) in enumerate(_spans(text, cuts)):
        # a part is joined by a spaced "+" when the "+" before or after it is spaced
        by_space = (index > 0 and spaced[index - 1]) or (index < len(cuts) and spaced[index])
        setting = next(
            (
                c
                for c in changes
                if start <= c.key_start < end
                and c.parameter
                and (c.explicit_pair or c.key_start != c.position)
                and _outside_brackets(text, c.position)
                and not _same_as_config(c, c.parameter, config)
            ),
            None,
        )
        if setting is None and not by_space:
            continue
        part_text = text[start:end].strip()
        part = _parse_clean(part_text, rules, config)
        if part.category != "other":
            key = part.category
        elif setting is not None:
            key = f"other:{setting.parameter}"
        elif loose and by_space and part.parameter and part.from_value and part.to_value:
            key = f"other:{part.parameter}"  # "... + finetune temp 0.02->0.05": a name set A->B
        else:
            if (
                loose
                and by_space
                and part.direction != "other"
                and _opens_with_verb(part_text, rules)
            ):
                acted.append((start, part))  # "add X pairs + ...": a change its verb states
            continue
        if key not in seen:
            seen.add(key)
            parts.append((start, part))
    if parts and acted:
        parts += acted  # a verb-stated change joined to a change of a setting: made together
    return [part for _, part in sorted(parts, key=lambda p: p[0])] if len(parts) >= 2 else []


def _opens_with_verb(text: str, rules: Rules) -> bool:
    """True when a text opens with a verb of change ("add ...", "drop ..."), not a comparative."""
    words = _direction_words(text[:40], rules)
    return bool(words) and words[0][0] == 0 and not COMPARATIVE.fullmatch(words[0][2])


# Words of a row that re-checks what is there rather than proposing something new.
NOT_NEW = re.compile(
    r"\b(?:seeds?|confirm\w*|verif\w*|iterations?|reproduc\w*|re-?runs?|diagnostics?|sanity|"
    r"repeat\w*|retry|retries|noise|variance|checks?|current|best|(?<![.\w])runs?)\b",
    re.I,
)


def _names_a_new_thing(text: str) -> bool:
    """True when a description with no verb, value or category names something of several
    words ("crash regime filter", "scratch buffer reuse"): in a log, naming a technique proposes
    adding it. Short labels ("H8: phase diagram") and re-runs stay `other`."""
    if NOT_NEW.search(text) or SWEEP.search(text):
        return False
    return len(re.findall(r"[A-Za-z][A-Za-z'\-]+", text)) >= 3


def _bare(change: Change | None) -> bool:
    """No value, or a bare number of nothing named ("..., 1373 steps"): context, not a change."""
    return change is None or (change.strength == 0 and not change.parameter)


CONTEXT_BEFORE = re.compile(r"\b(?:at|during|when|under|whenever)\s+(?:the\s+)?$", re.I)


def _is_context(text: str, mention: Mention) -> bool:
    """A mention that sets the scene rather than names the change: "at batch 2^13", "depth>=6"."""
    return bool(
        CONTEXT_BEFORE.search(text[max(0, mention.start - 20) : mention.start])
        or re.match(r"\s*(?:[<>]=?|≥|≤)", text[mention.end :])
    )


def _directly_names(text: str, head: Mention, change: Change) -> bool:
    """True when the value follows the mention with nothing but "=", ":" or spaces between."""
    between = text[head.end : change.key_start if change.key_start > head.end else change.position]
    return head.end <= change.position and re.fullmatch(r"[\s=:]*", between) is not None


def _detail_start(text: str, clause: Clause) -> int:
    """Where a clause's details begin ("... with 256 filters"); the clause end when it has none."""
    found = re.search(r"\s(?:with|using|via|at|of|in)\s", text[clause.start : clause.end], re.I)
    return clause.start + found.start() if found else clause.end


# "BB 30 too strict", "position 0.14 same score": degree words and comparatives after a setting
# judge it; a noun after the number is what it counts ("top 5 features").
JUDGED_AFTER = re.compile(
    r"\s*(?:$|[-—–,;:(!]|(?:too|same|slightly|even|still|much|very|no|not|marginal\w*|"
    r"more|less|fewer|[a-z]{2,}er)\b)",
    re.I,
)


def _known_move(
    settings: tuple[tuple[str, str, str], ...],
    parameter: str,
    category: str,
    config: Mapping[str, str],
    rules: Rules,
) -> tuple[str, str, str] | None:
    """(parameter, kept value, new value) of another setting of the row, of the same category,
    that moves a value the configuration knows up or down; None when there is none."""
    for name, before, after in settings:
        if name == parameter or before or not after:
            continue
        known = known_value(name, config, after)
        if known is None or compare(known, after) not in ("increase", "decrease"):
            continue
        keys = [name, *(k for k in config if set(name.split("_")) <= set(k.split("_")))]
        named = [
            m.term.category
            for key in keys
            for m in _find_mentions(key.lower().replace("_", " "), rules)
        ]
        if category in named:
            return (name, known, after)
    return None


def _opening_setting(text: str, change: Change) -> bool:
    """True when the statement opens with a name and its new value, and says nothing else of the
    change ("BB 30", "lookback window 20 - too slow"): a setting whose name the rules do not know,
    remembered so that the next row writing the same name gets a direction."""
    if change.explicit_pair or change.key_start != change.position:
        return False
    name = text[: change.position]
    if not re.fullmatch(r"\s*[A-Za-z][\w\-]*(?:\s+[A-Za-z][\w\-]*){0,2}\s*[=:]?\s*", name):
        return False
    if ROW_INDEX.match(text.strip()) or NOT_NEW.search(name) or BASELINE.search(name):
        return False
    return JUDGED_AFTER.match(text, change.position + len(change.to_value)) is not None


def _finish(
    category: str,
    mention: Mention | None,
    change: Change | None,
    clause: Clause,
    clauses: list[Clause],
    text: str,
    rules: Rules,
    config: Mapping[str, str],
    verbs_all: list[tuple[int, str, str]],
    settings: tuple[tuple[str, str, str], ...],
) -> ParsedChange:
    """Direction, parameter and values of the chosen change."""
    parameter = ""
    if change is not None and change.parameter:
        parameter = change.parameter
    elif mention is not None and mention.term.parameter:
        parameter = mention.term.parameter
    elif change is not None and (category == "other" or category in rules.user_categories):
        parameter = noun_phrase_before(text, change.position, rules)
    elif mention is not None and (
        (mention.term.is_pattern and re.search(r"\d", text[mention.start : mention.end]))
        or (
            change is not None
            and not change.explicit_pair
            and re.fullmatch(r"[\w.%^\-]+\s+", text[change.position : mention.start]) is not None
        )
        or (
            change is not None
            and change.explicit_pair
            and re.fullmatch(r"\s{1,2}", text[_pair_end(text, change) : mention.start]) is not None
        )
    ):
        # "16 refine layers", "10k samples": the counted noun names the parameter
        words = re.sub(r"[^A-Za-z]+", " ", text[mention.start : mention.end]).split()
        words = [
            w
            for w in words
            if len(w) > 1 and w.lower() not in STOP and w.lower() not in COUNT_QUALIFIERS
        ]
        if words and len("".join(words)) >= 3:
            parameter = parameter_name("_".join(words), rules)
    if (
        not parameter
        and change is not None
        and mention is not None
        and mention.end <= change.key_start
        and re.fullmatch(r"[A-Za-z\s\-=:]{0,30}", text[mention.end : change.key_start])
    ):
        # "increase the FC hidden layer size from 256 to 512": the words before the value name it
        parameter = noun_phrase_before(text, change.key_start, rules)
    numeric_change = change is not None and to_number(change.to_value) is not None
    explicit_key = change is not None and change.key_start != change.position
    if mention is not None and numeric_change and not explicit_key:
        # "lm_head WD", "x0_lambdas init": an identifier qualifying the named thing is part of its name
        qualifier = re.search(
            r"(?<![\w.])([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+)\s$", text[: mention.start]
        )
        written = re.sub(r"[^A-Za-z0-9]+", "_", text[mention.start : mention.end]).strip("_")
        if qualifier and written and not re.search(r"\d", written):
            parameter = f"{qualifier.group(1)}_{written}".upper()
    from_value = change.from_value if change else ""
    to_value = change.to_value if change else ""

    # Direction: explicit pair > verb > known current value > verb in brackets > multiplier > default.
    clause_verbs = [v for v in verbs_all if clause.start <= v[0] < clause.end] or [
        v for v in verbs_all if any(c.start <= v[0] < c.end for c in clauses)
    ]
    plain_verbs = [v for v in clause_verbs if _outside_brackets(text, v[0])]
    strong = [v for v in plain_verbs if v[2] not in WEAK_VERBS]
    plain_verbs = strong + [v for v in plain_verbs if v[2] in WEAK_VERBS]
    bracket_verbs = [v for v in clause_verbs if not _outside_brackets(text, v[0])]
    option = _is_option(text[clause.start : _detail_start(text, clause)], rules)
    if option and not _option_fits(option, category, rules):
        option = ""
    direction = ""
    if change is not None and change.from_value:
        direction = compare(change.from_value, change.to_value)
        if direction == "replace" and change.to_value.strip().lower() in SWITCH_WORDS:
            direction = SWITCH_WORDS[change.to_value.strip().lower()]  # "EMA on -> off"
        mixed = (to_number(change.from_value) is None) != (to_number(change.to_value) is None)
        if direction == "other" and mixed:
            direction = ""  # "X 0.5 -> Y": a number against a word says nothing; the verb decides
        early = [v for v in plain_verbs if v[0] < change.key_start and v[1] in ("add", "remove")]
        if direction == "replace" and early and early[0][2] not in WEAK_VERBS:
            direction = early[0][1]  # "disable VH->Low rescue": the pair names the thing removed
    if not direction and change is not None and SWEEP.search(text):
        direction = "other"
    if not direction and change is not None and not explicit_key:
        direction = _signed_delta(text, change)  # "all LRs -30%", "depth +2", "lr up 20%"
    if not direction and plain_verbs:
        direction = _verb_direction(plain_verbs[0], change, parameter, option, config)
    if not direction and change is not None:
        direction = _direction_from_value(change, parameter, config, text)
    if not direction and bracket_verbs:
        direction = _verb_direction(bracket_verbs[0], change, parameter, option, config)
    if not direction:
        direction = _bracket_delta(text[clause.start : clause.end])
    if not direction and change is not None:
        if mention is not None and _is_technique(mention, text, rules):
            # "dropout=0": a usually-absent technique set to nothing is turned off
            direction = "remove" if to_number(change.to_value) == 0 else "add"
        elif (
            parameter
            and change.strength >= 1
            and to_number(change.to_value) == 0
            and not NOT_NEW.search(parameter.replace("_", " "))  # "seed=0" names, it does not size
        ):
            # "WEIGHT_DECAY=0", "prefetch to 0": whatever it was, a setting of a size or a
            # rate taken to zero went down
            direction = "decrease"
        else:
            direction = "other"
    if not direction:
        bare_quantity = (
            mention is not None
            and bool(mention.term.parameter)
            and (category in rules.quantities or category == "learning_rate")
        )
        if (option or _names_a_form(text, rules)) and category != "other":
            direction = "replace"
        elif mention is not None and category != "other" and not bare_quantity:
            direction = (
                "add"  # a technique named with no verb or value: "SmearGate", "weight tying"
            )
        elif category == "other" and change is None and _names_a_new_thing(text):
            direction = "add"  # "depth-3 negamax search at eval"
        else:
            direction = "other"  # "depth" alone says nothing about which way
    if not parameter and direction in ("increase", "decrease") and plain_verbs:
        # "Increasing the ATR rising lookback period may help": the verb's object names it
        verb_at, verb_direction, verb = plain_verbs[0]
        if verb_direction == direction:
            parameter = noun_phrase_after_verb(text, verb_at + len(verb), rules)
    if not parameter and not to_value and direction in ("add", "remove") and mention is not None:
        # "EMA weight averaging (decay=0.99)": the setting in brackets after the thing added
        setting = BRACKET_SETTING.match(text, mention.end)
        if setting:
            words = re.sub(r"[^A-Za-z0-9]+", "_", text[mention.start : mention.end]).strip("_")
            parameter = parameter_name(f"{words}_{setting.group('key')}", rules)
            to_value = setting.group("val")
    if not parameter and change is not None and not change.explicit_pair and plain_verbs:
        # "add 3 retries", "Add 5% viewBox padding": the noun the verb's number counts names it
        verb_at, _, verb = plain_verbs[0]
        if re.fullmatch(r"\s+", text[verb_at + len(verb) : change.position]):
            after = _pair_end(text, change)
            extra = re.match(r"\s+(?:more|extra|additional|fewer|less)\b", text[after:], re.I)
            parameter = noun_phrase_after_verb(text, after + (extra.end() if extra else 0), rules)
    if direction == "add" and _instead(text, verbs_all):
        direction = "replace"  # "use hole moves in the push instead of repeated swaps"
    switched = SWITCHED.search(text[clause.start : clause.end])
    if switched and direction in ("add", "other") and change is None:
        direction = SWITCH_WORDS[switched.group(1).lower()]  # "label smoothing off", "EMA on"
    if (
        not parameter
        and mention is not None
        and direction in ("add", "remove")
        and category not in ("other", "multiple")
        and not mention.term.is_pattern
        and _names_a_switch(text, mention, rules)
    ):
        # "enable cudnn benchmark", "gradient checkpointing off": the switch is named by its words
        parameter = parameter_name(_span_norm(text, mention).replace(" ", "_"), rules)
    uncounted = ""
    if category in rules.quantities and direction in ("add", "remove"):
        uncounted = direction
        direction = "increase" if direction == "add" else "decrease"  # "add a fourth block"
    if direction == "replace" and option and not to_value:
        to_value = option
    if not parameter and direction == "replace" and option and category in rules.default_parameters:
        parameter = rules.default_parameters[category]
    if (
        direction == "other"
        and change is not None
        and category not in ("other", "multiple")
        and not SWEEP.search(text)
    ):
        moved = _known_move(settings, parameter, category, config, rules)
        if moved is not None:
            # "DEPTH=12 BATCH=256 TOTAL=2^19": of the settings of one category, the one whose
            # kept value is known says which way the row moves it
            parameter, from_value, to_value = moved
            direction = compare(from_value, to_value)
    if category == "other" and direction == "other":
        if change is not None and parameter and _opening_setting(text, change):
            # "BB 30", "position 0.14": no direction yet, but the log's next rows are read against it
            settings = settings + ((parameter, "", change.to_value),)
        parameter, from_value, to_value = "", "", ""
    known = known_value(parameter, config, to_value)
    if (
        known
        and to_value
        and not from_value
        and direction in ("increase", "decrease", "replace")
        and compare(known, to_value) == direction
    ):
        from_value = known  # the text gives only the target: the kept value is where it starts
    stated = (parameter, from_value, to_value)
    if change is not None and parameter and (from_value or to_value) and stated not in settings:
        settings = settings + (stated,)
    ambiguous = (
        mention is not None
        and category not in ("other", "multiple")
        and category not in rules.user_categories
        and _span_norm(text, mention) in rules.ambiguous_words
    )
    if ambiguous and plain_verbs and plain_verbs[0][2] in BUILDING_VERBS and not change:
        # "Bind recognized length, depth, and height parameter names": software being built,
        # the ML-sounding word is what it handles
        return ParsedChange("other", "add", "", "", "", settings)
    return ParsedChange(
        category,
        direction,
        parameter,
        from_value,
        to_value,
        settings,
        ambiguous=ambiguous,
        uncounted=uncounted,
    )


# Words that end the object of a verb ("lookback period may help", "threshold to avoid").
OBJECT_END = frozenset(
    {"may", "might", "could", "should", "will", "would", "can", "is", "was", "which", "that"}
    | {"vs", "than", "per", "as", "via", "using", "when", "if", "while", "but", "so"}
)


def noun_phrase_after_verb(text: str, position: int, rules: Rules) -> str:
    """The object of an increase / decrease verb, up to four words ("the ATR rising lookback
    period" -> ATR_RISING_LOOKBACK_PERIOD); "" when it is not a plain noun phrase."""
    spoken = {w for ws in rules.direction_words.values() for w in ws}
    picked: list[str] = []
    for word in re.findall(r"\S+", text[position:]):
        lower = word.lower()
        if not picked and lower in ("the", "a", "an", "our", "its", "their", "this"):
            continue
        if not picked and lower in ("number", "amount", "count", "of"):
            continue  # "the number of retries" -> RETRIES
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", word):
            break
        if lower in STOP or lower in OBJECT_END or lower in spoken:
            break
        picked.append(word)
        if len(picked) == 4:
            break
    return parameter_name("_".join(picked), rules) if picked else ""


# "(decay=0.99)", "(p = 0.1)" a few words after a named thing: the setting it is added with.
BRACKET_SETTING = re.compile(
    rf"[A-Za-z\s\-]{{0,30}}\(\s*(?P<key>[A-Za-z][A-Za-z0-9_]*)\s*=\s*(?P<val>{NUM})\s*[),;]"
)


# A switch's position written as the new value or after the thing switched.
SWITCH_WORDS = {
    "off": "remove",
    "disabled": "remove",
    "false": "remove",
    "on": "add",
    "enabled": "add",
    "true": "add",
}
SWITCHED = re.compile(r"\b(off|disabled|on|enabled)\s*$", re.I)
RECOMPUTE_VERBS = {"change", "changed", "set"}
WEAK_VERBS = {"use", "using", "apply", "applied", "adopt", "include", "included"}
BRACKET_DELTA = lazy_compile(
    r"\((?:[^()]*[\s,;])?(?P<sign>[+\-−])\d+(?:\.\d+)?\s+[a-z]", re.I, needs=("(",)
)


SIGNED_DELTA = re.compile(r"[+\-−]\s?\d+(?:\.\d+)?\s?%?")
UP_DOWN = re.compile(
    r"(?<!warm[\s\-])(?<!cool[\s\-])(?<!ramp\s)(?<!wind\s)\b(?P<way>up|down)\s+(?:by\s+)?$", re.I
)


def _signed_delta(text: str, change: Change) -> str:
    """A value written as a signed step ("+2", "-30%") or after "up" / "down" ("up 20%", "down by
    2x") says which way the named thing moves."""
    value = change.to_value.strip()
    glued = change.position > 0 and text[change.position - 1].isalnum()  # "exp11+12": a tag
    if SIGNED_DELTA.fullmatch(value) and not glued:
        return "increase" if value.startswith("+") else "decrease"
    said = UP_DOWN.search(text[max(0, change.position - 12) : change.position])
    if said and to_number(value) is not None:
        return "increase" if said.group("way").lower() == "up" else "decrease"
    return ""


INSTEAD_WORDS = frozenset({"instead of", "rather than", "in place of"})
RATIONALE = re.compile(r"\b(?:so|because|since|hoping|whereas|given|which)\b", re.I)


def _instead(text: str, verbs: list[tuple[int, str, str]]) -> bool:
    """True when the statement sets its new thing against the old one ("X instead of Y", "use X
    rather than Y") and nothing but a weak verb ("use", "apply") or no verb comes before: the old
    thing is replaced, not added to, even when the "instead" sits past a clause's end."""
    plain = [v for v in verbs if _outside_brackets(text, v[0])]
    for at, _, word in plain:
        if word in INSTEAD_WORDS:
            return not RATIONALE.search(text[:at])  # "..., so the volume tracks X instead of Y"
        if word not in WEAK_VERBS:
            return False
    return False


def _names_a_switch(text: str, mention: Mention, rules: Rules) -> bool:
    """True for a mention that names one technique ("cudnn benchmark", "SmearGate"), not a whole
    area a single common word stands for ("attention", "cache", "warmup")."""
    span = _span_norm(text, mention)
    written = text[mention.start : mention.end]
    return " " in span or (written != written.lower() and span not in rules.ambiguous_words)


def _bracket_delta(text: str) -> str:
    """A signed count in brackets, "(10.67M params, +1 layer)", says which way the quantity moved."""
    found = BRACKET_DELTA.search(text)
    if not found:
        return ""
    return "increase" if found.group("sign") == "+" else "decrease"


def _names_a_form(text: str, rules: Rules) -> bool:
    """True when the text names a shape or arrangement ("schedule", "pattern", "-style")."""
    norm = _norm_for_match(text)
    return any(
        word.split(" ")[0] in norm and _word_regex(word).search(norm) for word in rules.form_words
    )


def _option_fits(option: str, category: str, rules: Rules) -> bool:
    """An option word speaks for a category it names ("GELU" for activation), or for a change of none."""
    named = {m.term.category for m in _find_mentions(option, rules)}
    return category in named or (not named and category in ("other", "architecture_other"))


def _verb_direction(
    verb: tuple[int, str, str],
    change: Change | None,
    parameter: str,
    option: str,
    config: Mapping[str, str],
) -> str:
    """The direction a verb signals, refined by what it acts on ("use GELU" replaces; "change X to 8" compares)."""
    _, direction, word = verb
    if direction == "add" and word in ("use", "using", "apply", "applied", "adopt") and option:
        return "replace"
    if word in RECOMPUTE_VERBS and change is not None and to_number(change.to_value) is not None:
        return _direction_from_value(change, parameter, config) or "other"
    return direction
