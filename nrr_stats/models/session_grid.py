"""Answers for a session the prior never saw, with its offset integrated on a grid per draw.

Drawing a new session's offset u from Normal(0, sigma_sess) and reweighting draws by the data
(importance sampling) loses effective sample size fast as the session grows. Here u is
integrated exactly on a fixed 1-D grid for every hyperparameter draw, so the importance weights
only carry what the session's data say about the shared hyperparameters, and stay even.
Per-leaf log-likelihood tables (draws x grid) are kept, so adding one row costs one leaf update.
Numpy and scipy.special only (the fast path).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nrr_stats.models.posterior import (
    CONFIDENCE,
    STALE_ESS_SHARE,
    EffectColumns,
    StoredPosterior,
    _mixture_quantiles,
    standard_normal,
)
from nrr_stats.models.special import betainc, betaln, expit

GRID_POINTS = 61
MAX_DRAWS = 500  # evenly thinned draws: the grid multiplies the cost by GRID_POINTS
GRID_SIGMAS = 5.0  # the grid spans this many (high-quantile) sigma_sess either side of 0
MIXTURE_COMPONENTS = 600  # the interval's Beta mixture keeps the heaviest components


@dataclass(frozen=True)
class GridAnswer:
    """One proposal's answer from the grid path (the fields `decide` reads, and more)."""

    p_keep: float
    mean: float
    interval: tuple[float, float]
    p_crash: float
    prob_below_base: float
    base_rate: float
    n_weighted: float
    ess_share: float
    stale: bool
    source: str = "population-grid"


