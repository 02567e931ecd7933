"""The fit's PyTensor log-density is the numpy model's (what `nrr check` evaluates), off the maximum too."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.models import similarity_evidence as se

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
CATS = ("learning_rate", "architecture", "regularization")


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import fit_similarity_evidence as fse
        import similarity_evidence_cv as cv

        yield SimpleNamespace(fse=fse, cv=cv)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _session(rng, n: int) -> se.SessionRows:
    base = rng.normal(size=(4, 128))
    rows = base[rng.integers(0, 4, size=n)] + 0.4 * rng.normal(size=(n, 128))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    vocabulary = [f"w{i}" for i in range(10)]
    texts = [
        " ".join(rng.choice(vocabulary, size=rng.integers(0, 5), replace=False)) for _ in range(n)
    ]
    return se.SessionRows(
        y=(rng.random(n) < 0.3).astype(float),
        categories=tuple(CATS[i] for i in rng.integers(0, 3, size=n)),
        proposal_features=rows.astype(np.float32),
        history_features=rows.astype(np.float32),
        words=se.word_sets(texts),
    )


def _stacked(bench, seed: int, lengths):
    """Generated logs (lengths span several sum blocks and the kernel window)."""
    rng = np.random.default_rng(seed)
    logs = [
        SimpleNamespace(file=f"log{i}.tsv", session=_session(rng, n), exact=None, near=None)
        for i, n in enumerate(lengths)
    ]
    prepared = bench.cv.prepare(logs)
    return bench.cv.Stacked(prepared, list(CATS)), [log.session for log in logs]


@settings(max_examples=40, deadline=None)
@given(
    outcomes=st.lists(st.lists(st.booleans(), min_size=1, max_size=120), min_size=1, max_size=4),
    discount=st.floats(0.01, 0.999),
)
def test_blocked_discounted_sums_equal_the_models(bench, outcomes, discount):
    sessions = [
        se.SessionRows(np.array(y, dtype=float), ("",) * len(y), np.zeros((len(y), 1)), None)
        for y in outcomes
    ]
    nbs = [se.Neighbours(*(np.zeros((len(y), 1)),) * 4, np.zeros(len(y)), None) for y in outcomes]
    data = bench.fse.flat_data(sessions, nbs, np.zeros((sum(map(len, outcomes)), 1)), block=8)
    keeps, trials = bench.fse.numpy_discounted_sums(data, discount)
    expected = [se.discounted_sums(s.y, discount) for s in sessions]
    np.testing.assert_allclose(keeps, np.concatenate([e[0] for e in expected]), atol=1e-12)
    np.testing.assert_allclose(trials, np.concatenate([e[1] for e in expected]), atol=1e-12)


@pytest.mark.parametrize("kind", ["similarity", "full", "blind"])
def test_pytensor_log_density_equals_numpy_at_random_points(bench, kind):
    pytest.importorskip("pytensor")
    stacked, sessions = _stacked(bench, 3, [1, 5, 70, 450])
    form = bench.cv.Form(kind, "text", True, list(CATS))
    data = bench.fse.stacked_flat(stacked, form)
    rng = np.random.default_rng(7)
    start = form.start()
    points = bench.fse.random_points(start, rng, 4, scale=0.8)
    checked = bench.fse.check_logp(data, form, sessions, points, rtol=1.0, mode="FAST_COMPILE")
    for point, got in zip(points, checked, strict=True):
        expected = se.log_likelihood(sessions, form.params(point))
        assert got["pytensor"] == pytest.approx(expected, rel=1e-9)
    # the points differ, so an equality that ignored x would not pass
    assert len({round(c["numpy"], 6) for c in checked}) == len(points)


@pytest.mark.parametrize(
    ("kind", "features"),
    [
        ("similarity", "text"),
        ("neighbour", "text"),
        ("neighbours", "text"),
        ("neighbours", "words"),
        ("neighbours_cos", "words"),
    ],
)
def test_pytensor_gradient_matches_finite_differences_of_numpy(bench, kind, features):
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    stacked, sessions = _stacked(bench, 5, [40, 90])
    form = bench.cv.Form(kind, features, True, list(CATS))
    logp, x = bench.fse.pytensor_logp(bench.fse.stacked_flat(stacked, form), form)
    grad = pytensor.function([x], pt.grad(logp, x), mode="FAST_COMPILE")
    point = form.start() + 0.3 * np.random.default_rng(2).standard_normal(form.start().shape[0])
    for j in range(point.shape[0]):
        step = np.zeros_like(point)
        step[j] = 1e-5
        up = se.log_likelihood(sessions, form.params(point + step))
        down = se.log_likelihood(sessions, form.params(point - step))
        assert grad(point)[j] == pytest.approx((up - down) / 2e-5, rel=1e-4, abs=1e-5)


def test_per_log_discount_mixture_uses_earlier_rows_only(bench):
    """The CV's per-log learned discount (gmix): cutting a log leaves every earlier prediction
    exactly unchanged, and with g2 = g it is the shipped form."""
    rng = np.random.default_rng(5)
    params = se.EvidenceParams(
        discount=0.7, prior_keeps=1.5, prior_trials=4.0, strength=0.8, temperature=0.2,
        kernel_discount=0.97, plateau=-0.4, intercept=-0.5, features="text",
    )  # fmt: skip
    extra = {"g2": 0.99, "mix_prior": 0.2}
    session = _session(rng, 90)
    session = se.SessionRows(
        y=(rng.random(90) < 0.7).astype(float),
        categories=session.categories,
        proposal_features=session.proposal_features,
        history_features=session.history_features,
    )
    whole = bench.cv.Stacked(bench.cv.prepare([SimpleNamespace(
        file="a.tsv", session=session, exact=None, near=None)]), list(CATS))  # fmt: skip
    p_whole = whole.p_keep(params, extra)
    for cut in (1, 7, 33, 89):
        part = se.SessionRows(
            y=session.y[:cut],
            categories=session.categories[:cut],
            proposal_features=session.proposal_features[:cut],
            history_features=session.history_features[:cut],
        )
        short = bench.cv.Stacked(bench.cv.prepare([SimpleNamespace(
            file="a.tsv", session=part, exact=None, near=None)]), list(CATS))  # fmt: skip
        assert np.array_equal(short.p_keep(params, extra), p_whole[:cut])
    same = whole.p_keep(params, {"g2": params.discount, "mix_prior": 0.2})
    assert np.allclose(same, whole.p_keep(params), rtol=0, atol=1e-12)
    assert not np.allclose(p_whole, whole.p_keep(params))  # the mixture does move predictions
