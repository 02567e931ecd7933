"""Laws of the fast numpy path (issue 3): answers from stored draws, updated by new evidence.

The stored posteriors here hold draws of the hyperparameters taken from the model's prior
(no PyMC needed): every law below must hold for any set of draws, fitted or not.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.errors import NrrInputError
from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.fit import PRIOR_ALPHA, PRIOR_LOG_NU, model_data, stored_posterior
from nrr_stats.models.posterior import (
    STALE_ESS_SHARE,
    load_posterior,
    predict_keep,
)
from nrr_stats.models.rate import mixture_quantiles

N_DRAWS = 400


def draws_posterior(table: ExperimentTable, seed: int = 0, n_draws: int = N_DRAWS):
    """A StoredPosterior whose draws come from the prior, with `table` as the data it saw."""
    rng = np.random.default_rng(seed)
    data = model_data(table)

    def scale():
        return np.abs(rng.normal(0.0, 0.7, size=n_draws))

    sig = {name: scale() for name in ("cat", "cell", "param", "sess", "ccat", "csess")}
    draws = {
        "alpha": rng.normal(PRIOR_ALPHA[0], 0.5, n_draws),
        "sigma_cat": sig["cat"],
        "sigma_cell": sig["cell"],
        "sigma_param": sig["param"],
        "sigma_sess": sig["sess"],
        "nu": np.exp(rng.normal(*PRIOR_LOG_NU, size=n_draws)),
        "a_cat": sig["cat"][:, None] * rng.standard_normal((n_draws, len(data.categories))),
        "b_cell": sig["cell"][:, None] * rng.standard_normal((n_draws, len(data.cells))),
        "e_param": sig["param"][:, None] * rng.standard_normal((n_draws, len(data.parameters))),
        "u_sess": sig["sess"][:, None] * rng.standard_normal((n_draws, len(data.sessions))),
        "crash_alpha": rng.normal(-3.0, 0.5, n_draws),
        "crash_sigma_cat": sig["ccat"],
        "crash_sigma_sess": sig["csess"],
        "crash_nu": np.exp(rng.normal(*PRIOR_LOG_NU, size=n_draws)),
        "crash_a_cat": sig["ccat"][:, None] * rng.standard_normal((n_draws, len(data.categories))),
        "crash_u_sess": sig["csess"][:, None] * rng.standard_normal((n_draws, len(data.sessions))),
    }
    meta = {"created_at": "2026-01-01T00:00:00+00:00", "passed_diagnostics": True}
    return stored_posterior(draws, data, meta)


def records(rows):
    return [
        {"session": s, "category": c, "direction": d, "parameter": p, "status": x}
        for s, c, d, p, x in rows
    ]


BASE_ROWS = [
    ("s1", "learning_rate", "increase", "LR", "discard"),
    ("s1", "learning_rate", "increase", "LR", "discard"),
    ("s1", "learning_rate", "increase", "", "keep"),
    ("s1", "optimizer", "replace", "", "keep"),
    ("s1", "optimizer", "replace", "", "crash"),
    ("s2", "learning_rate", "decrease", "LR", "keep"),
    ("s2", "data", "add", "", "discard"),
    ("s2", "data", "add", "", "keep"),
    ("s2", "optimizer", "replace", "BETA2", "discard"),
]
BASE_TABLE = ExperimentTable.from_records(records(BASE_ROWS))
BASE_POSTERIOR = draws_posterior(BASE_TABLE)

queries = st.tuples(
    st.sampled_from(["s1", "s2", "s_new"]),
    st.sampled_from(["learning_rate", "optimizer", "data", "attention"]),
    st.sampled_from(["increase", "decrease", "replace", "add"]),
    st.sampled_from(["", "LR", "BETA2", "NEW_PARAM"]),
)
extra_rows = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["learning_rate", "optimizer", "data"]),
        st.sampled_from(["increase", "replace", "add"]),
        st.sampled_from(["", "LR"]),
        st.sampled_from(["keep", "discard", "crash"]),
    ),
    max_size=8,
)
fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(queries, extra_rows)
def test_answers_are_probabilities_and_intervals_hold_their_mean(query, extra):
    table = ExperimentTable.from_records(records(BASE_ROWS + extra))
    answer = predict_keep(BASE_POSTERIOR, table, *query)
    for value in (answer.p_keep, answer.p_crash, *answer.interval):
        assert 0.0 < value < 1.0
    assert 0.0 <= answer.prob_below_base <= 1.0
    assert answer.interval[0] <= answer.mean <= answer.interval[1]
    assert 0.0 < answer.base_rate < 1.0
    assert answer.source == "posterior"
    assert answer.n_new == len(extra)


@fast
@given(queries, extra_rows, st.sampled_from(["discard", "crash"]))
def test_a_failure_never_raises_the_mean_and_a_success_never_lowers_it(query, extra, failure):
    session, category, direction, parameter = query
    before = ExperimentTable.from_records(records(BASE_ROWS + extra))
    failed = ExperimentTable.from_records(
        records(BASE_ROWS + extra + [(session, category, direction, parameter, failure)])
    )
    kept = ExperimentTable.from_records(
        records(BASE_ROWS + extra + [(session, category, direction, parameter, "keep")])
    )
    for posterior in (BASE_POSTERIOR, None):
        mean = predict_keep(posterior, before, *query).mean
        assert predict_keep(posterior, failed, *query).mean <= mean + 1e-9
        assert predict_keep(posterior, kept, *query).mean >= mean - 1e-9


@fast
@given(st.integers(min_value=1, max_value=4), st.integers(min_value=1, max_value=6))
def test_interval_narrows_as_a_cells_count_grows_at_a_fixed_rate(keeps_per_five, repeats):
    def table_with(copies: int):
        block = [("s1", "attention", "add", "", "keep")] * keeps_per_five + [
            ("s1", "attention", "add", "", "discard")
        ] * (5 - keeps_per_five)
        return ExperimentTable.from_records(records(BASE_ROWS + block * copies))

    for posterior in (BASE_POSTERIOR, None):
        small = predict_keep(posterior, table_with(repeats), "s1", "attention", "add").interval
        large = predict_keep(posterior, table_with(repeats * 4), "s1", "attention", "add").interval
        assert large[1] - large[0] < small[1] - small[0]


@fast
@given(queries)
def test_importance_update_without_new_data_equals_the_stored_posterior(query):
    session, category, direction, parameter = query
    answer = predict_keep(BASE_POSTERIOR, BASE_TABLE, *query)
    assert answer.n_new == 0 and answer.ess_share == pytest.approx(1.0) and not answer.stale
    # Direct computation from the draws for a fitted leaf: E[(m nu + k) / (nu + n)].
    if session in BASE_POSTERIOR.sessions and (category, direction) in BASE_POSTERIOR.cells:
        if parameter and (category, direction, parameter) not in BASE_POSTERIOR.parameters:
            return
        d = BASE_POSTERIOR.draws
        eta = (
            d["alpha"]
            + d["a_cat"][:, BASE_POSTERIOR.categories.index(category)]
            + d["b_cell"][:, BASE_POSTERIOR.cells.index((category, direction))]
            + d["u_sess"][:, BASE_POSTERIOR.sessions.index(session)]
        )
        if parameter:
            eta = (
                eta
                + d["e_param"][:, BASE_POSTERIOR.parameters.index((category, direction, parameter))]
            )
        mask = [
            r[0] == session and r[1] == category and r[2] == direction and r[3] == parameter
            for r in BASE_ROWS
        ]
        n = sum(mask)
        k = sum(1 for r, used in zip(BASE_ROWS, mask, strict=True) if used and r[4] == "keep")
        m = 1.0 / (1.0 + np.exp(-eta))
        expected = np.mean((m * d["nu"] + k) / (d["nu"] + n))
        assert answer.p_keep == pytest.approx(expected, rel=1e-9)


@fast
@given(st.randoms(use_true_random=False))
def test_order_of_experiments_within_a_session_does_not_change_the_answer(random):
    shuffled = list(BASE_ROWS)
    random.shuffle(shuffled)
    table = ExperimentTable.from_records(records(shuffled))
    for posterior in (BASE_POSTERIOR, None):
        a = predict_keep(posterior, BASE_TABLE, "s1", "learning_rate", "increase", "LR")
        b = predict_keep(posterior, table, "s1", "learning_rate", "increase", "LR")
        assert a.p_keep == pytest.approx(b.p_keep, rel=1e-12)
        assert a.interval == pytest.approx(b.interval, rel=1e-9)


def test_mixture_quantiles_match_a_monte_carlo_reference():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.5, 20, 300), rng.uniform(0.5, 60, 300)
    w = rng.dirichlet(np.ones(300))
    low, high = mixture_quantiles(a, b, w, (0.05, 0.95))
    component = rng.choice(300, size=200_000, p=w)
    samples = rng.beta(a[component], b[component])
    assert low == pytest.approx(np.quantile(samples, 0.05), abs=0.005)
    assert high == pytest.approx(np.quantile(samples, 0.95), abs=0.005)


def test_a_large_unequal_mixture_keeps_its_quantiles_when_light_components_are_dropped():
    """Beyond MIXTURE_COMPONENTS components only the heaviest holding all but 1e-6 of the
    weight are used: the quantiles must equal the whole mixture's, found by bisection."""
    from scipy.special import betainc

    rng = np.random.default_rng(5)
    n = 3500  # a new session: 500 draws x 7 quadrature nodes
    a, b = rng.uniform(2, 200, n), rng.uniform(5, 900, n)
    w = rng.dirichlet(np.full(n, 0.05))  # very unequal weights

    def whole_mixture_quantile(q: float) -> float:
        low, high = 0.0, 1.0
        for _ in range(50):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if np.sum(w * betainc(a, b, mid)) < q else (low, mid)
        return 0.5 * (low + high)

    low, high = mixture_quantiles(a, b, w, (0.05, 0.95))
    assert low == pytest.approx(whole_mixture_quantile(0.05), abs=1e-5)
    assert high == pytest.approx(whole_mixture_quantile(0.95), abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 10_000),
    st.floats(0.5, 500.0),
    st.floats(0.5, 3000.0),
    st.sampled_from([0.05, 0.25, 0.5, 0.95]),
)
def test_mixture_quantiles_invert_the_mixture_cdf(seed, a_scale, b_scale, q):
    """Whatever the components, the quantile's CDF is q (to 1e-6, the answer's precision)."""
    from scipy.special import betainc

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 1200))
    a, b = rng.uniform(0.3, 1.0, n) * a_scale, rng.uniform(0.3, 1.0, n) * b_scale
    w = rng.dirichlet(np.ones(n))
    (x,) = mixture_quantiles(a, b, w, (q,))
    assert 0.0 < x < 1.0
    assert float(np.sum(w * betainc(a, b, x))) == pytest.approx(q, abs=1e-6)


