"""Laws of the conjugate form and of the data contract (issue 2 item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nrr_stats.errors import NrrInputError
from nrr_stats.models.conjugate import (
    beta_binomial_logpmf,
    beta_posterior,
    cell_posteriors,
    credible_interval,
    fit_beta_prior,
    posterior_mean,
    prob_below,
)
from nrr_stats.models.data import ExperimentTable, cell_counts, table_hash

counts = st.integers(min_value=0, max_value=60).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
priors = st.tuples(
    st.floats(min_value=0.05, max_value=50.0), st.floats(min_value=0.05, max_value=50.0)
)


@given(counts, priors)
def test_posterior_mean_lies_in_unit_interval_and_inside_its_interval(kn, prior):
    k, n = kn
    a, b = beta_posterior(k, n, *prior)
    mean = posterior_mean(a, b)
    low, high = credible_interval(a, b, 0.9)
    assert 0.0 < mean < 1.0
    assert low <= mean <= high


@given(counts, priors)
def test_a_failure_never_raises_the_mean_and_a_success_never_lowers_it(kn, prior):
    k, n = kn
    mean = posterior_mean(*beta_posterior(k, n, *prior))
    after_failure = posterior_mean(*beta_posterior(k, n + 1, *prior))
    after_success = posterior_mean(*beta_posterior(k + 1, n + 1, *prior))
    assert after_failure <= mean + 1e-12
    assert after_success >= mean - 1e-12


@given(st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=40), priors)
def test_interval_narrows_as_count_grows_at_a_fixed_rate(keeps_per_ten, scale, prior):
    # With a prior worth more trials than the data and far from them, the posterior can move
    # toward 0.5 and widen; the law concerns data that outweigh the prior.
    assume(sum(prior) <= 10 * scale)
    small = credible_interval(*beta_posterior(keeps_per_ten * scale, 10 * scale, *prior))
    large = credible_interval(*beta_posterior(keeps_per_ten * scale * 2, 20 * scale, *prior))
    assert large[1] - large[0] < small[1] - small[0]


def test_empirical_bayes_recovers_a_known_prior():
    rng = np.random.default_rng(3)
    trials = rng.integers(5, 40, size=400)
    keeps = rng.binomial(trials, rng.beta(2.0, 6.0, size=400))
    alpha, beta = fit_beta_prior(keeps, trials)
    assert alpha / (alpha + beta) == pytest.approx(0.25, abs=0.03)
    assert 4.0 < alpha + beta < 16.0


def test_empirical_bayes_stays_finite_on_degenerate_input():
    for keeps, trials in (([], []), ([1], [1]), ([0, 0, 0], [5, 9, 1]), ([3, 3], [3, 3])):
        alpha, beta = fit_beta_prior(keeps, trials)
        assert np.isfinite(alpha) and np.isfinite(beta) and alpha > 0 and beta > 0


def test_weighted_counts_count_as_less_evidence():
    rng = np.random.default_rng(5)
    trials = rng.integers(5, 40, size=100).astype(float)
    keeps = rng.binomial(trials.astype(int), rng.beta(2.0, 6.0, size=100)).astype(float)
    a_full, b_full = beta_posterior(keeps[0], trials[0], 2.0, 6.0)
    a_half, b_half = beta_posterior(0.5 * keeps[0], 0.5 * trials[0], 2.0, 6.0)
    full = credible_interval(a_full, b_full)
    half = credible_interval(a_half, b_half)
    assert half[1] - half[0] > full[1] - full[0]
    alpha, beta = fit_beta_prior(0.5 * keeps, 0.5 * trials)
    assert np.isfinite(alpha + beta)


def test_beta_binomial_logpmf_matches_scipy_for_integer_counts():
    from scipy.stats import betabinom

    k = np.array([0, 3, 7, 10])
    assert np.allclose(beta_binomial_logpmf(k, 10, 2.5, 4.0), betabinom.logpmf(k, 10, 2.5, 4.0))


def test_one_beta_rate_agrees_with_scipy_beta():
    from scipy.stats import beta as beta_dist

    from nrr_stats.models.rate import BetaMixture

    cell = BetaMixture.of([3.5], [9.0], base=0.3)
    frozen = beta_dist(3.5, 9.0)
    assert cell.mean() == pytest.approx(frozen.mean())
    assert cell.interval(0.9) == pytest.approx(frozen.interval(0.9))
    assert cell.ppf(0.25) == pytest.approx(frozen.ppf(0.25))
    assert cell.cdf(0.3) == pytest.approx(frozen.cdf(0.3))
    assert cell.prob_below_base() == pytest.approx(frozen.cdf(0.3))
    assert prob_below(3.5, 9.0, 0.3) == pytest.approx(frozen.cdf(0.3))


def test_cell_with_few_data_borrows_from_the_rest():
    keeps = np.array([2, 3, 1, 2, 0])
    trials = np.array([10, 12, 9, 8, 1])
    _, cells = cell_posteriors(keeps, trials)
    sparse = cells[-1]  # one experiment, no keep
    # One failure alone would give a mean of 1/3 under a flat prior; the pooled prior pulls it
    # toward the other cells' rate (about 0.2) and keeps the interval wide.
    assert 0.1 < sparse.mean() < 0.3
    low, high = sparse.interval(0.9)
    assert high - low > 0.2


def _records(rows):
    return [
        {"session": s, "category": c, "direction": d, "parameter": p, "status": st_}
        for s, c, d, p, st_ in rows
    ]


def test_table_from_records_codes_sessions_and_skips_other_statuses():
    table = ExperimentTable.from_records(
        _records(
            [
                ("a", "learning_rate", "increase", "LR", "keep"),
                ("a", "other", "other", "", "other"),
                ("b", "optimizer", "replace", "", "crash"),
                ("a", "learning_rate", "increase", "LR", "discard"),
            ]
        )
    )
    assert len(table) == 3
    assert table.session_names == ("a", "b")
    assert table.session.tolist() == [0, 1, 0]
    assert table.position.tolist() == [0, 0, 1]
    assert table.kept.tolist() == [True, False, False]
    assert table.crashed.tolist() == [False, True, False]
    assert table.weight.tolist() == [1.0, 1.0, 1.0]


def test_table_rejects_bad_weights_and_missing_fields():
    with pytest.raises(NrrInputError, match="weight"):
        ExperimentTable.from_records(
            [{"session": "a", "category": "x", "direction": "y", "status": "keep", "weight": 0.0}]
        )
    with pytest.raises(NrrInputError, match="category"):
        ExperimentTable.from_records([{"session": "a", "direction": "y", "status": "keep"}])


rows = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["learning_rate", "optimizer", "data"]),
        st.sampled_from(["increase", "decrease"]),
        st.sampled_from(["", "LR", "WD"]),
        st.sampled_from(["keep", "discard", "crash"]),
        st.sampled_from([1.0, 0.5, 0.25]),
    ),
    max_size=40,
)


@settings(max_examples=60)
@given(rows, st.randoms(use_true_random=False))
def test_order_within_a_session_does_not_change_the_counts(data, random):
    def table_of(items):
        return ExperimentTable.from_records(
            {"session": s, "category": c, "direction": d, "parameter": p, "status": x, "weight": w}
            for s, c, d, p, x, w in items
        )

    shuffled = list(data)
    random.shuffle(shuffled)
    first, second = table_of(data), table_of(shuffled)
    for level in ("leaf", "cell", "category", "session"):
        a, b = cell_counts(first, level), cell_counts(second, level)
        assert a.key_tuples() == b.key_tuples()
        assert np.allclose(a.keeps_w, b.keeps_w) and np.allclose(a.trials_w, b.trials_w)
        assert np.array_equal(a.trials, b.trials) and np.array_equal(a.crashes, b.crashes)
    assert table_hash(first) == table_hash(second)


@settings(max_examples=60)
@given(rows)
def test_counts_sum_to_the_table_at_every_level(data):
    table = ExperimentTable.from_records(
        {"session": s, "category": c, "direction": d, "parameter": p, "status": x, "weight": w}
        for s, c, d, p, x, w in data
    )
    for level in ("leaf", "parameter", "cell", "category", "session_category", "global"):
        counts = cell_counts(table, level)
        assert counts.trials.sum() == len(table)
        assert counts.keeps.sum() == table.kept.sum()
        assert counts.crashes_w.sum() == pytest.approx(float((table.weight * table.crashed).sum()))
        assert np.all(counts.keeps_w <= counts.trials_w + 1e-12)


cell_arrays = st.lists(counts, min_size=1, max_size=8)


@settings(max_examples=30, deadline=None)
@given(cell_arrays, st.data())
def test_leave_one_out_cells_obey_the_failure_and_success_laws(cells, data):
    keeps = np.array([k for k, _ in cells], dtype=float)
    trials = np.array([n for _, n in cells], dtype=float)
    i = data.draw(st.integers(min_value=0, max_value=len(cells) - 1))
    _, before = cell_posteriors(keeps, trials)
    failed_trials = trials.copy()
    failed_trials[i] += 1
    _, after_failure = cell_posteriors(keeps, failed_trials)
    success_keeps = keeps.copy()
    success_keeps[i] += 1
    _, after_success = cell_posteriors(success_keeps, failed_trials)
    assert after_failure[i].mean() <= before[i].mean() + 1e-12
    assert after_success[i].mean() >= before[i].mean() - 1e-12
