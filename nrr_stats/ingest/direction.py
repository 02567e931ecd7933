"""Which way is better for a log's metric: lower (loss, bpb, latency) or higher (accuracy, Sharpe).

Precedence, first that decides wins:
1. ``flag``: the caller's explicit choice (``read_results_log(direction=...)``);
2. ``comment``: a ``# metric_direction: higher_is_better`` style line before the header;
3. ``name``: a strong cue in the metric's name: a stated direction (``score (lower is better)``,
   ``loss↓``, ``acc [max]``), else a word (``val_bpb``, ``loss``, ``latency`` -> lower;
   ``acc``, ``auc``, ``sharpe``, ``tok_per_sec`` -> higher);
4. ``kept-deltas``: for a metric that is itself a change (``tier1_delta_pct``), the sign of the
   median kept value (at least two keeps);
5. ``kept-rows``: how the log moved: kept rows should improve on the running best kept value and
   discarded rows should not; used when one direction explains clearly more rows than the other;
6. ``name``: a weak cue (``score``, ``quality``, ``composite`` -> higher);
7. ``default``: lower (the autoresearch default metric, val_bpb, is a loss).
Names come before the rows because a short log's kept rows are noisy (a keep for simplicity, a
re-run baseline) while a name like ``val_loss`` is unambiguous; weak names come after because
"score" is a latency in one log and an accuracy in the next.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence

from nrr_stats.ingest.status import map_status


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LOWER_TOKENS = _words("""loss losses bpb ppl perplexity error errors err mse mae rmse rmsle mape nll wer cer fid
    time latency violations violation cost costs ms sec secs seconds runtime duration regret
    drawdown dd memory mem bytes size penalty distance dist ns ns_op us""")
HIGHER_TOKENS = _words("""acc accuracy auc auroc roc sharpe sortino calmar win winrate tps throughput elo f1 map
    precision recall reward rewards return returns profit pnl pass passed success exact bleu
    rouge r2 iou dice ndcg mrr hit hits gain speedup""")
WEAK_HIGHER_TOKENS = _words("score scores quality composite fitness objective rating")
# "per second" names are throughputs even though they contain a time word.
_RATE_PATTERN = re.compile(r"(per_?s(ec(ond)?)?\b|toke?n?s?_s\b|tps\b|/s\b)")

# A header that says its own direction: 'val_bpb (lower is better)', 'score↑', 'loss [min]'.
_NAME_STATES = re.compile(
    r"(lower|higher|smaller|larger|bigger)[ _\-]?(is[ _\-]?)?better|[↑↓]|\((min|max)\)|\[(min|max)\]|"
    r"minimi[sz]e|maximi[sz]e"
)
_HIGHER_STATES = ("↑", "max", "higher", "larger", "bigger")
_COMMENT_KEY = re.compile(r"metric[_ ]?direction\s*[:=]\s*([A-Za-z_\- ]+)", re.IGNORECASE)
_COMMENT_PHRASE = re.compile(
    r"\b(lower|higher|smaller|larger|bigger|less|more)\s+is\s+better\b|\b(minimi[sz]e|maximi[sz]e)\b",
    re.IGNORECASE,
)


def normalise_direction(text: str) -> str | None:
    """'higher_is_better', 'max', 'Lower' -> 'higher' / 'lower'; None when it says neither."""
    word = text.strip().lower()
    if re.match(r"(higher|larger|bigger|more|max|up|increase|asc)", word):
        return "higher"
    if re.match(r"(lower|smaller|less|min|down|decrease|desc)", word):
        return "lower"
    return None


def direction_from_comments(comment_lines: Iterable[str]) -> str | None:
    """Read ``# metric_direction: X`` (or 'lower is better', 'minimize') from comment lines."""
    for line in comment_lines:
        keyed = _COMMENT_KEY.search(line)
        if keyed and (found := normalise_direction(keyed.group(1))):
            return found
    for line in comment_lines:
        phrase = _COMMENT_PHRASE.search(line)
        if phrase:
            return normalise_direction(phrase.group(1) or phrase.group(2))
    return None


def _name_tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()
    return [token for token in re.split(r"[^a-z0-9]+", spaced) if token]


