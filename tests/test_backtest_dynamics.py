"""Session dynamics and curator weights in the walk: laws, and no look-ahead with them on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.backtest.ablation import nested_choice, verdict_rates
from nrr_stats.backtest.curation import OfflineCuratorWeights
from nrr_stats.backtest.walk import BacktestOptions, Dynamics, walk_items, walk_log
from nrr_stats.decide import DecisionRule
from nrr_stats.ingest import read_results_log
from nrr_stats.models.population import load_population_prior

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
SEED = FIXTURES / "seed_results.tsv"
PRIOR = load_population_prior()


@settings(max_examples=50, deadline=None)
@given(kept=st.lists(st.booleans(), max_size=40), extra=st.integers(1, 20))
def test_phase_and_plateau_centres_fall_as_the_session_goes_on(kept, extra):
    phase, plateau = Dynamics(phase=0.3), Dynamics(plateau=0.3)
    assert Dynamics().prior_centre(kept) == 0.0
    later = kept + [False] * extra
    assert phase.prior_centre(later) < phase.prior_centre(kept)
    assert plateau.prior_centre(later) < plateau.prior_centre(kept)
    assert plateau.prior_centre(later + [True]) == pytest.approx(plateau.prior_centre([True]))


@settings(max_examples=50, deadline=None)
@given(kept=st.lists(st.booleans(), min_size=1, max_size=40))
def test_discount_weights_are_in_unit_interval_and_never_fall_with_recency(kept):
    weights = Dynamics(keep_discount=0.7, forgetting=0.97).weights(kept)
    assert np.all((weights > 0) & (weights <= 1))
    assert np.all(np.diff(weights) >= -1e-15)


def _history(path: Path) -> list[dict]:
    items = walk_items(read_results_log(path))
    return [i.record for i in items if i.status in ("keep", "discard", "crash")]


def test_curator_weights_keep_kept_rows_whole_and_failures_in_unit_interval():
    history = _history(FIXTURES / "Chang-Han-Chen__autoresearch-moe.tsv")
    weights = OfflineCuratorWeights()(history)
    kept = np.array([r["status"] == "keep" for r in history])
    assert np.all(weights[kept] == 1.0)
    assert np.all((weights > 0) & (weights <= 1))


def test_walk_with_dynamics_and_curator_ignores_later_rows(tmp_path: Path):
    options = BacktestOptions(
        dynamics=Dynamics(keep_discount=0.7, plateau=0.3),
        curator_weights=OfflineCuratorWeights(),
    )
    full = {r.row: r for r in walk_log(SEED, PRIOR, options).rows}
    t = sorted(full)[len(full) // 2]
    log = read_results_log(SEED)
    cut_line = min(r.line_number for r in log.rows if r.row_number > t)
    lines = SEED.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / SEED.name
    cut.write_text("".join(lines[: cut_line - 1]), encoding="utf-8")
    options = BacktestOptions(dynamics=options.dynamics, curator_weights=OfflineCuratorWeights())
    short = {r.row: r for r in walk_log(cut, PRIOR, options).rows}
    assert max(short) == t
    for row in short:
        assert (short[row].p_keep, short[row].verdict) == (full[row].p_keep, full[row].verdict)


def test_stored_evidence_reproduces_the_walks_verdicts():
    rows = walk_log(FIXTURES / "Chang-Han-Chen__autoresearch-moe.tsv", PRIOR).rows
    rates = verdict_rates(rows, DecisionRule())
    avoids = sum(r.verdict == "avoid" for r in rows)
    assert rates["avoids"] == avoids
    strict = verdict_rates(rows, DecisionRule(avoid_below=0.0, caution_below=0.0))
    assert strict["avoids"] == 0  # with no floor nothing is avoided, exact repeats included


def test_nested_choice_never_uses_the_folds_own_logs():
    losses = {
        "a": {"x.tsv": (1.0, 10), "y.tsv": (9.0, 10)},
        "b": {"x.tsv": (9.0, 10), "y.tsv": (1.0, 10)},
    }
    chosen = nested_choice(losses, {"x.tsv": 0, "y.tsv": 1})
    assert chosen == {0: "b", 1: "a"}