def test_novel_groups_borrow_from_their_parent_level():
    table = BASE_TABLE
    assert (
        predict_keep(BASE_POSTERIOR, table, "s1", "learning_rate", "increase", "LR").level
        == "parameter"
    )
    assert (
        predict_keep(BASE_POSTERIOR, table, "s1", "learning_rate", "increase", "NEW").level
        == "cell"
    )
    assert predict_keep(BASE_POSTERIOR, table, "s1", "learning_rate", "add").level == "category"
    assert predict_keep(BASE_POSTERIOR, table, "s1", "attention", "add").level == "global"
    # A novel cell's answer is its parent's prediction: wide, and the same whatever its name.
    one = predict_keep(BASE_POSTERIOR, table, "s1", "attention", "add")
    assert one.interval[1] - one.interval[0] > 0.3
    assert one.n == 0 and one.n_weighted == 0.0


def test_answers_are_deterministic_and_do_not_depend_on_unrelated_later_rows():
    first = predict_keep(BASE_POSTERIOR, BASE_TABLE, "s_new", "attention", "add")
    again = predict_keep(BASE_POSTERIOR, BASE_TABLE, "s_new", "attention", "add")
    assert first == again


def test_many_surprising_new_experiments_make_the_fit_stale():
    flood = [("s1", "learning_rate", "increase", "LR", "keep")] * 60
    table = ExperimentTable.from_records(records(BASE_ROWS + flood))
    answer = predict_keep(BASE_POSTERIOR, table, "s1", "learning_rate", "increase", "LR")
    assert answer.n_new == 60
    assert answer.ess_share < STALE_ESS_SHARE and answer.stale
    assert answer.mean > 0.8  # the closed-form update still follows the evidence


