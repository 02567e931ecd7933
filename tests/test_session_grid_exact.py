"""The session grid's shortcuts give the numbers of the plain formulas, to the last bit.

`set_counts` skips the two keep tables of a leaf without keeps (gammaln(a + 0) - gammaln(a) is
exactly 0), and the grid's span takes numpy's linear quantile without np.quantile; both are
compared here with the formulas they replace, computed the slow way.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.models.population import load_population_prior
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
