"""Ingest and the outcome deltas read a log's reference rows with one pattern (EVALUATION.md:
the first row and leading rows whose description is `baseline` only set the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from nrr_stats.bank.ingest import leading_reference_rows
from nrr_stats.ingest import metric_deltas


@pytest.mark.parametrize("marked", ["baseline rerun", "**Baseline** rerun", "[baseline] seed 2"])
def test_a_marked_baseline_row_is_a_reference_row_for_ingest_and_for_the_deltas(marked):
    descriptions = ["first run", marked, "try a wider MLP"]
    statuses = ["baseline", "discard", "discard"]
    metrics = [1.0, 0.9, 0.95]  # lower is better
    # Ingest stores the first two rows as reference rows, not experiments...
    assert leading_reference_rows(descriptions, statuses) == 2
    # ...and the deltas measure the first experiment from the best reference value (0.9).
    deltas = metric_deltas(metrics, statuses, "lower", descriptions)
    assert deltas[2] == pytest.approx(-0.05)


def test_a_row_that_only_mentions_a_baseline_is_an_experiment():
    descriptions = ["first run", "beat the baseline with wd 0.1", "try a wider MLP"]
    statuses = ["baseline", "discard", "discard"]
    assert leading_reference_rows(descriptions, statuses) == 1
    deltas = metric_deltas([1.0, 0.9, 0.95], statuses, "lower", descriptions)
    assert np.isclose(deltas[2], 0.05)  # measured from the first row alone
