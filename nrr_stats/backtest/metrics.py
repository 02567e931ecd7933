"""Scores of prequential predictions (EVALUATION.md): log loss, Brier, ECE and the verdict rates.

Pure functions over arrays: `p` the predicted keep probabilities, `y` 1 where the row was kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

CLIP = 1e-4
ECE_BINS = 10


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean of -[y log p + (1-y) log(1-p)], p clipped to [1e-4, 1-1e-4]."""
    q = np.clip(np.asarray(p, dtype=float), CLIP, 1 - CLIP)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared difference between probability and outcome."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per equal-width bin of p: count, mean predicted p, observed keep rate (empty bins omitted)."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        if count:
            out.append(
                {
                    "low": b / bins,
                    "high": (b + 1) / bins,
                    "count": count,
                    "mean_p": float(p[members].mean()),
                    "keep_rate": float(y[members].mean()),
                    "keeps": int(y[members].sum()),
                }
            )
    return out


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over 10 equal-width bins of (bin share) x |mean p - keep rate|."""
    total = len(p)
    return float(
        sum(
            b["count"] / total * abs(b["mean_p"] - b["keep_rate"])
            for b in reliability_bins(p, y, bins)
        )
    )


@dataclass(frozen=True)
class Scores:
    """One method's scores over a set of predicted rows."""

    method: str
    rows: int
    logs: int
    log_loss: float
    brier: float
    ece: float
    avoid_recall: float | None
    keep_block_rate: float | None
    avoid_precision: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _share(numerator: np.ndarray, denominator: np.ndarray) -> float | None:
    total = int(denominator.sum())
    return float((numerator & denominator).sum() / total) if total else None


def score(
    method: str,
    p: Sequence[float],
    y: Sequence[int],
    verdicts: Sequence[str] | None = None,
    logs: int = 0,
) -> Scores:
    """All EVALUATION.md metrics for one method; the verdict rates need its verdicts."""
    p_arr, y_arr = np.asarray(p, dtype=float), np.asarray(y, dtype=int)
    recall = block = precision = None
    if verdicts is not None:
        avoid = np.asarray([v == "avoid" for v in verdicts])
        kept = y_arr == 1
        recall = _share(avoid, ~kept)
        block = _share(avoid, kept)
        precision = _share(~kept, avoid)
    return Scores(
        method=method,
        rows=len(p_arr),
        logs=logs,
        log_loss=log_loss(p_arr, y_arr),
        brier=brier(p_arr, y_arr),
        ece=expected_calibration_error(p_arr, y_arr),
        avoid_recall=recall,
        keep_block_rate=block,
        avoid_precision=precision,
    )


def running_laplace_rate(y_history: Sequence[int]) -> float:
    """The running-rate baseline: (keeps + 1) / (n + 2) over the log's rows so far."""
    return (sum(y_history) + 1) / (len(y_history) + 2)


DISCOUNT = 0.9  # the discounted running rate's g (EVALUATION.md)
DISCOUNTED_AVOID_BELOW = 0.05  # its verdict baseline: avoid when the rate is below this


def discounted_running_rate(y_history: Sequence[int], discount: float = DISCOUNT) -> float:
    """The discounted running rate (0.5 + sum g^a y) / (2 + sum g^a) over the log's rows so far,
    a Beta(0.5, 1.5) prior; `a` counts the rows run after that one (0 for the latest row)."""
    y = np.asarray(y_history, dtype=float)
    weights = discount ** np.arange(y.size - 1, -1, -1, dtype=float)
    return float((0.5 + weights @ y) / (2.0 + weights.sum()))


TRADEOFF_FLOORS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12, 0.15, 0.20)


def tradeoff_curve(
    p: Sequence[float],
    y: Sequence[int],
    eligible: Sequence[bool] | None = None,
    floors: Sequence[float] = TRADEOFF_FLOORS,
) -> list[dict[str, float]]:
    """Avoid recall and keep-block rate of "avoid when P(keep) < floor" over a range of floors;
    `eligible` marks rows where the rule may say avoid at all (enough history of its own)."""
    p_arr, y_arr = np.asarray(p, dtype=float), np.asarray(y, dtype=int)
    ok = np.ones(p_arr.shape, bool) if eligible is None else np.asarray(eligible, dtype=bool)
    kept = y_arr == 1
    out = []
    for floor in floors:
        avoid = (p_arr < floor) & ok
        out.append(
            {
                "floor": float(floor),
                "avoid_recall": float(avoid[~kept].mean()) if (~kept).any() else float("nan"),
                "keep_block_rate": float(avoid[kept].mean()) if kept.any() else float("nan"),
                "avoids": int(avoid.sum()),
            }
        )
    return out
