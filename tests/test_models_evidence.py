"""Laws of Evidence (sums per group, grown in place) and of the incremental posterior update.

A bank that grows between checks is answered by adding the new rows' sums and refreshing only
their leaves; these tests state that this equals building everything from the whole table.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_models_posterior import (
    BASE_POSTERIOR,
    BASE_ROWS,
    extra_rows,
    fast,
    queries,
    records,
)

from nrr_stats.models.data import LEVEL_KEYS, ExperimentTable, cell_counts
from nrr_stats.models.evidence import SUM_FIELDS, Evidence
from nrr_stats.models.posterior import update_posterior

weighted_rows = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["learning_rate", "optimizer", "data"]),
        st.sampled_from(["increase", "replace"]),
        st.sampled_from(["", "LR", "BETA2"]),
        st.sampled_from(["keep", "discard", "crash", "other"]),
        st.floats(0.05, 1.0),
    ),
    max_size=30,
)


def weighted_table(rows) -> ExperimentTable:
    return ExperimentTable.from_records(
        {"session": s, "category": c, "direction": d, "parameter": p, "status": x, "weight": w}
        for s, c, d, p, x, w in rows
    )


def leaf_sums(table: ExperimentTable) -> tuple[list, np.ndarray]:
    counts = cell_counts(table, "leaf")
    return counts.key_tuples(), np.column_stack([getattr(counts, f) for f in SUM_FIELDS])


@fast
@given(weighted_rows, weighted_rows)
def test_evidence_built_in_two_parts_counts_like_the_whole_table(first, second):
    evidence = Evidence.from_table(weighted_table(first))
    evidence.add(*leaf_sums(weighted_table(second)))
    whole = weighted_table(first + second)
    assert len(evidence) == len(whole)
    for level in LEVEL_KEYS:
        got, want = evidence.counts(level), cell_counts(whole, level)
        assert got.key_tuples() == want.key_tuples(), level
        for field in SUM_FIELDS:
            np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=1e-9)


def test_a_group_without_rows_sums_to_zero_and_is_absent():
    evidence = Evidence.from_table(weighted_table([("s1", "data", "add", "", "keep", 0.5)]))
    assert evidence.has("cell", ("data", "add"))
    assert not evidence.has("cell", ("data", "remove"))
    assert evidence.sums("cell", ("data", "remove")).tolist() == [0.0] * len(SUM_FIELDS)
    assert evidence.sums("session_category", ("s1", "data")).tolist() == [
        0.5,
        0.0,
        0.5,
        1.0,
        0.0,
        1.0,
    ]


def test_counts_are_read_again_after_an_add():
    evidence = Evidence.from_table(weighted_table([("s1", "data", "add", "", "keep", 1.0)]))
    before = evidence.counts("cell")
    evidence.add([("s2", "data", "add", "")], np.array([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]))
    assert before.trials.tolist() == [1]
    assert evidence.counts("cell").trials.tolist() == [2]


def _same_answer(a, b):
    assert a.n == b.n and a.k == b.k and a.level == b.level and a.n_new == b.n_new
    assert a.stale == b.stale
    for name in ("p_keep", "p_crash", "prob_below_base", "base_rate", "ess_share"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-6, abs=1e-9), name
    assert a.interval == pytest.approx(b.interval, rel=1e-5, abs=1e-7)


@fast
@given(extra_rows, extra_rows, queries)
def test_refreshing_the_changed_leaves_equals_updating_from_scratch(first, second, query):
    """The in-loop path: a bank read once, then rows added and only their leaves refreshed."""
    evidence = Evidence.from_table(ExperimentTable.from_records(records(BASE_ROWS + first)))
    updated = update_posterior(BASE_POSTERIOR, evidence)
    updated.answer(*query)  # a view cached before the change must not survive it
    keys, sums = leaf_sums(ExperimentTable.from_records(records(second)))
    evidence.add(keys, sums)
    updated.refresh(keys)
    scratch = update_posterior(
        BASE_POSTERIOR, ExperimentTable.from_records(records(BASE_ROWS + first + second))
    )
    _same_answer(updated.answer(*query), scratch.answer(*query))


def test_answering_after_an_add_without_refresh_is_refused():
    evidence = Evidence.from_table(ExperimentTable.from_records(records(BASE_ROWS)))
    updated = update_posterior(BASE_POSTERIOR, evidence)
    evidence.add([("s1", "data", "add", "")], np.array([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]]))
    with pytest.raises(RuntimeError, match="refresh"):
        updated.answer("s1", "data", "add")
