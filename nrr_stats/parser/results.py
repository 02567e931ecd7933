"""Remove the words of a description that report a result, so the parse depends on the proposal alone.

Descriptions in real logs are often written after the run ("double width (OOM)", "new best");
EVALUATION.md scrubs such words from the row being predicted, so the parser must ignore them too.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nrr_stats.parser.lazy_regex import lazy_compile
from nrr_stats.parser.rules import Rules, load_rules

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# ASCII text without "(" or "[" holds no group (lazy_regex: "（" is not ASCII)
INNER_GROUP = lazy_compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|（([^（）]*)）", needs=("(", "["))
# Separators between clauses; a result word cuts its clause to the end, never a neighbour (wider
# than parse.CHANGE_CLAUSE_SPLIT: a result often follows ". ", ": " or " - ").
RESULT_CLAUSE_SPLIT = re.compile(r"(;|\s[—–]+\s?|[—–]+\s|\s--+\s|\s-\s|,\s|:\s|\.\s|\|)")
SIGNED_PERCENT = re.compile(r"(?<![\w.])[-+±]\s?\d+(?:\.\d+)?\s?%")
METRIC_FIGURE = re.compile(
    r"\b(?:val[_ ]?bpb|bpb|val[_ ]?loss|val[_ ]?acc(?:uracy)?|accuracy|auc|sharpe|ppl|perplexity|mfu|"
    r"elo|tok/s|tokens?/s(?:ec)?)\s*[:=]?\s*[-+]?\d+(?:\.\d+)?%?(?:\s*(?:->|→|=>)\s*[-+]?\d+(?:\.\d+)?%?)?"
    # a score set by its name ("f1: 0.72") or by a metric ending ("val_f1=0.53", "cv_mse 0.11"),
    # with the figure it is compared with ("vs 0.7664")
    r"|\b(?:f1|mse|mae|rmse|r2|wer|cer|bleu|ndcg|[a-z]\w*_(?:f1|acc|auc|mse|mae|rmse|r2|bpb|sharpe|ndcg))"
    r"(?:@[\d.]+)?(?:\s*[:=]\s*|\s+)-?\d+(?:\.\d+)?%?(?:@[\d.]+)?"
    r"(?:\s*(?:->|→|=>|vs\.?|versus)\s*-?\d+(?:\.\d+)?%?(?:\s+(?:baseline|best|before)\b)?)?",
    re.IGNORECASE,
)
SIGNED_SCORE = re.compile(
    r"(?<![\w.])[-+±]\s?\d+(?:\.\d+)?\s?(?:elo|bpb|pts|points)\b"
    r"|\b\d+W(?:/\d+D)?/\d+L\b",  # game results: "3W/2D/5L"
    re.I,
)
COMMIT_REF = re.compile(r"@\s?[0-9a-f]{6,40}\b")
LEADING_TAG = re.compile(r"^\s*(?:\[[^\]]*\]\s*|[\w\-]*\d[\w\-]*[:.)]?\s*)+", re.I)
MOTIVE_GROUP = re.compile(r"^\s*(hypothesis|evidence|expected|target|note|why|rationale)\b", re.I)


# "all LRs -30%", "stop threshold +5%": a signed percent right after the thing named first is the
# change itself; anywhere else ("...: throughput -15%", "— p99 +8%") it reports a result.
NAMED_BEFORE = re.compile(r"[A-Za-z][\w\-]*\s?$")


def _signed_percent(text: str, match: re.Match[str]) -> str:
    before = LEADING_TAG.sub("", text[: match.start()], count=1)
    if (
        NAMED_BEFORE.search(before)
        and not RESULT_CLAUSE_SPLIT.search(before)
        and not METRIC_NAME.search(before)
        and len(re.findall(r"[A-Za-z]{2,}", before)) <= 4
    ):
        return match.group(0)
    return " "


METRIC_NAME = re.compile(
    r"\b(?:bpb|loss|acc(?:uracy)?|auc|sharpe|ppl|perplexity|mfu|elo|f1|mse|mae|rmse|throughput|"
    r"latency|p\d\d|speed|time|wall[\s\-]?clock|score|return|pnl|drawdown|fitness|metric)\s?$",
    re.I,
)


@lru_cache(maxsize=8)
def _result_regex(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = sorted(
        (r"[\s_\-]+".join(re.escape(part) for part in word.split(" ")) for word in words),
        key=len,
        reverse=True,
    )
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alternatives) + r")(?![a-z0-9])", re.I)


def _drop_groups(text: str, result: re.Pattern[str]) -> str:
    """Drop (...) and [...] groups that report a result or a motive; keep groups that carry the change."""

    def replace(match: re.Match[str]) -> str:
        inner = next(group for group in match.groups() if group is not None)
        if result.search(inner) or SIGNED_PERCENT.search(inner) or MOTIVE_GROUP.search(inner):
            return " "
        opening, closing = ("\x04", "\x05") if match.group(0).startswith("[") else ("\x00", "\x01")
        return opening + inner.replace("(", "\x02").replace(")", "\x03") + closing

    for _ in range(4):
        changed = INNER_GROUP.sub(replace, text)
        if changed == text:
            break
        text = changed
    for placeholder, bracket in zip("\x00\x01\x02\x03\x04\x05", "()()[]", strict=True):
        text = text.replace(placeholder, bracket)
    return text


# "fix OOM", "avoid NaN": a failure named as the thing to cure is the motive, not a result.
CURED = re.compile(
    r"\b(?:fix(?:es|ed)?|avoid|prevent|resolve|address|handle|cure)\s+(?:\S+\s+){0,2}$", re.I
)
CURABLE = {
    "oom",
    "out of memory",
    "nan",
    "nans",
    "crash",
    "crashed",
    "diverge",
    "diverged",
    "diverges",
}


def _first_result(clause: str, result: re.Pattern[str]) -> re.Match[str] | None:
    """The first result word of a clause, skipping failures the clause sets out to cure."""
    for found in result.finditer(clause):
        word = re.sub(r"[\s_\-]+", " ", found.group(0).lower())
        if word in CURABLE and CURED.search(clause[: found.start()]):
            continue
        return found
    return None


def _cut_clauses(text: str, result: re.Pattern[str]) -> str:
    """In each clause, remove everything from the first result word to the clause's end."""
    pieces = RESULT_CLAUSE_SPLIT.split(text)
    kept: list[str] = []
    for index in range(0, len(pieces), 2):
        clause = pieces[index]
        found = _first_result(clause, result)
        if found:
            clause = clause[: found.start()]
            before = "".join(kept) + clause
            opens_clause = not clause.strip()
            if opens_clause or len(re.findall(r"[^\W\d_]{2,}", LEADING_TAG.sub("", before))) >= 2:
                # a result reported after the proposal: what follows is commentary too
                clause = clause.rstrip(" \t-—–:,;.+&")
                if clause.strip():
                    if kept:
                        kept.append(pieces[index - 1])
                    kept.append(clause)
                break
        clause = clause.rstrip(" \t-—–:,;.+&")
        if clause.strip():
            if kept:
                kept.append(pieces[index - 1])
            kept.append(clause)
    return "".join(kept)


def strip_result_words_with(text: str, rules: Rules) -> str:
    """strip_result_words with a given rule set's result words."""
    result = _result_regex(rules.result_words)
    text = CONTROL.sub(" ", text)
    text = METRIC_FIGURE.sub(" ", text)
    text = SIGNED_SCORE.sub(" ", text)
    text = COMMIT_REF.sub(" ", text)
    text = _drop_groups(text, result)
    text = SIGNED_PERCENT.sub(lambda m: _signed_percent(text, m), text)
    text = _cut_clauses(text, result)
    return re.sub(r"[ \t]+", " ", text).strip(" \t-—–:,;.")


def strip_result_words(text: str) -> str:
    """Remove words that report a result, not the proposal: "(OOM)", "— regression", "worse", "new best",
    "no effect", "slower", result figures like "(-28.3% vs 1e-3)" or "val_bpb 0.993"."""
    return strip_result_words_with(text, load_rules())
