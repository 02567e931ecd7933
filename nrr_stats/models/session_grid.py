"""Answers for a session the prior never saw, with its offset integrated on a grid per draw.

Drawing a new session's offset u from Normal(0, sigma_sess) and reweighting draws by the data
(importance sampling) loses effective sample size fast as the session grows. Here u is
integrated exactly on a fixed 1-D grid for every hyperparameter draw, so the importance weights
only carry what the session's data say about the shared hyperparameters, and stay even.
Per-leaf log-likelihood tables (draws x grid) are kept, so adding one row costs one leaf update.
Numpy and scipy.special only (the fast path).
"""

from __future__ import annotations

import math

import numpy as np

from nrr_stats.models.posterior import EffectColumns, StoredPosterior, standard_normal
from nrr_stats.models.rate import BetaMixture, Components, WeightedPoints, heaviest_components
from nrr_stats.models.special import expit, gammaln

GRID_POINTS = 61
MAX_DRAWS = 500  # evenly thinned draws: the grid multiplies the cost by GRID_POINTS
GRID_SIGMAS = 5.0  # the grid spans this many (high-quantile) sigma_sess either side of 0


class SessionGrid:
    """A new session's state under a prior: weighted counts per (category, direction, parameter)
    leaf and their log-likelihood per (draw, grid point of u)."""

    def __init__(
        self, prior: StoredPosterior, grid_points: int = GRID_POINTS, max_draws: int = MAX_DRAWS
    ):
        total = prior.n_draws
        keep = np.linspace(0, total - 1, min(max_draws, total)).round().astype(int)
        # Scalar draws are thinned here; effect matrices column by column when read (never copied).
        d = {
            name: np.asarray(values)[keep]
            for name, values in prior.draws.items()
            if np.ndim(values) == 1
        }
        m = prior.draws
        self.alpha = np.asarray(d["alpha"], dtype=np.float64)
        self.nu = np.asarray(d["nu"], dtype=np.float64)
        sigma = np.maximum(np.asarray(d["sigma_sess"], dtype=np.float64), 1e-3)
        span = GRID_SIGMAS * linear_quantile(sigma, 0.99)
        self.u = np.linspace(-span, span, grid_points)
        self.sigma = sigma
        self.phase = 0.0
        self.log_prior = self._log_prior(0.0)
        names = prior.column_index
        self.cat = EffectColumns(m["a_cat"], names["categories"], d["sigma_cat"], "cat", rows=keep)
        self.cell = EffectColumns(m["b_cell"], names["cells"], d["sigma_cell"], "cell", rows=keep)
        self.param = EffectColumns(
            m["e_param"], names["parameters"], d["sigma_param"], "param", rows=keep
        )
        self.crash_alpha = d["crash_alpha"]
        self.crash_nu = d["crash_nu"]
        self.crash_cat = EffectColumns(
            m["crash_a_cat"], names["categories"], d["crash_sigma_cat"], "crash_cat", rows=keep
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
        self._answers: dict[tuple[str, str, str], BetaMixture] = {}  # until a change
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
            # log B(a + k, b + n - k) - log B(a, b) with a + b = nu per draw: four gammaln
            # tables and one per-draw term instead of two betaln tables (~25% less work).
            nu_term = gammaln(self.nu + trials) - gammaln(self.nu)
            table = _log_ratio(a, keeps) + gammaln(b + trials - keeps)
            table -= gammaln(b)
            table -= nu_term[:, None]
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

    def ess_share(self) -> float:
        """Effective-sample-size share of the prior's draws under the session's rows."""
        return self.posterior_weights()[1]

    def rate(self, category: str, direction: str, parameter: str = "") -> BetaMixture:
        """The distribution of a leaf's keep rate in this session, with the session's base
        rate per component (kept until the session's counts or phase change)."""
        key = (category, direction, parameter or "")
        if key not in self._answers:
            keeps, trials = self.leaves.get(key, (0.0, 0.0))
            a, b = self._shape(key, keeps, trials)
            self._answers[key] = BetaMixture.of(a, b, components=self._mass()[2])
        return self._answers[key]

    def base_rate(self) -> WeightedPoints:
        """The distribution of the session's base rate expit(alpha + u) over (draw, grid point),
        under the same weights as every answer's rate (its mean is their base_rate())."""
        weights, _ = self.posterior_weights()
        return WeightedPoints.of(self._mass()[1], weights)

    def _mass(self) -> tuple[np.ndarray, np.ndarray, Components]:
        """Shared by every answer until the state changes: the components the mixture-size
        rule keeps, the base rate expit(alpha + u) per component, and what the rule makes of
        those weights and base rates (the same for every leaf's mixture)."""
        weights, _ = self.posterior_weights()
        if self._heavy is None or self._heavy[0] is not weights:
            base_logit = self.alpha[:, None] + self.u[None, :]
            base = expit(base_logit)
            keep = heaviest_components(weights)
            # a leaf's a + b is nu + trials: ordered as nu, for every leaf
            log_nu = np.broadcast_to(np.log(self.nu)[:, None], weights.shape)
            components = Components.of(
                weights.size, weights, base, keep, base_logit=base_logit, log_spread=log_nu
            )
            self._heavy = (weights, (keep, base, components))
        return self._heavy[1]

    def p_crash(self, category: str) -> float:
        """P(crash) of a change in this category, in this session."""
        return self._p_crash(category)

    def _p_crash(self, category: str) -> float:
        crashes, trials = self.crash_counts.get(category, (0.0, 0.0))
        m = expit(self.crash_alpha + self.crash_cat.column(category) + self.crash_u)
        a = m * self.crash_nu + crashes
        b = (1.0 - m) * self.crash_nu + trials - crashes
        return float(np.mean(a / (a + b)))


def _log_ratio(a: np.ndarray, k: float) -> np.ndarray:
    """gammaln(a + k) - gammaln(a), elementwise; with no keeps (most leaves) exactly 0 where
    gammaln(a) is finite, without evaluating the two tables."""
    if k == 0.0 and bool(np.all(a > 0.0)) and bool(np.all(np.isfinite(a))):
        return np.zeros_like(a)
    return gammaln(a + k) - gammaln(a)


def linear_quantile(values: np.ndarray, q: float) -> float:
    """`float(np.quantile(values, q))` (its default "linear" method) of 1-D values, computed
    as numpy does it, without np.quantile: whose np.unique call imports numpy.ma (~9 ms of a
    cold process)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = x.shape[0]
    if np.isnan(x[-1]):
        return float("nan")
    virtual = (n - 1) * q
    if virtual >= n - 1:
        return float(x[-1])
    if virtual < 0:
        return float(x[0])
    previous = math.floor(virtual)
    low, high = float(x[previous]), float(x[previous + 1])
    gamma = virtual - previous
    gap = high - low
    return high - gap * (1 - gamma) if gamma >= 0.5 else low + gap * gamma


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return (top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))).squeeze(axis)
