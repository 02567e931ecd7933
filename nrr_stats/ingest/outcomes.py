"""Per-row outcomes of TAXONOMY.md, from the metric's movement against the running best kept value.

Prefix safety: the delta at row t uses rows <= t only. The two thresholds that split discards
into marginal / no_improvement / regression come from the whole array passed in (the log's own
spread of discard deltas); a backtest that needs strict prefix safety passes the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from nrr_stats.ingest.status import map_status

# A discard within MARGINAL_FRACTION x scale of the running best is within the log's noise band;
# one worse than REGRESSION_MULTIPLE x scale is a regression for this log. The scale is the median
# absolute delta of the log's discards, so both thresholds move with the metric's units.
MARGINAL_FRACTION = 0.25
REGRESSION_MULTIPLE = 3.0
ROUNDING_SLACK = 1e-9

# A row that says it is a baseline (its description or raw status starts with the word, after
# any markup: "baseline", "**Baseline**", "[baseline] run"): a reference row (EVALUATION.md).
# Ingest (bank/ingest.py) and the deltas here read reference rows with this one pattern.
BASELINE_ROW = re.compile(r"^\W*baseline\b", re.IGNORECASE)
_INFRA = re.compile(
    r"\bLLM\b.{0,20}\b(error|fail|failed|failure|timeout)|expecting value|json ?decode|"
    r"\bapi\b.{0,12}\b(error|failure|timeout|down)|rate.?limit|quota (exceeded|error)|overloaded|"
    r"(http|status|error|code)\s*(50[0-9]|429)\b|time[ d]?out|timed out|harness|"
    r"disk (full|quota|error)|out of disk|no space left|"
    r"(network|connection|socket|ssl|ssh)\s*(error|refused|reset|failure|failed|lost|timed out|unreachable)|"
    r"\bdns\b|preempt|node fail|infrastructure|\binfra\b|"
    r"cuda (unavailable|not available|driver)|no gpu|driver (error|mismatch)|nccl|"
    r"no module named|modulenotfound|permission denied|killed by (the )?(scheduler|system)",
    re.IGNORECASE,
)


def _direction_sign(direction: str) -> float:
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    return 1.0 if direction == "higher" else -1.0


def metric_deltas(
    metrics: np.ndarray | Sequence[float | None],
    statuses: Sequence[str],
    direction: str,
    descriptions: Sequence[str] | None = None,
) -> np.ndarray:
    """Signed gap of each row to the best kept value before it (positive = better); nan where undefined.

    As in EVALUATION.md, the first row and any rows before the first keep that read as a baseline
    (description starting 'baseline', or status 'baseline' when raw statuses are passed) set the
    reference too, whatever their status.
    """
    facts = RowFacts.of(metrics, statuses, descriptions)
    return facts.deltas(direction)


STATUS_GROUPS = ("keep", "discard", "crash", "other")
OUTCOME_CODES: tuple[str | None, ...] = (
    None,
    "improvement",
    "crash_infra",
    "crash_code",
    "no_improvement",
    "marginal",
    "regression",
)
_KEEP, _DISCARD, _CRASH, _OTHER = range(4)


class RowFacts:
    """What a row's outcome is computed from, a few bytes a row: its metric, its status group,
    whether it reads as a baseline and whether a crash blames the harness. Built row by row
    (`add`), so a long log's outcomes need these arrays, not its rows."""

    def __init__(self) -> None:
        self._metric = np.empty(1024, dtype=float)
        self._group = np.empty(1024, dtype=np.int8)
        self._flags = np.empty(1024, dtype=np.int8)  # 1: baseline, 2: infra crash
        self.size = 0

    @classmethod
    def of(
        cls,
        metrics: np.ndarray | Sequence[float | None],
        statuses: Sequence[str],
        descriptions: Sequence[str] | None = None,
    ) -> RowFacts:
        facts = cls()
        for t, (value, raw_status) in enumerate(zip(metrics, statuses, strict=True)):
            text = descriptions[t] if descriptions is not None else ""
            facts.add(value, raw_status, text)
        return facts

    def add(self, metric: float | None, raw_status: str, description: str) -> None:
        """One more row: its metric, its status (raw, or as read) and its description."""
        if self.size == len(self._metric):
            grown = 2 * self.size
            self._metric = np.resize(self._metric, grown)
            self._group = np.resize(self._group, grown)
            self._flags = np.resize(self._flags, grown)
        group = STATUS_GROUPS.index(map_status(raw_status))
        flags = 1 if BASELINE_ROW.match(description) or BASELINE_ROW.match(raw_status) else 0
        if group == _CRASH and is_infra_crash(description):
            flags |= 2
        self._metric[self.size] = np.nan if metric is None else float(metric)
        self._group[self.size] = group
        self._flags[self.size] = flags
        self.size += 1

    @property
    def metrics(self) -> np.ndarray:
        return self._metric[: self.size]

    @property
    def groups(self) -> np.ndarray:
        return self._group[: self.size]

    @property
    def baseline(self) -> np.ndarray:
        return (self._flags[: self.size] & 1).astype(bool)

    def deltas(self, direction: str) -> np.ndarray:
        """metric_deltas of these rows."""
        sign = _direction_sign(direction)
        values, groups, baseline = self.metrics, self.groups, self.baseline
        deltas = np.full(self.size, np.nan)
        best = np.nan
        seen_keep = False
        for t in range(self.size):
            value = values[t]
            if not np.isfinite(value):
                continue
            if np.isfinite(best):
                deltas[t] = sign * (value - best)
            kept = groups[t] == _KEEP
            if kept or ((t == 0 or baseline[t]) and not seen_keep):
                best = (
                    value
                    if not np.isfinite(best)
                    else (max(best, value) if sign > 0 else min(best, value))
                )
            seen_keep = seen_keep or kept
        return deltas

    def outcomes(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        """(outcome code per row, an index in OUTCOME_CODES; delta per row): classify_outcomes."""
        deltas = self.deltas(direction)
        groups = self.groups
        marginal_floor, regression_floor = _thresholds(deltas, groups == _DISCARD)
        # Rounding slack: a delta on a threshold stays on the same side when the metric is rescaled.
        slack = ROUNDING_SLACK * abs(regression_floor)
        marginal_floor -= slack
        regression_floor -= slack
        codes = np.zeros(self.size, dtype=np.int8)
        codes[groups == _KEEP] = 1
        infra = (self._flags[: self.size] & 2).astype(bool)
        codes[(groups == _CRASH) & infra] = 2
        codes[(groups == _CRASH) & ~infra] = 3
        discard = groups == _DISCARD
        with np.errstate(invalid="ignore"):
            marginal = discard & (deltas >= marginal_floor)
            regression = discard & ~marginal & (deltas < regression_floor)
        codes[discard] = 4
        codes[marginal] = 5
        codes[regression] = 6
        return codes, deltas


def outcome_thresholds(deltas: np.ndarray, statuses: Sequence[str]) -> tuple[float, float]:
    """(marginal_floor, regression_floor): deltas >= the first are marginal, below the second regressions."""
    mask = np.array([map_status(s) == "discard" for s in statuses], dtype=bool)
    return _thresholds(deltas, mask.reshape(len(deltas)))


def _thresholds(deltas: np.ndarray, discard_mask: np.ndarray) -> tuple[float, float]:
    discard = deltas[discard_mask]
    discard = discard[np.isfinite(discard)]
    pool = discard if discard.size and np.any(discard != 0) else deltas[np.isfinite(deltas)]
    scale = float(np.median(np.abs(pool))) if pool.size else 0.0
    if scale == 0.0 and pool.size:
        nonzero = np.abs(pool[pool != 0])
        scale = float(np.median(nonzero)) if nonzero.size else 0.0
    return -MARGINAL_FRACTION * scale, -REGRESSION_MULTIPLE * scale


def is_infra_crash(description: str) -> bool:
    """True when a crash's description blames the harness (LLM call, timeout, disk, network)."""
    return bool(_INFRA.search(description or ""))


def classify_outcomes(
    metrics: np.ndarray | Sequence[float | None],
    statuses: Sequence[str],
    direction: str,
    descriptions: Sequence[str] | None = None,
) -> list[str | None]:
    """TAXONOMY.md outcome per row (None for 'other' rows); scale-free, see the module docstring."""
    codes, _ = RowFacts.of(metrics, statuses, descriptions).outcomes(direction)
    return [OUTCOME_CODES[code] for code in codes]
