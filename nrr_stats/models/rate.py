"""The distribution of a keep rate: a weighted mixture of Beta distributions, frozen.

Every answer path ends here (the grid over a session's offset, the fitted draws, the conjugate
Beta): the rate of a leaf or cell is sum_i w_i Beta(a_i, b_i), with the scipy.stats shape
(`mean()`, `interval(0.9)`, `cdf(x)`, `ppf(q)`). p_keep, the interval and P(rate < base) of an
answer are read from it and nowhere else. Numpy and scipy.special only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nrr_stats.models.special import betainc, betaincinv, betaln, logit

CONFIDENCE = 0.9
# The one mixture-size rule: the CDF and the quantiles are evaluated on at most MAX_COMPONENTS
# components: the fewest heaviest holding all but MASS_LEFT of the weight, at most
# MAX_COMPONENTS - REST_BASE_BINS * REST_SPREAD_BINS of them, and the components left beyond
# those merged by group, each group into one Beta of the same mean and variance: groups of like
# base rate (REST_BASE_BINS equal bins of its logit) and, within those, of like concentration
# a + b (REST_SPREAD_BINS equal bins of its log). The mean is exact. A session grid's draws x
# points are many and mostly light (under the population prior the heaviest 499 of 30,500 hold
# a median 14% of the weight), and merging the rest into one Beta read P(rate < base) up to
# 0.079 and the interval's ends up to 0.010 from the whole mixture's on the dev logs' sessions;
# by group, with no more components in all, 0.0045 and 0.0019 (benchmarks/mixture_size_rule.py,
# models/README.md; tests/test_mixture_size_rule.py holds a bound).
MASS_LEFT = 1e-5
MAX_COMPONENTS = 500
REST_BASE_BINS = 32
REST_SPREAD_BINS = 2
# A Halley step shorter than this share of min(x, 1 - x) is taken as the quantile without one
# more CDF evaluation (relative: near 0 or 1 the CDF of a Beta with a or b < 1 is steep).
HALLEY_ACCEPT = 1e-3


def heaviest_components(weights: np.ndarray) -> np.ndarray:
    """Indices of the components the mixture-size rule keeps as they are (weights sum to 1)."""
    weights = np.asarray(weights).ravel()
    most = MAX_COMPONENTS - REST_BASE_BINS * REST_SPREAD_BINS  # room left for the groups
    if weights.shape[0] > most:
        top = np.argpartition(weights, -most)[-most:]
    else:
        top = np.arange(weights.shape[0])
    order = top[np.argsort(weights[top])[::-1]]
    count = int(np.searchsorted(np.cumsum(weights[order]), 1.0 - MASS_LEFT)) + 1
    return order[: min(count, order.shape[0])]


@dataclass(frozen=True, eq=False)
class Components:
    """What the mixture-size rule makes of a mixture's weights, base rates and concentrations
    alone: shared by every rate mixed with the same weights (a session grid's answers), so it
    is made once. Build with `Components.of`."""

    weights: np.ndarray  # all components' weights, normalised
    keep: np.ndarray  # the components kept as they are (heaviest_components)
    # per component, the group (0 .. groups - 1) it is merged into, or `groups` when it is
    # kept or weightless (None: no component is merged)
    labels: np.ndarray | None
    group_weights: np.ndarray | None  # each group's weight
    kept_weights: np.ndarray  # the mixture's weights: the kept ones, then each group's
    kept_base: np.ndarray | None  # the base rate per mixture component (None without one)
    base_rate: float  # the mean base rate over all components (nan without one)

    @classmethod
    def of(
        cls,
        n: int,
        weights: np.ndarray | None = None,
        base: np.ndarray | float | None = None,
        keep: np.ndarray | None = None,
        *,
        base_logit: np.ndarray | None = None,
        log_spread: np.ndarray | None = None,
    ) -> Components:
        """The rule applied to n components with these weights (default equal) and base
        rates; `base_logit` is the base rates' logit when the caller has it, `log_spread` the
        log of each component's concentration a + b (or values ordered alike for every rate
        that will share the result; None: groups by base rate alone)."""
        w = np.full(n, 1.0 / n) if weights is None else np.ravel(weights)
        w = w / w.sum()
        base_all = None if base is None else np.broadcast_to(np.ravel(base), (n,))
        base_rate = float("nan") if base_all is None else float(np.sum(w * base_all))
        keep = heaviest_components(w) if keep is None else keep
        labels, group_weights, kept, kept_base = None, None, w, base_all
        if keep.shape[0] < n:
            merged = w > 0  # a component of no weight is in no group
            merged[keep] = False
            held = float(w[keep].sum())
            if held < 1.0 - MASS_LEFT and merged.any():
                keys = []
                if base_all is not None:
                    if base_logit is None:
                        keys.append((logit(base_all[merged]), REST_BASE_BINS))
                    else:
                        keys.append((np.ravel(base_logit)[merged], REST_BASE_BINS))
                if log_spread is not None:
                    keys.append((np.ravel(log_spread)[merged], REST_SPREAD_BINS))
                groups = _groups(keys, int(merged.sum()))
                count = int(groups.max()) + 1
                labels = np.full(n, count, dtype=np.int64)
                labels[merged] = groups
                group_weights = _group_sums(labels, w, count)
                if base_all is not None:
                    group_base = _group_sums(labels, w * base_all, count) / group_weights
                    kept_base = np.append(base_all[keep], group_base)
                kept = np.append(w[keep], group_weights)
            else:
                kept = w[keep] / held
                kept_base = None if base_all is None else base_all[keep]
        return cls(w, keep, labels, group_weights, kept, kept_base, base_rate)


def _group_sums(labels: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """The sum of values over each group 0 .. count - 1 (label `count`: in none)."""
    return np.bincount(labels, weights=values, minlength=count + 1)[:count]


def _groups(keys: list[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """Group of each of n components: equal-width bins of each key in turn (each key's bins
    within the previous ones'), numbered 0, 1, ... with no empty group."""
    group, total = np.zeros(n, dtype=np.int64), 1
    for values, bins in keys:
        low, high = float(values.min()), float(values.max())
        width = (high - low) / bins
        index = np.zeros(n, dtype=np.int64)
        if width > 0 and np.isfinite(width):
            index = np.minimum(((values - low) / width).astype(np.int64), bins - 1)
        group, total = group * bins + index, total * bins
    occupied = np.bincount(group, minlength=total) > 0
    return (np.cumsum(occupied) - 1)[group]  # renumbered over the occupied groups


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
            components = Components.of(a.shape[0], weights, base, keep, log_spread=np.log(a + b))
        w, keep = components.weights, components.keep
        weighted_means = w * a / (a + b)
        mean = float(np.sum(weighted_means))
        if components.labels is not None:  # the rest is merged by group: moment-matched Betas
            merged_a, merged_b = _moment_matched(a, b, weighted_means, components)
            a, b = np.append(a[keep], merged_a), np.append(b[keep], merged_b)
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


def _moment_matched(
    a: np.ndarray, b: np.ndarray, weighted_means: np.ndarray, components: Components
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of merged components, the Beta with the mean and variance of the group's
    mixture sum w_i Beta(a_i, b_i) (`weighted_means`: w_i a_i / (a_i + b_i)): (a, b) arrays
    indexed by group."""
    count, total = components.group_weights.shape[0], components.group_weights
    mean = _group_sums(components.labels, weighted_means, count) / total
    # E[p^2] of Beta(a, b) is a (a + 1) / ((a + b) (a + b + 1))
    second_terms = weighted_means * (a + 1.0) / (a + b + 1.0)
    second = _group_sums(components.labels, second_terms, count) / total
    return _beta_of_moments(mean, second)


def _beta_of_moments(
    mean: np.ndarray | float, second: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the Beta with this mean and second moment E[p^2] (scalars or arrays); the
    variance is floored at 1e-12 and the concentration a + b at 1e-3."""
    var = np.maximum(second - mean**2, 1e-12)
    concentration = np.maximum(mean * (1.0 - mean) / var - 1.0, 1e-3)
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
    start_a, start_b = _beta_of_moments(mean, second)
    results = []
    for q in quantiles:
        x = float(betaincinv(start_a, start_b, q))
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
