"""The mixture-size rule (models/rate.py) stays close to the whole mixture it stands for.

A session grid's rate is a mixture of draws x grid points (30,500 Betas under the shipped
population prior); answers read it through the rule: the heaviest components as they are, the
rest merged by group into moment-matched Betas. Here the rule's mean, 90% interval and
P(rate < base) are compared with the same numbers read from every component, for sessions
of random rows. Figures on the dev logs' sessions: models/README.md.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.models.engine import SessionEngine
from nrr_stats.models.population import load_population_prior
from nrr_stats.models.rate import BetaMixture, mixture_quantiles
from nrr_stats.models.special import betainc

# How far the rule may read the interval's ends and P(rate < base) from the whole mixture's
# (measured on the dev logs' sessions: at most 0.0019 and 0.0045).
INTERVAL_TOLERANCE = 0.005
BELOW_BASE_TOLERANCE = 0.005

CELLS = [
    ("learning_rate", "increase"),
    ("learning_rate", "decrease"),
    ("model_depth", "increase"),
    ("regularization", "add"),
    ("optimizer", "replace"),
    ("other", "other"),
]
_PRIOR = load_population_prior()


def _whole(grid, key) -> tuple[float, tuple[float, float], float]:
    """Mean, 90% interval and P(rate < base) read from every component of the grid."""
    weights, _ = grid.posterior_weights()
    a, b = grid._shape(key, *grid.leaves.get(key, (0.0, 0.0)))
    a, b, w = a.ravel(), b.ravel(), weights.ravel()
    base = np.broadcast_to(grid._mass()[1], weights.shape).ravel()
    low, high = mixture_quantiles(a, b, w, (0.05, 0.95))
    below = float(np.sum(w * betainc(a, b, base)))
    return float(np.sum(w * a / (a + b))), (low, high), below


rows_strategy = st.lists(
    st.tuples(st.sampled_from(CELLS), st.sampled_from(["keep", "discard", "discard", "crash"])),
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(rows_strategy)
def test_the_rule_reads_the_whole_mixtures_numbers(rows):
    history = [
        {"category": c, "direction": d, "parameter": "", "status": status}
        for (c, d), status in rows
    ]
    engine = SessionEngine(_PRIOR, "s")
    engine.update(history)
    grid = engine.grid
    for category, direction in CELLS[:3] + CELLS[-1:]:
        rate: BetaMixture = grid.rate(category, direction, "")
        mean, (low, high), below = _whole(grid, (category, direction, ""))
        assert abs(rate.mean() - mean) < 1e-12  # the mean is exact
        got_low, got_high = rate.interval(0.9)
        assert abs(got_low - low) < INTERVAL_TOLERANCE
        assert abs(got_high - high) < INTERVAL_TOLERANCE
        assert abs(rate.prob_below_base() - below) < BELOW_BASE_TOLERANCE
