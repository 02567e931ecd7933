"""The distribution of a keep rate: a weighted mixture of Beta distributions, frozen.

Every answer path ends here (the grid over a session's offset, the fitted draws, the conjugate
Beta): the rate of a leaf or cell is sum_i w_i Beta(a_i, b_i), with the scipy.stats shape
(`mean()`, `interval(0.9)`, `cdf(x)`, `ppf(q)`). p_keep, the interval and P(rate < base) of an
answer are read from it and nowhere else. Numpy and scipy.special only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nrr_stats.models.special import betainc, betaincinv, betaln

CONFIDENCE = 0.9
# The one mixture-size rule: the CDF and the quantiles are evaluated on the fewest heaviest
# components holding all but MASS_LEFT of the weight, at most MAX_COMPONENTS - 1 of them, and
# the components left beyond MAX_COMPONENTS - 1 merged into one Beta of the same mean and
# variance (a session's draws x grid points are many, mostly light); the mean is exact.
MASS_LEFT = 1e-5
MAX_COMPONENTS = 500
# A Halley step shorter than this share of min(x, 1 - x) is taken as the quantile without one
# more CDF evaluation (relative: near 0 or 1 the CDF of a Beta with a or b < 1 is steep).
HALLEY_ACCEPT = 1e-3


def heaviest_components(weights: np.ndarray) -> np.ndarray:
    """Indices of the components the mixture-size rule keeps as they are (weights sum to 1)."""
    weights = np.asarray(weights).ravel()
    if weights.shape[0] >= MAX_COMPONENTS:
        top = np.argpartition(weights, -(MAX_COMPONENTS - 1))[-(MAX_COMPONENTS - 1) :]
    else:
        top = np.arange(weights.shape[0])
    order = top[np.argsort(weights[top])[::-1]]
    count = int(np.searchsorted(np.cumsum(weights[order]), 1.0 - MASS_LEFT)) + 1
    return order[: min(count, order.shape[0])]


@dataclass(frozen=True, eq=False)
class Components:
    """What the mixture-size rule makes of a mixture's weights (and base rates) alone: shared
    by every rate mixed with the same weights (a session grid's answers), so it is made once.
    Build with `Components.of`."""

    weights: np.ndarray  # all components' weights, normalised
    keep: np.ndarray  # the components kept as they are (heaviest_components)
    rest: np.ndarray | None  # mask of the components merged into one Beta (None: none are)
    rest_weights: np.ndarray | None  # their weights
    kept_weights: np.ndarray  # the mixture's weights: the kept ones, then the merged one's
    kept_base: np.ndarray | None  # the base rate per mixture component (None without one)
    base_rate: float  # the mean base rate over all components (nan without one)

    @classmethod
    def of(
        cls,
        n: int,
        weights: np.ndarray | None = None,
        base: np.ndarray | float | None = None,
        keep: np.ndarray | None = None,
    ) -> Components:
        """The rule applied to n components with these weights (default equal) and base."""
        w = np.full(n, 1.0 / n) if weights is None else np.ravel(weights)
        w = w / w.sum()
        base_all = None if base is None else np.broadcast_to(np.ravel(base), (n,))
        base_rate = float("nan") if base_all is None else float(np.sum(w * base_all))
        keep = heaviest_components(w) if keep is None else keep
        rest, rest_weights, kept, kept_base = None, None, w, base_all
        if keep.shape[0] < n:
            merged = np.ones(n, dtype=bool)
            merged[keep] = False
            held = float(w[keep].sum())
            if held < 1.0 - MASS_LEFT:
                rest, rest_weights = merged, w[merged]
                if base_all is not None:
                    rest_base = float(np.sum(w[merged] * base_all[merged]) / np.sum(w[merged]))
                    kept_base = np.append(base_all[keep], rest_base)
                kept = np.append(w[keep], 1.0 - held)
            else:
                kept = w[keep] / held
                kept_base = None if base_all is None else base_all[keep]
        return cls(w, keep, rest, rest_weights, kept, kept_base, base_rate)


@dataclass(frozen=True, eq=False)
class BetaMixture:
    """sum_i w_i Beta(a_i, b_i): the posterior (predictive) distribution of one rate.

    `base`, when given, is the base rate paired with each component (the session's rate under
    the same draw), so P(rate < base) integrates over both. Build with `BetaMixture.of`.
    """

    a: np.ndarray  # the kept components (mixture-size rule)
    b: np.ndarray
    weights: np.ndarray  # renormalised over the kept components
    base: np.ndarray | None
    _mean: float
    _base_rate: float

    @classmethod
    def of(
        cls,
        a: np.ndarray,
        b: np.ndarray,
        weights: np.ndarray | None = None,
        base: np.ndarray | float | None = None,
        keep: np.ndarray | None = None,
        *,
        components: Components | None = None,
    ) -> BetaMixture:
        """The mixture of Beta(a_i, b_i) with weights (default equal), with the base rate per
        component; `keep` is heaviest_components(weights) when the caller already has it, and
        `components` (instead of weights, base and keep) what the mixture-size rule made of
        them once for every rate over the same weights."""
        a = np.asarray(a, dtype=np.float64).ravel()
        b = np.asarray(b, dtype=np.float64).ravel()
        if components is None:
            components = Components.of(a.shape[0], weights, base, keep)
        w, keep, rest = components.weights, components.keep, components.rest
        mean = float(np.sum(w * a / (a + b)))
        if rest is not None:  # the rest is merged into one moment-matched Beta
            merged = _moment_matched(a[rest], b[rest], components.rest_weights)
            a, b = np.append(a[keep], merged[0]), np.append(b[keep], merged[1])
        elif keep.shape[0] < a.shape[0]:
            a, b = a[keep], b[keep]
        return cls(a, b, components.kept_weights, components.kept_base, mean, components.base_rate)

    def mean(self) -> float:
        """The mean rate; also the predictive probability that one more experiment is kept."""
        return self._mean

    def cdf(self, x: float) -> float:
        """P(rate <= x)."""
        return float(np.sum(self.weights * betainc(self.a, self.b, min(max(x, 0.0), 1.0))))

    def ppf(self, q: float) -> float:
        """The q-quantile of the rate."""
        return mixture_quantiles(self.a, self.b, self.weights, (q,))[0]

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The equal-tailed credible interval holding `confidence` of the probability
        (computed once per confidence: the mixture is frozen, and an answer, its pattern
        and its copies all read the one interval)."""
        known = self.__dict__.setdefault("_intervals", {})  # memo only: not a field
        if confidence not in known:
            tail = (1.0 - confidence) / 2.0
            low, high = mixture_quantiles(self.a, self.b, self.weights, (tail, 1.0 - tail))
            known[confidence] = (low, high)
        return known[confidence]

    def base_rate(self) -> float:
        """The session's base rate (mean over every component); nan without one."""
        return self._base_rate

    def prob_below_base(self) -> float:
        """P(rate < base rate), the base rate uncertain with the same draws; nan without one."""
        if self.base is None:
            return float("nan")
        if "_below_base" not in self.__dict__:  # computed once, as the interval
            below = float(np.sum(self.weights * betainc(self.a, self.b, self.base)))
            self.__dict__["_below_base"] = below
        return self.__dict__["_below_base"]


@dataclass(frozen=True, eq=False)
class WeightedPoints:
    """A rate known exactly under each component (the session's base rate per draw and grid
    point of the offset): weighted point masses, read like a BetaMixture. Build with `of`."""

    values: np.ndarray  # sorted
    cumulative: np.ndarray  # cumulative weight of the sorted values (the last is 1)
    _mean: float

    @classmethod
    def of(cls, values: np.ndarray, weights: np.ndarray) -> WeightedPoints:
        """The distribution putting weight w_i on value v_i (weights need not sum to 1)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        w = np.broadcast_to(np.ravel(weights), v.shape)
        w = w / w.sum()
        mean = float(np.sum(w * v))  # as BetaMixture.of averages its per-component base
        order = np.argsort(v, kind="stable")
        return cls(v[order], np.cumsum(w[order]), mean)

    def mean(self) -> float:
        return self._mean

    def cdf(self, x: float) -> float:
        """P(rate <= x)."""
        index = int(np.searchsorted(self.values, x, side="right")) - 1
        return 0.0 if index < 0 else float(min(self.cumulative[index], 1.0))

    def ppf(self, q: float) -> float:
        """The smallest value whose cumulative weight reaches q."""
        index = int(np.searchsorted(self.cumulative, q * self.cumulative[-1], side="left"))
        return float(self.values[min(index, self.values.shape[0] - 1)])

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """The equal-tailed interval holding `confidence` of the weight."""
        tail = (1.0 - confidence) / 2.0
        return self.ppf(tail), self.ppf(1.0 - tail)


def _moment_matched(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """The Beta with the mean and variance of the mixture sum_i w_i Beta(a_i, b_i)."""
    w = w / w.sum()
    mean = float(np.sum(w * a / (a + b)))
    second = float(np.sum(w * a * (a + 1.0) / ((a + b) * (a + b + 1.0))))
    var = max(second - mean**2, 1e-12)
    concentration = max(mean * (1.0 - mean) / var - 1.0, 1e-3)
    return mean * concentration, (1.0 - mean) * concentration


def mixture_quantiles(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray, quantiles: tuple[float, ...]
) -> list[float]:
    """Quantiles of the mixture sum_i w_i Beta(a_i, b_i) (weights sum to 1), by safeguarded
    Halley steps from the moment-matched Beta's quantile; one component is inverted exactly."""
    if a.shape[0] == 1:
        return [float(betaincinv(a[0], b[0], q)) for q in quantiles]
    log_norm = betaln(a, b)
    mean = float(np.sum(weights * a / (a + b)))
    second = float(np.sum(weights * a * (a + 1.0) / ((a + b) * (a + b + 1.0))))
    var = max(second - mean**2, 1e-12)
    concentration = max(mean * (1.0 - mean) / var - 1.0, 1e-3)
    results = []
    for q in quantiles:
        x = float(betaincinv(mean * concentration, (1.0 - mean) * concentration, q))
        low, high = 0.0, 1.0
        last_gap = np.inf
        for _ in range(60):
            x = min(max(x, 1e-12), 1.0 - 1e-12)
            gap = float(np.sum(weights * betainc(a, b, x))) - q
            if abs(gap) < 1e-7:
                break
            stalled = abs(gap) > 0.5 * last_gap  # far from the root (a bimodal mixture): bisect
            last_gap = abs(gap)
            if gap > 0:
                high = x
            else:
                low = x
            if stalled:
                x = 0.5 * (low + high)
                continue
            pieces = weights * np.exp((a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm)
            density = float(np.sum(pieces))
            if density > 0:
                # Halley's step: the density's slope is cheap (no Beta CDF), and the error
                # cubes each step, so a step this small is already exact to ~1e-10.
                slope = float(np.sum(pieces * ((a - 1.0) / x - (b - 1.0) / (1.0 - x))))
                newton = gap / density
                step = x - newton / max(1.0 - 0.5 * newton * slope / density, 0.5)
            else:
                step = -1.0
            if low < step < high and abs(step - x) < HALLEY_ACCEPT * min(x, 1.0 - x):
                x = step
                break
            x = step if low < step < high else 0.5 * (low + high)
        results.append(x)
    return results
