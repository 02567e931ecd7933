"""The session grid's shortcuts give the numbers of the plain formulas.

`set_counts` skips the two keep tables of a leaf without keeps (gammaln(a + 0) - gammaln(a) is
exactly 0), the grid's span takes numpy's linear quantile without np.quantile (both to the last
bit), and every leaf's mixture reuses what the mixture-size rule made of the grid's weights
(rate.Components: the same mean to the last bit, the merged groups' Betas to rounding); all are
compared here with the formulas they replace, computed the slow way.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.models.population import load_population_prior
from nrr_stats.models.rate import (
    MASS_LEFT,
    REST_BASE_BINS,
    REST_SPREAD_BINS,
    BetaMixture,
    Components,
    heaviest_components,
)
from nrr_stats.models.session_grid import SessionGrid, linear_quantile
from nrr_stats.models.special import gammaln


class SlowGrid(SessionGrid):
    """The grid with its leaf tables computed by the four-gammaln formula, every time."""

    def set_counts(self, key, keeps, trials):
        if self.leaves.get(key) == (keeps, trials):
            return
        self._changed()
        old = self._loglik.pop(key, None)
        if old is not None:
            self.total -= old
        if trials > 0:
            a, b = self._shape(key, 0.0, 0.0)
            nu_term = gammaln(self.nu + trials) - gammaln(self.nu)
            table = (
                gammaln(a + keeps) - gammaln(a) + gammaln(b + trials - keeps) - gammaln(b)
            ) - nu_term[:, None]
            self._loglik[key] = table
            self.total += table
            self.leaves[key] = (keeps, trials)
        else:
            self.leaves.pop(key, None)


def _same(x, y) -> bool:
    return np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)


def test_leaf_tables_and_answers_equal_the_slow_formula():
    prior = load_population_prior()
    cells = [
        ("learning_rate", "increase", ""),
        ("learning_rate", "increase", "LEARNING_RATE"),
        ("learning_rate", "decrease", ""),
        ("model_size", "increase", "DEPTH"),
        ("regularization", "increase", ""),
        ("optimizer", "change", ""),
        ("not_a_category", "add", ""),
    ]
    rng = np.random.default_rng(3)
    fast, slow = SessionGrid(prior), SlowGrid(prior)
    for step in range(4):
        counts = {}
        for key in cells:
            trials = float(np.round(rng.uniform(0.2, 9.0), 3))
            keeps = 0.0 if rng.random() < 0.6 else float(np.round(rng.uniform(0, trials), 3))
            counts[key] = (keeps, trials)
        if step == 3:
            counts.pop(cells[0])  # a leaf emptied
        fast.set_all(counts)
        slow.set_all(counts)
        fast.set_phase(0.1 * step)
        slow.set_phase(0.1 * step)
        assert _same(fast.total, slow.total)
        for key in counts:
            assert _same(fast._loglik[key], slow._loglik[key])
        for key in cells:
            got, want = fast.rate(*key), slow.rate(*key)
            assert got.mean() == want.mean()
            assert got.interval() == want.interval()
            assert got.prob_below_base() == want.prob_below_base()
        assert fast.ess_share() == slow.ess_share()


def test_the_grid_spans_numpys_quantile():
    prior = load_population_prior()
    sigma = np.maximum(np.asarray(prior.draws["sigma_sess"], dtype=np.float64), 1e-3)
    assert linear_quantile(sigma, 0.99) == float(np.quantile(sigma, 0.99))


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=700
    ),
    q=st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0])
    | st.floats(min_value=0.0, max_value=1.0),
)
def test_linear_quantile_is_numpys(values, q):
    x = np.asarray(values)
    want = float(np.quantile(x, q))
    assert linear_quantile(x, q) == want or (np.isnan(want) and np.isnan(linear_quantile(x, q)))


def test_linear_quantile_of_values_with_nan_is_nan():
    assert np.isnan(linear_quantile(np.array([0.3, np.nan, 0.1]), 0.99))
    assert np.isnan(np.quantile(np.array([0.3, np.nan, 0.1]), 0.99))


def plain_mixture(a, b, weights, base, spread, base_logit=None):
    """BetaMixture.of as one function, every step made for this mixture alone (no shared
    rate.Components), the groups of merged components one at a time: (a, b, weights, base,
    mean, base rate) of the mixture."""
    spread = np.ravel(np.broadcast_to(spread, np.shape(a)))
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    w = np.ravel(weights) / np.sum(weights)
    mean = float(np.sum(w * a / (a + b)))
    base_all = None if base is None else np.broadcast_to(np.ravel(base), a.shape)
    base_rate = float("nan") if base_all is None else float(np.sum(w * base_all))
    keep = heaviest_components(w)
    if keep.shape[0] < a.shape[0]:
        rest = w > 0
        rest[keep] = False
        held = float(w[keep].sum())
        if held < 1.0 - MASS_LEFT:
            # the group of a merged component: its bin of logit(base), then of log(spread)
            label = np.zeros(int(rest.sum()), dtype=np.int64)
            keys = []
            if base_all is not None and base_logit is not None:
                keys.append((np.ravel(base_logit)[rest], REST_BASE_BINS))
            elif base_all is not None:
                p = np.clip(base_all[rest], 1e-12, 1.0 - 1e-12)
                keys.append((np.log(p) - np.log1p(-p), REST_BASE_BINS))
            keys.append((np.log(spread[rest]), REST_SPREAD_BINS))
            for values, bins in keys:
                width = (values.max() - values.min()) / bins
                index = np.zeros_like(label)
                if width > 0:
                    index = np.minimum(((values - values.min()) / width).astype(int), bins - 1)
                label = label * bins + index
            ar, br, wr = a[rest], b[rest], w[rest]
            groups_a, groups_b, groups_w, groups_base = [], [], [], []
            for group in sorted(set(label.tolist())):
                members = label == group
                wg = wr[members] / wr[members].sum()
                ag, bg = ar[members], br[members]
                m = float(np.sum(wg * ag / (ag + bg)))
                second = float(np.sum(wg * ag * (ag + 1.0) / ((ag + bg) * (ag + bg + 1.0))))
                var = max(second - m**2, 1e-12)
                c = max(m * (1.0 - m) / var - 1.0, 1e-3)
                groups_a.append(m * c)
                groups_b.append((1.0 - m) * c)
                groups_w.append(float(wr[members].sum()))
                if base_all is not None:
                    groups_base.append(float(np.sum(wr[members] * base_all[rest][members])))
                    groups_base[-1] /= groups_w[-1]
            if base_all is not None:
                base_all = np.append(base_all[keep], groups_base)
            a, b = np.append(a[keep], groups_a), np.append(b[keep], groups_b)
            w = np.append(w[keep], groups_w)
        else:
            a, b, w = a[keep], b[keep], w[keep] / held
            base_all = None if base_all is None else base_all[keep]
    return a, b, w, base_all, mean, base_rate


def _close(x, y) -> bool:
    # the merged Betas come from a variance (second moment - mean^2): rounding is amplified
    return np.allclose(np.asarray(x), np.asarray(y), rtol=1e-9, atol=0.0, equal_nan=True)


def _same_mixture(got: BetaMixture, plain) -> bool:
    a, b, w, base, mean, base_rate = plain
    return (
        _close(got.a, a)
        and _close(got.b, b)
        and _close(got.weights, w)
        and (got.base is None) == (base is None)
        and (base is None or _close(got.base, base))
        and got.mean() == mean
        and _same(got.base_rate(), base_rate)
    )


@settings(max_examples=120, deadline=None)
@given(
    st.integers(1, 2500),
    st.floats(0.1, 30.0),
    st.sampled_from(["none", "scalar", "array"]),
    st.integers(0, 2**32 - 1),
)
def test_shared_components_give_each_mixture_of_the_plain_formula(n, spread, base_kind, seed):
    """One Components serves several (a, b) over the same weights and concentrations; each
    mixture equals the one made from scratch, to rounding (kept, merged by group and
    renormalised cases all occur); made alone, a mixture groups by its own a + b."""
    rng = np.random.default_rng(seed)
    weights = np.exp(spread * rng.standard_normal(n))  # from even to a few heavy components
    base = {"none": None, "scalar": 0.3, "array": rng.uniform(0.05, 0.9, n)}[base_kind]
    concentration = rng.uniform(0.5, 60.0, n)
    shared = Components.of(n, weights, base, log_spread=np.log(concentration))
    for _ in range(3):
        mean = rng.uniform(0.01, 0.99, n)
        a, b = mean * concentration, (1.0 - mean) * concentration
        plain = plain_mixture(a, b, weights, base, concentration)
        assert _same_mixture(BetaMixture.of(a, b, components=shared), plain)
        assert _same_mixture(BetaMixture.of(a, b, weights, base), plain)


def test_grid_rates_equal_the_plain_mixture_of_their_own_weights():
    prior = load_population_prior()
    grid = SessionGrid(prior)
    rng = np.random.default_rng(8)
    keys = [("learning_rate", "increase", ""), ("model_size", "increase", "DEPTH")]
    keys += [("optimizer", "change", ""), ("learning_rate", "decrease", "")]
    for _ in range(3):
        grid.set_all({key: (float(rng.integers(0, 3)), float(rng.integers(3, 9))) for key in keys})
        weights, _ = grid.posterior_weights()
        base = grid._mass()[1]
        for key in keys + [("not_a_category", "add", "")]:
            a, b = grid._shape(key, *grid.leaves.get(key, (0.0, 0.0)))
            nu = np.broadcast_to(grid.nu[:, None], np.shape(a))
            base_logit = grid.alpha[:, None] + grid.u[None, :]  # the grid's own logit of base
            plain = plain_mixture(a, b, weights, base, nu, base_logit)
            assert _same_mixture(grid.rate(*key), plain)
