"""Values a description states: pairs (A->B, from A to B), assignments (KEY=V), targets (to V), numbers,
and the parameter names that go with them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nrr_stats.parser.lazy_regex import lazy_compile
from nrr_stats.parser.rules import Rules
from nrr_stats.parser.values import to_number

NUM = r"[-+]?(?:\d+(?:[x×]\d+)+(?![\w.])|\d+(?:[.,]\d+)*(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?(?:(?:\^|\*\*)\d+)?(?:[kmbgKMBG](?![a-zA-Z]))?(?:x(?![a-zA-Z]))?%?(?:-way)?"


TUPLE = r"\((?:[^()]{1,60})\)"


TOKEN = rf"(?:{TUPLE}|[^\s,;:()\[\]]*[^\s,;:()\[\].])"


ARROW = r"\s*(?:->|→|=>|⇒|—>|–>|-->|⟶|➝|➔)\s*"


ARROW_PAIR = re.compile(rf"(?P<a>{TOKEN}){ARROW}(?P<b>{TOKEN})")


FROM_TO = lazy_compile(
    rf"\bfrom\s+(?:(?P<n>{NUM})\s+(?:[a-z]+\s+)?|(?P<w>{TOKEN}(?:\s[A-Za-z]+)?)\s+)to\s+(?P<b>{TOKEN})",
    re.I,
    needs=("from",),
)


NUM_TO_NUM = lazy_compile(
    rf"(?<![\w.])(?P<a>{NUM})\s+to\s+(?P<b>{NUM})(?![\w.])", re.I, needs=("to",)
)


NUM_FROM_NUM = lazy_compile(
    rf"(?<![\w.])(?P<b>{NUM})(?:\s+[a-z]+(?=,|\s\())?\s*(?:\s|,\s|\(\s*)(?:[a-z]+\s+)?"
    # "0.02 (was 0.04)", "0.02, down from 0.04", "10 (baseline 8)", "0.05 (prev 0.1)"
    r"(?:from|vs\.?|versus|was|default|baseline|prev|previous|old|orig|original|formerly)"
    rf"\s*[:=]?\s+(?P<a>{NUM})(?![\w.])",
    re.I,
    needs=("from", "vs", "versus", "was", "default", "baseline", "prev", "old", "orig", "formerly"),
)


INSTEAD = lazy_compile(
    rf"(?P<b>{TOKEN})(?:\s+(?P<b2>[A-Za-z][\w.\-]*))?\s+(?:instead\s+of|rather\s+than|in\s+place\s+of)"
    rf"\s+(?P<a>{TOKEN})",
    re.I,
    needs=("instead", "rather", "place"),
)
# "6 layers -> 8 layers", "4 heads to 8": a count with its unit on either side of the change
UNIT_PAIR = re.compile(
    rf"(?<![\w.])(?P<a>{NUM})\s+(?P<u>[A-Za-z][A-Za-z\-]*)(?:{ARROW}|\s+to\s+)(?P<b>{NUM})"
    r"(?:\s+(?P=u)\b)?(?![\w.])",
    re.I,
)
# "try Y instead of X", "use Y instead of X": the verb is not the new value.
LEAD_VERBS = frozenset(
    {"try", "trying", "tried", "use", "using", "used", "switch", "switched", "adopt", "apply"}
    | {"pick", "choose", "prefer", "select", "keep", "go", "test", "testing"}
)
_PHRASE = r"[^\s,;:()]+(?:\s+(?!(?:with|by|for|to|and|in|on|at|of|so|because)\b)[^\s,;:()]+){0,2}?"
# "replace X with Y", "swap X for Y": from X to Y (X may be a short phrase: "cosine schedule").
REPLACE_WITH = lazy_compile(
    r"\b(?:replace[ds]?|replacing|swap(?:s|ped|ping)?|substitute[ds]?)\s+(?:the\s+|a\s+|an\s+)?"
    rf"(?P<a>{_PHRASE})\s+(?:with|by|for)\s+(?:the\s+|a\s+|an\s+)?"
    r"(?P<b>[^\s,;:()]+(?:\s+(?!(?:with|by|for|to|and|in|on|at|of|so|because|instead)\b)"
    r"[A-Za-z][\w\-]*)?)",
    re.I,
    needs=("replac", "swap", "substitut"),
)


ASSIGN = re.compile(
    r"(?<![\w.])(?P<key>_*[A-Za-z][\w.]*(?:\[\w+\])?)\s*(?:=|:=)\s*"
    r"(?P<val>\[[^\]]{0,200}\]|\([^()]{0,60}\)|[-+]?[^\s,;()\[\]+]+)"
)


TO_VALUE = re.compile(rf"\b(?:to|at|of|=)\s+(?P<val>{NUM})(?![\w.])", re.I)


# "LR x0.5", "width ×2": a multiplier written before its factor
MULTIPLIER = re.compile(
    r"(?<![\w.])(?P<val>[x×]\d+(?:\.\d+)?)(?![\w.])"
    # "lr*2", "lr * 0.5", "n_embd/2": an operator applied to the named value
    r"|(?<=[A-Za-z_)])\s?(?P<op>[*/]\s?\d+(?:\.\d+)?)(?![\w.])"
    # "scale lr by 0.5", "multiply the LR by 2"
    r"|\b(?:scale[ds]?|scaling|multipl(?:y|ied|ies|ying))\s+(?:[^\s,;]+\s+){0,3}?by\s+"
    r"(?P<by>\d+(?:\.\d+)?)x?(?![\w.%])",
    re.I,
)


BARE_NUM = re.compile(rf"(?<![\w.^/<>])(?<![<>]=)(?P<val>{NUM}(?:/{NUM})*)(?![\w.^/])")


IDENTIFIER = re.compile(r"^_*([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[A-Z][A-Z0-9]+)(?:\[\w+\])?$")


# Where a clause stops stating the change and starts giving its reason ("... to improve ...").
MOTIVE = re.compile(
    r"\s(?:(?:in\s+order\s+)?to\s+(?:improve|achieve|allow|provide|potentially|help|make|get|give|see|test|"
    r"check|find|match|fight|prevent|avoid|speed|stabili[sz]e|encourage|compensate|continue|capture|"
    r"balance|leverage|let|maintain|keep|support|recover|preserve|mitigate|counter|exploit|favou?r|"
    r"enable|ensure|smooth|free|save|push|force|align|broaden|focus|reach|fit|learn|squeeze|gain|trade|"
    r"offset|regain|probe|explore|isolate|measure|better|boost|address|reflect|mirror|reduce|remove|"
    r"increase|lower|raise|cut|limit|shorten|lengthen|spend|compare|confirm|verify)\b"
    r"|so\s+that\b|so\b|because\b|since\b|hoping\b|which\b|while\b|whereas\b|given\b|due\s+to\b|after\b|"
    r"(?<!turn\s)(?<!switch\s)(?<!turned\s)(?<!switched\s)on\s+(?!top\b|->|→|=>)|for\s+(?![\d.])|now\s+that\b|but\b|although\b|though\b)",
    re.I,
)


# Small words that never name a parameter.
STOP = frozenset(
    {"the", "a", "an", "of", "to", "from", "in", "on", "at", "by", "for", "with", "and", "all"}
    | {"each", "every", "its", "their", "our", "this", "that", "only", "number", "initial", "new"}
)


def parameter_name(raw: str, rules: Rules) -> str:
    """UPPER_SNAKE name for an identifier or alias as written; "" when it is not one."""
    cleaned = re.sub(r"\[\w*\]$", "", raw.strip()).strip("_ .:")
    alias = rules.parameters.get(re.sub(r"[_\-\s]+", " ", cleaned.lower()))
    if alias:
        return alias
    alias = alias_of(cleaned, rules)
    if alias:
        return alias
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]{0,60}", cleaned):
        return ""
    return re.sub(r"[^A-Z0-9]+", "_", cleaned.upper()).strip("_")


def word_before(text: str, position: int) -> str:
    """The identifier-like word right before a position (skipping "=", ":" and spaces)."""
    match = re.search(r"([A-Za-z_][\w.\[\]]*)[\s=:]*$", text[:position])
    return match.group(1) if match else ""


def noun_phrase_before(text: str, position: int, rules: Rules) -> str:
    """Up to three content words before a value ("raise meta threshold to 0.45" -> META_THRESHOLD)."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9'\-]*|\S+", text[:position])
    picked: list[str] = []
    verbs = {w for ws in rules.direction_words.values() for w in ws}
    for word in reversed(words):
        lower = word.lower()
        if lower in ("to", "from", "=", "at", "of") and not picked:
            continue
        if (
            lower in verbs
            or lower in LEAD_VERBS  # "try EMA instead of SMA": the verb is not a name
            or lower in ("set", "to", "from")
            or not re.fullmatch(r"[A-Za-z][A-Za-z'\-]*", word)
        ):
            if re.search(r"\d", word) and re.search(r"[A-Za-z]", word) and not picked:
                continue  # "15m max hold": a unit-like token next to the value
            if re.search(r"\d", word) and picked and not word.endswith((",", ";")):
                continue  # a value a comma closes ends the phrase: "epochs 80, batch 16"
            break
        if lower in STOP:
            if picked:
                break
            continue
        picked.append(word)
        if len(picked) == 3:
            break
    if not picked:
        return ""
    return parameter_name("_".join(reversed(picked)), rules)


