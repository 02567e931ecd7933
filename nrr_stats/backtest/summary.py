"""The backtest's summary: per-method scores with log-bootstrap intervals, as rows or a table.

Logs are the unit of resampling: rows within a log are not independent, logs (sessions) are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nrr_stats.backtest.metrics import CLIP, Scores
from nrr_stats.models.rate import CONFIDENCE

BOOTSTRAP = 1000


def log_loss_ratio_interval(
    p_engine: Sequence[float],
    p_reference: Sequence[float],
    y: Sequence[int],
    log_ids: Sequence[int],
    *,
    draws: int = BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Engine log loss / reference log loss, and its 90% interval from resampling whole logs."""
    p_engine, p_reference = np.asarray(p_engine, float), np.asarray(p_reference, float)
    y, log_ids = np.asarray(y, int), np.asarray(log_ids)
    logs = np.unique(log_ids)
    loss_e = np.array([_row_losses(p_engine[log_ids == g], y[log_ids == g]).sum() for g in logs])
    loss_r = np.array([_row_losses(p_reference[log_ids == g], y[log_ids == g]).sum() for g in logs])
    ratio = float(loss_e.sum() / loss_r.sum())
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(logs), size=(draws, len(logs)))
    ratios = loss_e[picks].sum(axis=1) / loss_r[picks].sum(axis=1)
    tail = (1 - CONFIDENCE) / 2
    return ratio, float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def _row_losses(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    q = np.clip(p, CLIP, 1 - CLIP)
    return -(y * np.log(q) + (1 - y) * np.log1p(-q))


def score_rows(scores: dict[str, Scores]) -> list[dict[str, Any]]:
    """One plain dict per method, in the table's column order."""
    return [
        {
            "method": s.method,
            "rows": s.rows,
            "logs": s.logs,
            "log_loss": s.log_loss,
            "brier": s.brier,
            "ece": s.ece,
            "avoid_recall": s.avoid_recall,
            "keep_block_rate": s.keep_block_rate,
            "avoid_precision": s.avoid_precision,
        }
        for s in scores.values()
    ]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(named: dict[str, Scores]) -> str:
    """A markdown table of scores, one line per named method."""
    lines = [
        "| method | log loss | Brier | ECE | avoid recall | keep-block rate | avoid precision | rows | logs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in named.items():
        lines.append(
            f"| {name} | {_fmt(s.log_loss, 4)} | {_fmt(s.brier, 4)} | {_fmt(s.ece, 4)} |"
            f" {_fmt(s.avoid_recall)} | {_fmt(s.keep_block_rate)} | {_fmt(s.avoid_precision)} |"
            f" {s.rows} | {s.logs} |"
        )
    return "\n".join(lines)
