"""Plots: the reliability diagram of a backtest and the forest plot of cell keep rates.

matplotlib is imported inside each function (Agg backend): the in-loop path never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta as beta_distribution

from nrr_stats.backtest.metrics import reliability_bins


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def binomial_interval(keeps: int, count: int, level: float = 0.9) -> tuple[float, float]:
    """Jeffreys interval of an observed keep rate (well behaved at 0 and n)."""
    tail = (1 - level) / 2
    low = (
        0.0 if keeps == 0 else float(beta_distribution.ppf(tail, keeps + 0.5, count - keeps + 0.5))
    )
    high = (
        1.0
        if keeps == count
        else float(beta_distribution.ppf(1 - tail, keeps + 0.5, count - keeps + 0.5))
    )
    return low, high


def reliability_diagram(
    methods: Mapping[str, tuple[Sequence[float], Sequence[int]]], path: str | Path, title: str = ""
) -> Path:
    """Predicted vs observed keep rate per bin for each method, with 90% binomial intervals and bin counts."""
    plt = _pyplot()
    figure, (main, counts) = plt.subplots(
        2, 1, figsize=(7, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    main.plot(
        [0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration"
    )
    width = 0.1 / (len(methods) + 1)
    for index, (name, (p, y)) in enumerate(methods.items()):
        bins = reliability_bins(np.asarray(p), np.asarray(y))
        x = np.array([b["mean_p"] for b in bins])
        observed = np.array([b["keep_rate"] for b in bins])
        intervals = np.array([binomial_interval(b["keeps"], b["count"]) for b in bins])
        errors = np.abs(intervals.T - observed)
        main.errorbar(x, observed, yerr=errors, marker="o", capsize=3, label=name)
        centres = np.array([b["low"] for b in bins]) + width * (index + 0.5)
        counts.bar(centres, [b["count"] for b in bins], width=width, label=name)
    main.set_ylabel("observed keep rate (90% interval)")
    main.set_xlim(0, 1)
    main.set_ylim(0, 1)
    main.legend(loc="upper left")
    main.set_title(title or "Reliability: predicted vs observed keep rate")
    counts.set_xlabel("predicted P(keep)")
    counts.set_ylabel("rows in bin")
    counts.set_yscale("log")
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def forest_plot(cells: Sequence[Any], path: str | Path, base_rate: float | None = None) -> Path:
    """Each cell's posterior mean and 90% interval, labelled with its count."""
    plt = _pyplot()
    rows = list(cells)
    figure, axis = plt.subplots(figsize=(8, 0.3 * len(rows) + 1.5))
    y = np.arange(len(rows))[::-1]
    means = np.array([c.mean for c in rows])
    lows = np.array([c.interval[0] for c in rows])
    highs = np.array([c.interval[1] for c in rows])
    axis.errorbar(means, y, xerr=[means - lows, highs - means], fmt="o", capsize=2)
    axis.set_yticks(y, [f"{c.category}/{c.direction} (n={c.n})" for c in rows], fontsize=8)
    if base_rate is not None:
        axis.axvline(base_rate, color="grey", linestyle="--", label=f"base rate {base_rate:.2f}")
        axis.legend(loc="lower right")
    axis.set_xlim(0, 1)
    axis.set_xlabel("keep rate: posterior mean and 90% interval")
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