@dataclass
class Change:
    """A value change found in a clause: parameter (maybe ""), from and to as written, and where."""

    parameter: str
    from_value: str
    to_value: str
    position: int
    explicit_pair: bool
    key_start: int = -1
    strength: int = 0  # 3 a pair (A->B), 2 KEY=V, 1 "to V", 0 a bare number

    def __post_init__(self) -> None:
        if self.key_start < 0:
            self.key_start = self.position


def value_changes(text: str, rules: Rules) -> list[Change]:
    """Every stated value in the text: pairs (A->B, from A to B, B instead of A) and targets (K=V, to V)."""
    changes: list[Change] = []
    used: list[tuple[int, int]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in used)

    for pattern in (
        UNIT_PAIR,
        ARROW_PAIR,
        FROM_TO,
        INSTEAD,
        NUM_FROM_NUM,
        NUM_TO_NUM,
        REPLACE_WITH,
    ):
        for match in pattern.finditer(text):
            if not free(match.start(), match.end()):
                continue
            groups = match.groupdict()
            a = (groups.get("a") or groups.get("n") or groups.get("w") or "").strip()
            b = groups["b"].strip()
            if pattern is INSTEAD and groups.get("b2") and b.lower() in LEAD_VERBS:
                b = groups["b2"]
            if pattern is ARROW_PAIR:
                key_match = ASSIGN.fullmatch(a)
                if key_match:
                    a = key_match.group("val")
            if not a or not b or a == b or MOTIVE.match(" to " + b):
                continue
            # "increased atr_lookback by 1 from 3 to 4": the step is not the key
            step = re.search(r"\bby\s+[-+]?[\d.]+[x%]?\s*$", text[: match.start()], re.I)
            key = word_before(text, step.start() if step else match.start())
            if key.lower() in LEAD_VERBS:
                key = ""  # "try EMA crossover instead of SMA": the verb names nothing
            parameter = parameter_name(key, rules) if key else ""
            if parameter and not (
                IDENTIFIER.match(key)
                or re.fullmatch(r"[A-Z]", key)  # "K 200 from 300", "C 0.1 -> 1"
                or key.lower() in rules.parameters
                or alias_of(key, rules)
            ):
                parameter = ""
            if pattern is REPLACE_WITH:
                parameter = ""  # the word before "replace" is not what is replaced
                number = re.search(rf"(?<![\w.]){NUM}$", a)
                if number and to_number(b) is not None:
                    a = number.group(0)  # "replace dropout 0.1 with 0.2"
            used.append((match.start(), match.end()))
            start = match.start("a") if pattern is REPLACE_WITH else match.start()
            changes.append(Change(parameter, a, b, start, True, strength=3))
    for match in ASSIGN.finditer(text):
        if not free(match.start(), match.end()):
            continue
        used.append((match.start(), match.end()))
        changes.append(
            Change(
                parameter_name(match.group("key"), rules),
                "",
                match.group("val"),
                match.start("val"),
                False,
                match.start(),
                strength=2,
            )
        )
    for match in TO_VALUE.finditer(text):
        if free(match.start("val"), match.end("val")):
            used.append((match.start("val"), match.end("val")))
            key = identifier_before(text, match.start())
            changes.append(
                Change(key, "", match.group("val"), match.start("val"), False, strength=1)
            )
    for match in MULTIPLIER.finditer(text):
        if free(match.start(), match.end()):
            used.append((match.start(), match.end()))
            if match.group("by"):
                value, at = f"x{match.group('by')}", match.start("by")
            else:
                name = "val" if match.group("val") else "op"
                value, at = match.group(name).replace(" ", ""), match.start(name)
            changes.append(Change("", "", value, at, False))
    for match in BARE_NUM.finditer(text):
        if free(match.start(), match.end()):
            used.append((match.start(), match.end()))
            key = identifier_before(text, match.start())
            changes.append(Change(key, "", match.group("val"), match.start(), False))
    if any(c.explicit_pair for c in changes):
        # "increased X by 1 from 3 to 4": the step is not a value of X
        changes = [
            c
            for c in changes
            if c.explicit_pair or not re.search(r"\bby\s+$", text[: c.position], re.I)
        ]
    changes.sort(key=lambda c: c.position)
    return changes


def identifier_before(text: str, position: int) -> str:
    """An identifier written right before a value ("INT8_KEEP_FLOAT_MAX_NUMEL to 131072"), upper-cased."""
    found = re.search(
        r"(?<![\w.])_*([A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+)(?:\[\w+\])?\s+(?:to\s+)?$",
        text[:position],
    )
    return found.group(1).upper() if found else ""


def alias_of(word: str, rules: Rules) -> str:
    """The parameter a word is an alias of ("lr" -> LEARNING_RATE); "" when none."""
    lowered = re.sub(r"[_\-]", " ", word.lower())
    return rules.remembered(
        rules.memo,
        lowered,
        lambda: next(
            (
                t.parameter
                for t in rules.terms
                if t.parameter and t.probe in lowered and t.regex.fullmatch(lowered)
            ),
            "",
        ),
    )


def stated_settings(
    changes: list[Change], text: str, rules: Rules
) -> tuple[tuple[str, str, str], ...]:
    found: list[tuple[str, str, str]] = []
    for change in changes:
        parameter = change.parameter or alias_of(word_before(text, change.position), rules)
        if parameter and (change.from_value or change.to_value):
            found.append((parameter, change.from_value, change.to_value))
    return tuple(found)
