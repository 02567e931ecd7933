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


def _plain(text: object) -> str:
    """Text from the bank as matplotlib draws it literally (no mathtext from a `$`)."""
    return str(text).replace("$", r"\$")


PRIOR_ONLY_COLOUR = "#aaaaaa"
DATA_COLOUR = "#1f5fa6"
STATUS_MARKS = {  # status: (marker, colour, label) in the trajectory's row strip
    "keep": ("^", "#2a9d3a", "keep"),
    "discard": ("o", "#777777", "discard"),
    "crash": ("x", "#c0392b", "crash"),
}


def forest_plot(
    cells: Sequence[Any],
    path: str | Path,
    base_rate: float | None = None,
    base_interval: tuple[float, float] | None = None,
) -> Path:
    """Each cell's posterior mean and 90% interval with its count, grouped by category in the
    order given (a header row per category); cells with no rows of their own (n = 0, the
    prior's answer alone) in grey; the session's base rate as a line over its 90% band."""
    plt = _pyplot()
    rows: list[tuple[str, Any]] = []  # (label, cell); a category's header row has no cell
    last = None
    for cell in cells:
        if cell.category != last:
            rows.append((cell.category, None))
            last = cell.category
        rows.append((cell.direction, cell))
    figure, axis = plt.subplots(figsize=(8, 0.28 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    if base_interval is not None:
        axis.axvspan(*base_interval, color="#f0c674", alpha=0.35, linewidth=0)
    if base_rate is not None:
        label = f"session base rate {base_rate:.2f}"
        if base_interval is not None:
            label += f" [{base_interval[0]:.2f}, {base_interval[1]:.2f}]"
        axis.axvline(base_rate, color="#b8860b", linestyle="--", label=label)
    labels = []
    for position, (text, cell) in zip(y, rows, strict=True):
        if cell is None:
            labels.append(_plain(text))
            continue
        grey = cell.n == 0
        low, high = cell.interval
        axis.errorbar(
            [cell.mean],
            [position],
            xerr=[[cell.mean - low], [high - cell.mean]],
            fmt="o",
            capsize=2,
            color=PRIOR_ONLY_COLOUR if grey else DATA_COLOUR,
            markerfacecolor="white" if grey else DATA_COLOUR,
        )
        labels.append(f"    {_plain(text)} " + ("(prior only)" if grey else f"(n={cell.n})"))
    axis.set_yticks(y, labels, fontsize=8)
    for tick, (_, cell) in zip(axis.get_yticklabels(), rows, strict=True):
        if cell is None:
            tick.set_fontweight("bold")
        elif cell.n == 0:
            tick.set_color(PRIOR_ONLY_COLOUR)
    axis.set_xlim(0, 1)
    axis.set_ylim(-0.7, len(rows) - 0.3)
    axis.set_xlabel("keep rate: posterior mean and 90% interval (grey: prior only)")
    if base_rate is not None:
        axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def trajectory_plot(
    trajectory: Sequence[dict[str, Any]], statuses: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """The session's base rate (the engine's, evidence discounted) after each number of rows
    with its 90% band, the observed keep rate kept/counted beside it, and every row's outcome
    in a strip below (keep, discard, crash; other rows as ticks)."""
    plt = _pyplot()
    figure, (main, strip) = plt.subplots(
        2, 1, figsize=(8, 4.2), sharex=True, gridspec_kw={"height_ratios": [5, 1]}
    )
    x = np.array([p["rows"] for p in trajectory])
    mean = np.array([p["base_mean"] for p in trajectory])
    band = np.array([p["base_interval"] for p in trajectory])
    main.fill_between(x, band[:, 0], band[:, 1], color="#f0c674", alpha=0.45, linewidth=0)
    main.plot(x, mean, color="#b8860b", label="base rate (engine, discounted), 90% band")
    seen = [p for p in trajectory if p["observed_rate"] is not None]
    if seen:
        main.plot(
            [p["rows"] for p in seen],
            [p["observed_rate"] for p in seen],
            color="#1f5fa6",
            linestyle="--",
            label="observed keep rate (kept / counted)",
        )
    main.set_ylim(0, 1)
    main.set_ylabel("keep rate")
    main.legend(loc="upper right", fontsize=8)
    main.set_title(_plain(title), fontsize=9)
    positions = np.arange(1, len(statuses) + 1)
    for status, (marker, colour, label) in STATUS_MARKS.items():
        at = positions[[s == status for s in statuses]] if len(statuses) else positions
        if at.size:
            strip.scatter(at, np.zeros(at.size), marker=marker, color=colour, s=14, label=label)
    other = positions[[s not in STATUS_MARKS for s in statuses]] if len(statuses) else positions
    if other.size:
        strip.scatter(other, np.zeros(other.size), marker="|", color="#cccccc", s=14, label="other")
    strip.set_yticks([])
    strip.set_xlabel("rows of the session read")
    strip.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    strip.set_xlim(-0.5, max(len(statuses), 1) + 0.5)
    figure.tight_layout()
    out = Path(path)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