def direction_from_name(metric_name: str) -> tuple[str | None, bool]:
    """(direction or None, strong?) from the metric's name alone."""
    lowered = metric_name.lower()
    stated = _NAME_STATES.search(lowered)
    if stated:
        said = stated.group(0).strip("()[] ")
        return ("higher" if said.startswith(_HIGHER_STATES) else "lower"), True
    tokens = _name_tokens(metric_name)
    if _RATE_PATTERN.search(lowered) and not any(t in ("loss", "error", "cost") for t in tokens):
        return "higher", True
    for token in tokens:
        stem = token.rstrip("0123456789")
        if token in LOWER_TOKENS or stem in LOWER_TOKENS:
            return "lower", True
    for token in tokens:
        stem = token.rstrip("0123456789")
        if token in HIGHER_TOKENS or stem in HIGHER_TOKENS or token.startswith("map"):
            return "higher", True
    if any(token in WEAK_HIGHER_TOKENS for token in tokens):
        return "higher", False
    return None, False


def _agreement(
    metrics: Sequence[float | None], statuses: Sequence[str], sign: float, use_discards: bool
) -> int:
    """Rows consistent with the direction `sign`: keeps that beat the running best, discards that do not."""
    best: float | None = None
    agree = 0
    for value, status in zip(metrics, statuses, strict=False):
        if value is None or not math.isfinite(value):
            continue
        mapped = map_status(status)
        if mapped == "keep":
            if best is not None:
                agree += 1 if sign * (value - best) > 0 else -1
            best = value if best is None else (max(best, value) if sign > 0 else min(best, value))
        elif use_discards and mapped == "discard" and best is not None:
            agree += 1 if sign * (value - best) <= 0 else -1
    return agree


def direction_from_rows(metrics: Sequence[float | None], statuses: Sequence[str]) -> str | None:
    """The direction under which kept rows clearly improve on the running best, or None.

    Kept rows decide; discards only break a tie (some loops discard real gains as noise).
    """
    decided = sum(1 for s in statuses if map_status(s) in ("keep", "discard"))
    margin = max(2, math.ceil(0.1 * decided))
    for use_discards in (False, True):
        higher = _agreement(metrics, statuses, 1.0, use_discards)
        lower = _agreement(metrics, statuses, -1.0, use_discards)
        if higher - lower >= margin:
            return "higher"
        if lower - higher >= margin:
            return "lower"
    return None


_DELTA_NAME = re.compile(r"(^|_)(delta|diff|change|gain|improvement)(_|$)")


def direction_from_kept_deltas(
    metric_name: str, metrics: Sequence[float | None], statuses: Sequence[str]
) -> str | None:
    """For a metric that is itself a change ('tier1_delta_pct'), the sign of what was kept: a
    negative median kept change means lower is better. None below two keeps."""
    if not _DELTA_NAME.search(metric_name.lower()):
        return None
    kept = [
        v
        for v, s in zip(metrics, statuses, strict=False)
        if v is not None and math.isfinite(v) and v != 0 and map_status(s) == "keep"
    ]
    if len(kept) < 2:
        return None
    middle = statistics.median(kept)
    return None if middle == 0 else ("lower" if middle < 0 else "higher")


def infer_metric_direction(
    metric_name: str,
    metrics: Sequence[float | None],
    statuses: Sequence[str],
    comment_lines: Iterable[str] = (),
) -> tuple[str, str]:
    """Return (``lower`` | ``higher``, source) following the precedence in the module docstring.

    The ``flag`` source is applied by the caller, which skips this function when the user chose.
    """
    comment_lines = list(comment_lines)
    from_comment = direction_from_comments(comment_lines)
    if from_comment:
        return from_comment, "comment"
    named, strong = direction_from_name(metric_name)
    if named and strong:
        return named, "name"
    from_deltas = direction_from_kept_deltas(metric_name, metrics, statuses)
    if from_deltas:
        return from_deltas, "kept-deltas"
    from_rows = direction_from_rows(metrics, statuses)
    if from_rows:
        return from_rows, "kept-rows"
    if named:
        return named, "name"
    return "lower", "default"
