"""Simulation-based calibration (Talts et al. 2018) of the hierarchy on a fixed design.

Draw hyperparameters and rates from the model's prior, draw counts, fit, and rank each true
value among its posterior draws. For a correct fit the ranks are uniform and the central 50%
and 90% intervals cover the truth 50% and 90% of the time. Heavy (fits with PyMC).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from nrr_stats.models.fit import (
    PRIOR_ALPHA,
    PRIOR_CRASH_ALPHA,
    PRIOR_LOG_NU,
    PRIOR_SIGMA,
    ModelData,
    draw_sigma_param,
    fit_model_data,
)

QUANTITIES = ("global_rate", "category_rate", "cell_rate")


def simulate_counts(
    rng: np.random.Generator, data: ModelData
) -> tuple[dict[str, float], ModelData]:
    """One draw from the prior predictive on `data`'s design (its groups and trial counts):
    the true quantities tracked by SBC, and the design with simulated counts."""
    n_param = len(data.parameters)
    sigma = np.abs(rng.normal(0.0, PRIOR_SIGMA, size=4))
    sigma[2] = draw_sigma_param(rng)
    alpha = rng.normal(*PRIOR_ALPHA)
    a_cat = sigma[0] * rng.standard_normal(len(data.categories))
    b_cell = sigma[1] * rng.standard_normal(len(data.cells))
    e_param = np.append(sigma[2] * rng.standard_normal(n_param), 0.0)
    u_sess = sigma[3] * rng.standard_normal(len(data.sessions))
    nu = np.exp(rng.normal(*PRIOR_LOG_NU))
    mean = expit(
        alpha
        + a_cat[data.leaf_category]
        + b_cell[data.leaf_cell]
        + e_param[data.leaf_param]
        + u_sess[data.leaf_session]
    )
    trials = np.round(data.trials_w).astype(np.int64)
    rate = rng.beta(np.maximum(mean * nu, 1e-6), np.maximum((1 - mean) * nu, 1e-6))
    keeps = rng.binomial(trials, rate).astype(np.float64)

    crash_sigma = np.abs(rng.normal(0.0, PRIOR_SIGMA, size=2))
    crash_mean = expit(
        rng.normal(*PRIOR_CRASH_ALPHA)
        + (crash_sigma[0] * rng.standard_normal(len(data.categories)))[data.crash_category]
        + (crash_sigma[1] * rng.standard_normal(len(data.sessions)))[data.crash_session]
    )
    crash_nu = np.exp(rng.normal(*PRIOR_LOG_NU))
    crash_rate = rng.beta(
        np.maximum(crash_mean * crash_nu, 1e-6), np.maximum((1 - crash_mean) * crash_nu, 1e-6)
    )
    crash_trials = np.round(data.crash_trials_w).astype(np.int64)
    crashes = rng.binomial(crash_trials, crash_rate).astype(np.float64)

    cell = 0
    category = int(data.leaf_category[np.flatnonzero(data.leaf_cell == cell)[0]])
    truth = {
        "global_rate": float(expit(alpha)),
        "category_rate": float(expit(alpha + a_cat[category])),
        "cell_rate": float(expit(alpha + a_cat[category] + b_cell[cell])),
    }
    simulated = dataclasses.replace(
        data,
        keeps_w=keeps,
        trials_w=trials.astype(np.float64),
        crashes_w=crashes,
        crash_trials_w=crash_trials.astype(np.float64),
    )
    return truth, simulated


def restrict_sessions(data: ModelData, sessions: set[str]) -> ModelData:
    """`data` on the leaves of some sessions only (the bounded fit's sample), level coding kept:
    categories, cells and parameters the sample lacks keep their prior-only effects."""
    keep = [i for i, name in enumerate(data.sessions) if name in sessions]
    recode = np.full(len(data.sessions), -1, dtype=np.int64)
    recode[keep] = np.arange(len(keep))
    leaves = np.isin(data.leaf_session, keep)
    pairs = np.isin(data.crash_session, keep)
    return dataclasses.replace(
        data,
        sessions=tuple(data.sessions[i] for i in keep),
        leaf_category=data.leaf_category[leaves],
        leaf_cell=data.leaf_cell[leaves],
        leaf_param=data.leaf_param[leaves],
        leaf_session=recode[data.leaf_session[leaves]],
        keeps_w=data.keeps_w[leaves],
        trials_w=data.trials_w[leaves],
        crash_category=data.crash_category[pairs],
        crash_session=recode[data.crash_session[pairs]],
        crashes_w=data.crashes_w[pairs],
        crash_trials_w=data.crash_trials_w[pairs],
        seen={name: values[leaves] for name, values in data.seen.items()},
    )


def tracked_draws(draws: dict[str, np.ndarray], data: ModelData) -> dict[str, np.ndarray]:
    """Posterior draws of the SBC quantities: the global rate, category and cell rate of cell 0."""
    category = int(data.leaf_category[np.flatnonzero(data.leaf_cell == 0)[0]])
    alpha = draws["alpha"]
    return {
        "global_rate": expit(alpha),
        "category_rate": expit(alpha + draws["a_cat"][:, category]),
        "cell_rate": expit(alpha + draws["a_cat"][:, category] + draws["b_cell"][:, 0]),
    }


@dataclass
class SbcResult:
    """Ranks (out of `n_rank_draws`) and interval hits per quantity over the simulations."""

    n_rank_draws: int
    ranks: dict[str, list[int]] = field(default_factory=lambda: {q: [] for q in QUANTITIES})
    hits50: dict[str, list[bool]] = field(default_factory=lambda: {q: [] for q in QUANTITIES})
    hits90: dict[str, list[bool]] = field(default_factory=lambda: {q: [] for q in QUANTITIES})
    failed_diagnostics: int = 0
    divergent_fits: int = 0

    def coverage(self, mass: int) -> dict[str, float]:
        hits = self.hits50 if mass == 50 else self.hits90
        return {q: float(np.mean(v)) for q, v in hits.items()}

    def uniformity_pvalues(self, bins: int = 10) -> dict[str, float]:
        """Chi-square test of rank uniformity over `bins` equal bins of 0..n_rank_draws."""
        from scipy.stats import chisquare

        out = {}
        for q, ranks in self.ranks.items():
            edges = np.linspace(0, self.n_rank_draws + 1, bins + 1)
            observed, _ = np.histogram(ranks, bins=edges)
            out[q] = float(chisquare(observed).pvalue)
        return out


def run_sbc(
    data: ModelData,
    n_sims: int,
    *,
    seed: int = 0,
    draws: int = 500,
    chains: int = 2,
    tune: int = 500,
    n_rank_draws: int = 99,
    compiled: Any = None,
    on_sim=None,
    max_sessions: int | None = None,
) -> SbcResult:
    """SBC over `n_sims` prior draws on `data`'s design; `compiled` reuses one nutpie model
    (built on the sampled sessions' design when `max_sessions` bounds the fit, as `nrr fit`
    does: counts are drawn for every session, the fit sees the sample's)."""
    from nrr_stats.models.fit import build_model, compile_model
    from nrr_stats.models.session_sample import sample_sessions

    sample = set(sample_sessions(data.sessions, max_sessions))
    fitted_design = restrict_sessions(data, sample)
    if compiled is None:
        compiled = compile_model(build_model(fitted_design))
    rng = np.random.default_rng(seed)
    result = SbcResult(n_rank_draws=n_rank_draws)
    for sim in range(n_sims):
        truth, simulated = simulate_counts(rng, data)
        fit = fit_model_data(
            restrict_sessions(simulated, sample),
            draws=draws,
            chains=chains,
            tune=tune,
            seed=seed * 100_003 + sim,
            progress=False,
            compiled=compiled,
        )
        result.failed_diagnostics += int(not fit.passed)
        result.divergent_fits += int(fit.diagnostics["divergences"] > 0)
        posterior = tracked_draws(fit.posterior.draws, data)
        # Thin to n_rank_draws evenly spaced draws to weaken autocorrelation in the ranks.
        for q in QUANTITIES:
            values = posterior[q]
            thinned = values[np.linspace(0, values.shape[0] - 1, n_rank_draws).astype(int)]
            result.ranks[q].append(int(np.sum(thinned < truth[q])))
            for mass, hits in ((0.5, result.hits50), (0.9, result.hits90)):
                low, high = np.quantile(values, [(1 - mass) / 2, (1 + mass) / 2])
                hits[q].append(bool(low <= truth[q] <= high))
        if on_sim is not None:
            on_sim(sim, result)
    return result