def test_evidence_removed_since_the_fit_marks_the_answer_stale():
    table = ExperimentTable.from_records(records(BASE_ROWS[:-1]))
    assert predict_keep(BASE_POSTERIOR, table, "s1", "data", "add").stale
    # A table holding only some sessions (a view) has removed nothing from them.
    view = ExperimentTable.from_records(records([r for r in BASE_ROWS if r[0] == "s2"]))
    assert not predict_keep(BASE_POSTERIOR, view, "s2", "data", "add").stale


def test_a_new_session_is_reweighted_by_its_own_data():
    good = [("s_new", "data", "add", "", "keep")] * 6
    bad = [("s_new", "data", "add", "", "discard")] * 6
    query = ("s_new", "optimizer", "replace", "")
    p_good = predict_keep(
        BASE_POSTERIOR, ExperimentTable.from_records(records(BASE_ROWS + good)), *query
    )
    p_bad = predict_keep(
        BASE_POSTERIOR, ExperimentTable.from_records(records(BASE_ROWS + bad)), *query
    )
    assert p_good.p_keep > p_bad.p_keep


def test_stored_posterior_round_trips_through_npz(tmp_path):
    import numpy as np

    path = tmp_path / "bank.posterior.npz"
    np.savez(path, **BASE_POSTERIOR.to_npz_arrays())
    loaded = load_posterior(tmp_path / "bank.posterior.nc")
    assert loaded.cells == BASE_POSTERIOR.cells and loaded.parameters == BASE_POSTERIOR.parameters
    assert loaded.sessions == BASE_POSTERIOR.sessions and loaded.meta == BASE_POSTERIOR.meta
    a = predict_keep(BASE_POSTERIOR, BASE_TABLE, "s2", "data", "add")
    b = predict_keep(loaded, BASE_TABLE, "s2", "data", "add")
    assert a == b