class SessionGrid:
    """A new session's state under a prior: weighted counts per (category, direction, parameter)
    leaf and their log-likelihood per (draw, grid point of u)."""

    def __init__(
        self, prior: StoredPosterior, grid_points: int = GRID_POINTS, max_draws: int = MAX_DRAWS
    ):
        total = prior.n_draws
        keep = np.linspace(0, total - 1, min(max_draws, total)).round().astype(int)
        d = {name: np.asarray(values)[keep] for name, values in prior.draws.items()}
        self.alpha = np.asarray(d["alpha"], dtype=np.float64)
        self.nu = np.asarray(d["nu"], dtype=np.float64)
        sigma = np.maximum(np.asarray(d["sigma_sess"], dtype=np.float64), 1e-3)
        span = GRID_SIGMAS * float(np.quantile(sigma, 0.99))
        self.u = np.linspace(-span, span, grid_points)
        self.sigma = sigma
        self.phase = 0.0
        self.log_prior = self._log_prior(0.0)
        names = prior.column_index
        self.cat = EffectColumns(d["a_cat"], names["categories"], d["sigma_cat"], "cat")
        self.cell = EffectColumns(d["b_cell"], names["cells"], d["sigma_cell"], "cell")
        self.param = EffectColumns(d["e_param"], names["parameters"], d["sigma_param"], "param")
        self.crash_alpha = d["crash_alpha"]
        self.crash_nu = d["crash_nu"]
        self.crash_cat = EffectColumns(
            d["crash_a_cat"], names["categories"], d["crash_sigma_cat"], "crash_cat"
        )
        # A new session's crash offset: one draw per hyperparameter draw, fixed by a name.
        self.crash_u = d["crash_sigma_sess"] * standard_normal(
            "crash_sess:new", self.alpha.shape[0]
        )
        self.leaves: dict[tuple[str, str, str], tuple[float, float]] = {}
        self._loglik: dict[tuple[str, str, str], np.ndarray] = {}
        self.total = np.zeros((self.alpha.shape[0], grid_points))
        self._weights: tuple[np.ndarray, float] | None = None  # posterior_weights, until a change
        self._heavy: tuple[np.ndarray, tuple] | None = None  # _mass() of those weights
        self._answers: dict[tuple[str, str, str], GridAnswer] = {}  # until a change
        self.crash_counts: dict[str, tuple[float, float]] = {}

    def _log_prior(self, centre: float) -> np.ndarray:
        z = (self.u[None, :] - centre) / self.sigma[:, None]
        log_prior = -0.5 * z**2 - np.log(self.sigma)[:, None]
        return log_prior - _logsumexp(log_prior, axis=1)[:, None]

    def set_phase(self, offset: float) -> None:
        """Centre the session offset's prior at `offset` (the session-phase term, logit scale)."""
        if offset != self.phase:
            self.phase = offset
            self.log_prior = self._log_prior(offset)
            self._changed()

    def eta(self, key: tuple[str, str, str]) -> np.ndarray:
        """Logit mean rate of a leaf per draw, without the session offset."""
        c, d, p = key
        eta = self.alpha + self.cat.column(c) + self.cell.column((c, d))
        return eta + self.param.column((c, d, p)) if p else eta

    def _shape(self, key: tuple[str, str, str], keeps: float, trials: float):
        m = expit(self.eta(key)[:, None] + self.u[None, :])
        return m * self.nu[:, None] + keeps, (1.0 - m) * self.nu[:, None] + trials - keeps

    def set_counts(self, key: tuple[str, str, str], keeps: float, trials: float) -> None:
        """Replace a leaf's weighted counts (keeps <= trials) and its log-likelihood table."""
        if self.leaves.get(key) == (keeps, trials):
            return
        self._changed()
        old = self._loglik.pop(key, None)
        if old is not None:
            self.total -= old
        if trials > 0:
            a, b = self._shape(key, 0.0, 0.0)
            table = betaln(a + keeps, b + trials - keeps) - betaln(a, b)
            self._loglik[key] = table
            self.total += table
            self.leaves[key] = (keeps, trials)
        else:
            self.leaves.pop(key, None)

    def set_all(self, counts: dict[tuple[str, str, str], tuple[float, float]]) -> None:
        """Make the leaf counts equal `counts` (leaves absent from it are emptied)."""
        before = dict(self.leaves)
        for key in list(self.leaves):
            if key not in counts:
                self.set_counts(key, 0.0, 0.0)
        for key, (keeps, trials) in counts.items():
            self.set_counts(key, keeps, trials)
        if self.leaves != before:
            # Rebuild the running sum now and then: repeated += / -= drifts in floating point.
            self.total = sum(self._loglik.values(), np.zeros_like(self.total))
            self._changed()

    def set_crash_counts(self, counts: dict[str, tuple[float, float]]) -> None:
        """Weighted (crashes, trials) per category of this session."""
        if counts != self.crash_counts:
            self.crash_counts = dict(counts)
            self._answers.clear()

    def _changed(self) -> None:
        """The counts or the phase moved: forget the weights and answers derived from them."""
        self._weights = None
        self._answers.clear()

    def posterior_weights(self) -> tuple[np.ndarray, float]:
        """Joint weights over (draw, grid point) and the effective-sample-size share of draws
        (computed once per state of the counts and the phase)."""
        if self._weights is None:
            self._weights = self._joint_weights()
        return self._weights

    def _joint_weights(self) -> tuple[np.ndarray, float]:
        log_joint = self.log_prior + self.total
        weights = np.exp(log_joint - log_joint.max())
        weights /= weights.sum()
        per_draw = weights.sum(axis=1)
        ess = float(1.0 / np.sum(per_draw**2) / per_draw.shape[0])
        return weights, ess

    def answer(self, category: str, direction: str, parameter: str = "") -> GridAnswer:
        """p_keep, 90% interval and P(rate < base) of a proposal's leaf in this session
        (kept until the session's counts or phase change)."""
        key = (category, direction, parameter or "")
        if key not in self._answers:
            self._answers[key] = self._answer(key)
        return self._answers[key]

    def _answer(self, key: tuple[str, str, str]) -> GridAnswer:
        category, direction, parameter = key
        keeps, trials = self.leaves.get(key, (0.0, 0.0))
        weights, ess = self.posterior_weights()
        a, b = self._shape(key, keeps, trials)
        mean = float(np.sum(weights * a / (a + b)))
        heavy, w, base_rate, base = self._mass()
        a, b = a.ravel()[heavy], b.ravel()[heavy]
        below = float(np.sum(w * betainc(a, b, base)))
        tail = (1.0 - CONFIDENCE) / 2.0
        low, high = mixture_interval(a, b, w, tail)
        cell_trials = sum(
            t for (c, d, _), (_, t) in self.leaves.items() if (c, d) == (category, direction)
        )
        n_weighted = trials if parameter else cell_trials
        return GridAnswer(
            p_keep=mean,
            mean=mean,
            interval=(low, high),
            p_crash=self._p_crash(category),
            prob_below_base=below,
            base_rate=base_rate,
            n_weighted=float(n_weighted),
            ess_share=ess,
            stale=ess < STALE_ESS_SHARE,
        )

    def _mass(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Where the joint weights' mass is, shared by every answer until the state changes:
        the heaviest components holding 1 - 1e-5 of it (Beta CDFs are evaluated only there),
        their renormalised weights, the base rate and the base rate at those components."""
        weights, _ = self.posterior_weights()
        if self._heavy is None or self._heavy[0] is not weights:
            base = expit(self.alpha[:, None] + self.u[None, :])
            heavy = _heaviest(weights.ravel(), 1.0 - 1e-5)
            w = weights.ravel()[heavy]
            self._heavy = (
                weights,
                (heavy, w / w.sum(), float(np.sum(weights * base)), base.ravel()[heavy]),
            )
        return self._heavy[1]

    def _p_crash(self, category: str) -> float:
        crashes, trials = self.crash_counts.get(category, (0.0, 0.0))
        m = expit(self.crash_alpha + self.crash_cat.column(category) + self.crash_u)
        a = m * self.crash_nu + crashes
        b = (1.0 - m) * self.crash_nu + trials - crashes
        return float(np.mean(a / (a + b)))


def _heaviest(weights: np.ndarray, mass: float) -> np.ndarray:
    """Indices of the fewest heaviest weights whose sum reaches `mass` (weights sum to 1)."""
    order = np.argsort(weights)[::-1]
    count = int(np.searchsorted(np.cumsum(weights[order]), mass)) + 1
    return order[: min(count, order.shape[0])]


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return (top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))).squeeze(axis)


def mixture_interval(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray, tail: float
) -> tuple[float, float]:
    """Equal-tailed interval of sum_i w_i Beta(a_i, b_i), on the heaviest components, by
    safeguarded Newton steps (posterior._mixture_quantiles)."""
    if weights.shape[0] > MIXTURE_COMPONENTS:
        top = np.argpartition(weights, -MIXTURE_COMPONENTS)[-MIXTURE_COMPONENTS:]
        a, b, weights = a[top], b[top], weights[top] / weights[top].sum()
    low, high = _mixture_quantiles(a, b, weights, (tail, 1.0 - tail))
    return low, high
