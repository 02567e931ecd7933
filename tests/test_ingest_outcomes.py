"""Status synonyms, metric direction, deltas against the running best, and outcome classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.ingest import classify_outcomes, infer_metric_direction, map_status, metric_deltas
from nrr_stats.taxonomy import OUTCOMES


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        *[(w, "keep") for w in ("keep", "kept", "KEEP", " KEPT ", "accepted", "improved", "best", "BEST", "yes", "✅ keep", "keep*")],
        *[(w, "discard") for w in ("discard", "DISCARD", "discarded", "reverted", "REVERT", "revert", "worse", "no", "rejected", "discard (worse)")],
        *[(w, "crash") for w in ("crash", "error", "failed", "FAILED", "oom", "OOM", "killed", "timeout", "crash: OOM")],
        *[(w, "other") for w in ("baseline", "BASELINE", "running", "analyze", "reference", "tentative", "repair",
                                 "diagnostic", "infra", "verify", "VALIDATE", "CONFIG", "BASELINE_RESET", "run",
                                 "iterate", "contaminated", "size_violation", "", "something else", "not kept")],
    ],
)  # fmt: skip
def test_map_status(raw: str, mapped: str) -> None:
    assert map_status(raw) == mapped


def test_direction_precedence_comment_then_name_then_rows() -> None:
    rising = [1.0, 2.0, 3.0, 4.0, 5.0]
    keeps = ["keep"] * 5
    assert infer_metric_direction(
        "val_loss", rising, keeps, ["# metric_direction: higher_is_better"]
    ) == (
        "higher",
        "comment",
    )
    assert infer_metric_direction("val_loss", rising, keeps) == ("lower", "name")
    assert infer_metric_direction("metric", rising, keeps) == ("higher", "kept-rows")
    assert infer_metric_direction("metric", rising[::-1], keeps) == ("lower", "kept-rows")
    assert infer_metric_direction("score", [1.0, 1.0], ["keep", "keep"]) == ("higher", "name")
    assert infer_metric_direction("metric", [1.0], ["keep"]) == ("lower", "default")


@pytest.mark.parametrize(
    ("name", "direction"),
    [
        ("val_bpb", "lower"), ("val_ppl", "lower"), ("mae_mean", "lower"), ("cv_mse_1_5", "lower"),
        ("total_time_s", "lower"), ("latency_ms", "lower"), ("total_violations", "lower"),
        ("val_accuracy", "higher"), ("val_auc", "higher"), ("valid_sharpe", "higher"),
        ("win_rate", "higher"), ("tok_per_sec", "higher"), ("tg_tok_s", "higher"), ("elo", "higher"),
        ("macro_f1", "higher"), ("val_map50_95", "higher"), ("decode_tps", "higher"),
        ("score (lower is better)", "lower"), ("accuracy_lower_is_better", "lower"),
        ("loss↑", "higher"), ("time [max]", "higher"), ("maximize_profit", "higher"),
    ],
)  # fmt: skip
def test_direction_from_name(name: str, direction: str) -> None:
    # Rows that point the other way do not override a strong name.
    metrics = [1.0, 2.0, 3.0] if direction == "lower" else [3.0, 2.0, 1.0]
    assert infer_metric_direction(name, metrics, ["keep"] * 3) == (direction, "name")


def test_comment_forms() -> None:
    for line, expected in [
        ("# metric_direction: lower_is_better", "lower"),
        ("# metric_direction: higher", "higher"),
        ("# goal: lower is better", "lower"),
        ("# we maximize the score", "higher"),
    ]:
        assert infer_metric_direction("metric", [], [], [line]) == (expected, "comment")


def test_metric_deltas_against_running_best_kept() -> None:
    metrics = [1.0, 0.9, 0.95, None, 0.85, 0.92]
    statuses = ["keep", "keep", "discard", "crash", "discard", "keep"]
    deltas = metric_deltas(metrics, statuses, "lower")
    expected = [np.nan, 0.1, -0.05, np.nan, 0.05, -0.02]
    np.testing.assert_allclose(deltas, expected, atol=1e-12)
    np.testing.assert_allclose(
        metric_deltas(metrics, statuses, "higher")[1:3], [-0.1, -0.05], atol=1e-12
    )


def test_leading_baseline_row_sets_the_reference() -> None:
    deltas = metric_deltas([1.0, 1.2], ["baseline", "discard"], "lower", ["initial state", "x"])
    assert deltas[1] == pytest.approx(-0.2)
    first_row = metric_deltas([1.0, 1.2], ["analyze", "discard"], "lower", ["look around", "x"])
    assert first_row[1] == pytest.approx(-0.2)  # the first row always sets the reference
    no_reference = metric_deltas([None, 1.0, 1.2], ["crash", "analyze", "discard"], "lower")
    assert math.isnan(no_reference[2])


def test_classify_thresholds_split_discards_by_the_logs_own_scale() -> None:
    metrics = [1.0, 1.001, 1.01, 1.011, 1.012, 1.2, None, None]
    statuses = ["keep", "discard", "discard", "discard", "discard", "discard", "crash", "crash"]
    descriptions = ["base", "a", "b", "c", "d", "e", "shape mismatch", "LLM error: Expecting value"]
    outcomes = classify_outcomes(metrics, statuses, "lower", descriptions)
    assert outcomes == [
        "improvement", "marginal", "no_improvement", "no_improvement", "no_improvement",
        "regression", "crash_code", "crash_infra",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("description", "infra"),
    [
        ("LLM error: Expecting value: line 1 column 1 (char 0)", True),
        ("API error 529 overloaded", True),
        ("run exceeded 10 minute timeout", True),
        ("connection reset by peer while downloading shards", True),
        ("No space left on device", True),
        ("patience 30 cuda unavailable", True),
        ("U-net skip connections from early to late layers", False),
        ("d_model=1024 depth=24 OOM", False),
        ("float16 weights (NaN at step 117)", False),
        ("n_head=5 not divisible by n_kv_head=2", False),
        ("mf_small quota 15 slice", False),
    ],
)
def test_crash_cause(description: str, infra: bool) -> None:
    outcome = classify_outcomes([None], ["crash"], "lower", [description])[0]
    assert outcome == ("crash_infra" if infra else "crash_code")


def test_other_rows_get_none() -> None:
    assert classify_outcomes([1.0, 2.0], ["keep", "baseline"], "lower") == ["improvement", None]


STATUS = st.sampled_from(["keep", "discard", "crash", "baseline", "KEPT", "reverted", "oom"])


@st.composite
def metric_logs(draw):
    n = draw(st.integers(1, 30))
    values = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n))
    missing = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    metrics = [None if gone else v / 64 for v, gone in zip(values, missing, strict=True)]
    statuses = draw(st.lists(STATUS, min_size=n, max_size=n))
    direction = draw(st.sampled_from(["lower", "higher"]))
    return metrics, statuses, direction


@given(metric_logs())
@settings(max_examples=200, deadline=None)
def test_outcomes_are_vocabulary_words_and_improvement_iff_keep(log) -> None:
    metrics, statuses, direction = log
    outcomes = classify_outcomes(metrics, statuses, direction)
    for outcome, status in zip(outcomes, statuses, strict=True):
        assert outcome is None or outcome in OUTCOMES
        assert (outcome == "improvement") == (map_status(status) == "keep")
        assert (outcome is None) == (map_status(status) == "other")


@given(metric_logs(), st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_scaling_the_metric_does_not_change_outcomes(log, scale: float) -> None:
    metrics, statuses, direction = log
    scaled = [None if m is None else m * scale for m in metrics]
    assert classify_outcomes(scaled, statuses, direction) == classify_outcomes(
        metrics, statuses, direction
    )


@given(metric_logs())
@settings(max_examples=200, deadline=None)
def test_flipping_metric_sign_and_direction_does_not_change_outcomes(log) -> None:
    metrics, statuses, direction = log
    flipped = [None if m is None else -m for m in metrics]
    other = "higher" if direction == "lower" else "lower"
    assert classify_outcomes(flipped, statuses, other) == classify_outcomes(
        metrics, statuses, direction
    )
    np.testing.assert_array_equal(
        metric_deltas(flipped, statuses, other), metric_deltas(metrics, statuses, direction)
    )


@given(metric_logs(), st.data())
@settings(max_examples=200, deadline=None)
def test_deltas_are_prefix_safe(log, data) -> None:
    metrics, statuses, direction = log
    t = data.draw(st.integers(1, len(metrics)))
    full = metric_deltas(metrics, statuses, direction)
    prefix = metric_deltas(metrics[:t], statuses[:t], direction)
    np.testing.assert_array_equal(prefix, full[:t])


@given(metric_logs())
@settings(max_examples=100, deadline=None)
def test_deltas_match_a_direct_running_best(log) -> None:
    """delta_t = sign x (metric_t - best kept before t); the first row and leading baseline rows
    seed the best."""
    metrics, statuses, direction = log
    deltas = metric_deltas(metrics, statuses, direction)
    sign = 1.0 if direction == "higher" else -1.0
    best = None
    seen_keep = False
    for t, (value, status, delta) in enumerate(zip(metrics, statuses, deltas, strict=True)):
        if value is not None and best is not None:
            assert delta == pytest.approx(sign * (value - best))
        else:
            assert math.isnan(delta)
        if value is None:
            continue
        kept = map_status(status) == "keep"
        if kept or (not seen_keep and (t == 0 or status == "baseline")):
            best = value if best is None else (max(best, value) if sign > 0 else min(best, value))
        seen_keep = seen_keep or kept
