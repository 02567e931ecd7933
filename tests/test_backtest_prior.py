"""The population prior's files and folds, and laws of the new-session grid answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.models.population import (
    PRIOR_FILE,
    TrainingLog,
    fold_assignment,
    fold_of,
    load_population_prior,
    load_prior,
    save_prior,
    shipped_form,
)
from nrr_stats.models.posterior import StoredPosterior
from nrr_stats.models.session_grid import SessionGrid

CATS = ("learning_rate", "regularization")
CELLS = (("learning_rate", "increase"), ("regularization", "add"))


def tiny_posterior(draws: int = 200, seed: int = 1) -> StoredPosterior:
    """A hand-made posterior over two categories, two cells, no parameters, two sessions."""
    rng = np.random.default_rng(seed)
    d = {
        "alpha": rng.normal(-1.3, 0.2, draws),
        "sigma_cat": np.abs(rng.normal(0.5, 0.1, draws)),
        "sigma_cell": np.abs(rng.normal(0.5, 0.1, draws)),
        "sigma_param": np.abs(rng.normal(0.5, 0.1, draws)),
        "sigma_sess": np.abs(rng.normal(0.9, 0.1, draws)),
        "nu": np.exp(rng.normal(np.log(9), 0.2, draws)),
        "a_cat": rng.normal(0, 0.5, (draws, 2)),
        "b_cell": rng.normal(0, 0.5, (draws, 2)),
        "e_param": np.zeros((draws, 0)),
        "u_sess": rng.normal(0, 0.9, (draws, 2)),
        "crash_alpha": rng.normal(-3, 0.2, draws),
        "crash_sigma_cat": np.abs(rng.normal(0.5, 0.1, draws)),
        "crash_sigma_sess": np.abs(rng.normal(0.5, 0.1, draws)),
        "crash_nu": np.exp(rng.normal(np.log(20), 0.2, draws)),
        "crash_a_cat": rng.normal(0, 0.5, (draws, 2)),
        "crash_u_sess": rng.normal(0, 0.5, (draws, 2)),
    }
    seen = {
        "session": np.array(["s1"]),
        "category": np.array(["learning_rate"]),
        "direction": np.array(["increase"]),
        "parameter": np.array([""]),
        "keeps_w": np.array([1.0]),
        "crashes_w": np.array([0.0]),
        "trials_w": np.array([4.0]),
        "trials": np.array([4]),
    }
    return StoredPosterior(
        draws=d,
        categories=CATS,
        cells=CELLS,
        parameters=(),
        sessions=("s1", "s2"),
        seen=seen,
        meta={"model_version": "test"},
    )


LOGS = [TrainingLog("a.tsv", "s1", 10, 3, 6, 1), TrainingLog("b.tsv", "s2", 5, 1, 4, 0)]


def test_shipped_form_drops_sessions_and_round_trips(tmp_path: Path):
    shipped = shipped_form(tiny_posterior(), LOGS, draws=50)
    assert shipped.sessions == () and shipped.draws["u_sess"].shape == (50, 0)
    assert len(shipped.seen["session"]) == 0
    assert shipped.meta["training_session_keys"] == ["s1", "s2"]
    assert shipped.meta["constant_keep_rate"] == pytest.approx(4 / 15)
    assert all(v.dtype == np.float32 for v in shipped.draws.values())
    path = save_prior(shipped, tmp_path / PRIOR_FILE)
    loaded = load_prior(path)
    assert loaded.cells == CELLS and loaded.meta["n_logs"] == 2
    for name, values in shipped.draws.items():
        np.testing.assert_array_equal(loaded.draws[name], values.astype(np.float64))
    assert load_population_prior(tmp_path) is not None
    assert load_population_prior(tmp_path / "elsewhere") is None


def test_fold_assignment_keeps_logs_with_one_session_key_together():
    pairs = [(f"log{i}.tsv", f"k{i}") for i in range(30)] + [("fork.tsv", "k3")]
    folds = fold_assignment(pairs, 5)
    assert folds["fork.tsv"] == folds["log3.tsv"]
    assert set(folds.values()) <= set(range(5))
    assert folds["log7.tsv"] == fold_of("log7.tsv", 5)


@settings(max_examples=25, deadline=None)
@given(
    keeps=st.integers(0, 6),
    fails=st.integers(0, 12),
    other_keeps=st.integers(0, 5),
    other_fails=st.integers(0, 5),
)
def test_grid_failure_never_raises_and_keep_never_lowers(keeps, fails, other_keeps, other_fails):
    grid = SessionGrid(tiny_posterior(), grid_points=31, max_draws=100)
    grid.set_counts(("regularization", "add", ""), other_keeps, other_keeps + other_fails)
    leaf = ("learning_rate", "increase", "")

    def p_keep(k: float, n: float) -> float:
        grid.set_counts(leaf, k, n)
        return grid.rate(*leaf).mean()

    base = p_keep(keeps, keeps + fails)
    assert p_keep(keeps, keeps + fails + 1) <= base + 1e-12
    assert p_keep(keeps + 1, keeps + fails + 1) >= base - 1e-12
    rate = grid.rate(*leaf)
    low, high = rate.interval(0.9)
    assert 0 < low <= rate.mean() <= high < 1


def test_grid_without_data_has_full_ess_and_set_all_matches_incremental():
    grid = SessionGrid(tiny_posterior(), grid_points=31, max_draws=100)
    assert grid.ess_share() == pytest.approx(1.0)
    counts = {
        ("learning_rate", "increase", ""): (2.0, 7.0),
        ("regularization", "add", ""): (1.0, 3.0),
    }
    grid.set_all(counts)
    fresh = SessionGrid(tiny_posterior(), grid_points=31, max_draws=100)
    for key, (k, n) in counts.items():
        fresh.set_counts(key, k, n)
    assert grid.rate("learning_rate", "increase").mean() == pytest.approx(
        fresh.rate("learning_rate", "increase").mean(), rel=1e-10
    )


def test_phase_term_shifts_a_fresh_session_up_early():
    grid = SessionGrid(tiny_posterior(), grid_points=41, max_draws=100)
    neutral = grid.rate("learning_rate", "increase").mean()
    grid.set_phase(0.8)
    assert grid.rate("learning_rate", "increase").mean() > neutral
    grid.set_phase(0.0)
    assert grid.rate("learning_rate", "increase").mean() == pytest.approx(neutral)


def test_a_grid_kept_across_updates_answers_as_a_fresh_one():
    """nrr check keeps one grid per session between checks: its cached weights and answers
    must follow every change of counts, crash counts and phase."""
    kept = SessionGrid(tiny_posterior(), grid_points=31, max_draws=100)
    leaf = ("learning_rate", "increase", "")
    steps = [
        ({leaf: (1.0, 4.0)}, {"learning_rate": (0.0, 4.0)}, 0.0),
        ({leaf: (1.0, 4.0), ("regularization", "add", ""): (0.0, 2.0)}, {}, 0.3),
        ({("regularization", "add", ""): (1.0, 3.0)}, {"learning_rate": (2.0, 4.0)}, 0.3),
    ]
    for counts, crashes, phase in steps:
        kept.rate(*leaf)  # cache an answer of the old state
        kept.set_all(counts)
        kept.set_crash_counts(crashes)
        kept.set_phase(phase)
        fresh = SessionGrid(tiny_posterior(), grid_points=31, max_draws=100)
        fresh.set_all(counts)
        fresh.set_crash_counts(crashes)
        fresh.set_phase(phase)
        for key in (leaf, ("regularization", "add", "")):
            got, want = kept.rate(*key), fresh.rate(*key)
            assert got.mean() == pytest.approx(want.mean(), rel=1e-9)
            assert kept.p_crash(key[0]) == pytest.approx(fresh.p_crash(key[0]), rel=1e-9)
            assert got.interval() == pytest.approx(want.interval(), rel=1e-7)
            assert got.prob_below_base() == pytest.approx(want.prob_below_base(), rel=1e-7)


def test_fold_prior_cache_key_changes_with_fit_settings(tmp_path: Path):
    """A fold prior cached at one sampler setting is never reused for another."""
    from nrr_stats.models.population import _corpus_hash, fit_settings

    log = tmp_path / "a.tsv"
    log.write_text("commit\tval_bpb\tstatus\tdescription\nabc\t1.0\tkeep\tbaseline\n")
    same = fit_settings(draws=1000, chains=4, seed=0)
    assert _corpus_hash([log], same) == _corpus_hash(
        [log], fit_settings(draws=1000, chains=4, seed=0)
    )
    for other in (
        fit_settings(draws=200, chains=4, seed=0),
        fit_settings(draws=1000, chains=2, seed=0),
        fit_settings(draws=1000, chains=4, seed=1),
    ):
        assert _corpus_hash([log], other) != _corpus_hash([log], same)
    before = _corpus_hash([log], same)
    log.write_text(log.read_text() + "abd\t0.9\tdiscard\tlr up\n")
    assert _corpus_hash([log], same) != before