def test_missing_or_corrupt_posterior_is_an_input_error(tmp_path):
    with pytest.raises(NrrInputError, match="nrr fit"):
        load_posterior(tmp_path / "absent.posterior.nc")
    broken = tmp_path / "broken.posterior.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(NrrInputError, match="unreadable"):
        load_posterior(broken)


def test_fast_path_imports_no_pymc_pytensor_arviz_or_xarray(tmp_path):
    np.savez(tmp_path / "b.posterior.npz", **BASE_POSTERIOR.to_npz_arrays())
    script = f"""
import sys
from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.posterior import load_posterior, predict_keep
table = ExperimentTable.from_records({records(BASE_ROWS)!r})
posterior = load_posterior({str(tmp_path / "b.posterior.nc")!r})
predict_keep(posterior, table, "s1", "data", "add")
predict_keep(None, table, "s1", "data", "add")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pymc", "pytensor", "arviz", "xarray"))
print(",".join(heavy))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_a_new_sessions_offset_is_integrated_like_brute_force_monte_carlo():
    """Quadrature over a new session's offset agrees with many sampled offsets per draw."""
    import dataclasses

    from nrr_stats.models.posterior import NEW_SESSION_DRAWS

    rows = (
        [("s_new", "data", "add", "", "keep")] * 5
        + [("s_new", "data", "add", "", "discard")] * 9
        + [("s_new", "learning_rate", "increase", "LR", "discard")] * 6
        + [("s_new", "optimizer", "replace", "", "crash")] * 2
    )
    table = ExperimentTable.from_records(records(BASE_ROWS + rows))
    query = ("s_new", "learning_rate", "increase", "LR")
    answer = predict_keep(BASE_POSTERIOR, table, *query)

    # Brute force: the same draws, each repeated with 300 offsets drawn from N(0, sigma), and
    # s_new entered as a fitted session that saw no data (plain importance weighting).
    repeats = 300
    rng = np.random.default_rng(11)
    d = BASE_POSTERIOR.draws
    thin = np.linspace(
        0, BASE_POSTERIOR.n_draws - 1, min(BASE_POSTERIOR.n_draws, NEW_SESSION_DRAWS)
    )
    thin = thin.astype(int)
    wide = {name: np.repeat(values[thin], repeats, axis=0) for name, values in d.items()}
    for effect, scale in (("u_sess", "sigma_sess"), ("crash_u_sess", "crash_sigma_sess")):
        offsets = wide[scale] * rng.standard_normal(wide[scale].shape[0])
        wide[effect] = np.column_stack([wide[effect], offsets])
    brute = dataclasses.replace(
        BASE_POSTERIOR, draws=wide, sessions=BASE_POSTERIOR.sessions + ("s_new",)
    )
    reference = predict_keep(brute, table, *query)
    assert answer.p_keep == pytest.approx(reference.p_keep, abs=0.01)
    assert answer.p_crash == pytest.approx(reference.p_crash, abs=0.01)
    assert answer.interval == pytest.approx(reference.interval, abs=0.02)
    assert answer.ess_share > reference.ess_share
