"""Synthetic banks drawn from the model's own prior: for SBC, benchmarks and tests.

A design fixes the structure (sessions, categories, cells, parameters, trials per leaf); a draw
from the prior fills in the rates and the outcomes. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.fit import (
    PRIOR_ALPHA,
    PRIOR_CRASH_ALPHA,
    PRIOR_LOG_NU,
    PRIOR_SIGMA,
    draw_sigma_param,
)
from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS

# Session sizes (predicted rows) of the 67 dev logs in ../shared/data (MANIFEST.tsv, keep+discard+crash).
DEV_SESSION_SIZES = (
    11, 12, 12, 13, 13, 14, 14, 14, 15, 15, 15, 15, 15, 17, 17, 17, 18, 18, 18, 20, 20, 22, 22,
    23, 23, 24, 25, 25, 28, 29, 32, 32, 34, 34, 35, 36, 36, 42, 46, 47, 48, 49, 49, 49, 53, 53,
    59, 60, 62, 64, 65, 70, 73, 74, 95, 100, 103, 110, 113, 113, 115, 115, 122, 126, 131, 276, 1083,
)  # fmt: skip


@dataclass(frozen=True)
class Truth:
    """The prior draw a synthetic table was simulated from."""

    alpha: float
    a_cat: dict[str, float]
    b_cell: dict[tuple[str, str], float]
    e_param: dict[tuple[str, str, str], float]
    u_sess: dict[str, float]
    nu: float
    crash_alpha: float


def dev_like_design(
    rng: np.random.Generator, n_experiments: int | None = None
) -> list[tuple[str, str, str, str]]:
    """(session, category, direction, parameter) per experiment, shaped like the dev corpus:
    its 67 session sizes (scaled to `n_experiments`), skewed category use, a parameter on ~40%."""
    sizes = np.array(DEV_SESSION_SIZES, dtype=float)
    if n_experiments is not None:
        sizes = np.maximum(1, np.round(sizes * n_experiments / sizes.sum()))
    cat_weights = 1.0 / np.arange(1, len(CATEGORIES) + 1) ** 0.8
    cat_weights /= cat_weights.sum()
    dir_weights = np.array([0.3, 0.25, 0.15, 0.2, 0.05, 0.05])
    params_per_cell = 4
    rows = []
    for s, size in enumerate(sizes.astype(int)):
        cats = rng.choice(len(CATEGORIES), size=size, p=cat_weights)
        dirs = rng.choice(len(DIRECTIONS), size=size, p=dir_weights)
        named = rng.random(size) < 0.4
        which = rng.integers(0, params_per_cell, size=size)
        for c, d, has, p in zip(cats, dirs, named, which, strict=True):
            category = CATEGORIES[c]
            parameter = f"{category.upper()}_P{p}" if has else ""
            rows.append((f"session_{s:03d}", category, DIRECTIONS[d], parameter))
    return rows


def draw_truth(rng: np.random.Generator, design: list[tuple[str, str, str, str]]) -> Truth:
    """Hyperparameters and group effects drawn from the model's prior (fit.py's hyperpriors)."""

    def effects(names, scale):
        return {name: float(scale * rng.standard_normal()) for name in sorted(names)}

    sigmas = np.abs(rng.normal(0.0, PRIOR_SIGMA, size=4))
    sigmas[2] = draw_sigma_param(rng)
    return Truth(
        alpha=float(rng.normal(*PRIOR_ALPHA)),
        a_cat=effects({c for _, c, _, _ in design}, sigmas[0]),
        b_cell=effects({(c, d) for _, c, d, _ in design}, sigmas[1]),
        e_param=effects({(c, d, p) for _, c, d, p in design if p}, sigmas[2]),
        u_sess=effects({s for s, _, _, _ in design}, sigmas[3]),
        nu=float(np.exp(rng.normal(*PRIOR_LOG_NU))),
        crash_alpha=float(rng.normal(*PRIOR_CRASH_ALPHA)),
    )


def simulate_table(
    rng: np.random.Generator, design: list[tuple[str, str, str, str]], truth: Truth
) -> ExperimentTable:
    """Outcomes for a design: each leaf's rate ~ Beta(m nu, (1-m) nu), each row kept with that
    rate; a row that is not kept crashed with the global crash rate."""
    leaf_rate: dict[tuple[str, str, str, str], float] = {}
    records = []
    crash_rate = float(expit(truth.crash_alpha))
    for s, c, d, p in design:
        key = (s, c, d, p)
        if key not in leaf_rate:
            eta = truth.alpha + truth.a_cat[c] + truth.b_cell[(c, d)] + truth.u_sess[s]
            eta += truth.e_param.get((c, d, p), 0.0)
            m = float(expit(eta))
            leaf_rate[key] = float(rng.beta(max(m * truth.nu, 1e-3), max((1 - m) * truth.nu, 1e-3)))
        kept = rng.random() < leaf_rate[key]
        crashed = (not kept) and rng.random() < crash_rate
        status = "keep" if kept else ("crash" if crashed else "discard")
        records.append(
            {"session": s, "category": c, "direction": d, "parameter": p, "status": status}
        )
    return ExperimentTable.from_records(records)
