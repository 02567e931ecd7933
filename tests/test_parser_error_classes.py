"""Error classes of the parser fixed in issue 13's second pass (session 13d), each written from the
misses of one development fold of the labelled logs and scored on the other fold and the held-out
logs (benchmarks/parser_accuracy.py). Every example is a real labelled description; its log is
named in the comment (../shared/data/autoresearch-logs/)."""

from __future__ import annotations

import pytest

from nrr_stats.parser import ConfigTracker, parse_description


@pytest.mark.parametrize(
    ("text", "direction", "from_value"),
    [
        # dev2/menzHSE__autoresearch-cifar10 (label lr_schedule / decrease / ETA_MIN)
        ("eta_min=0 (eta_min=1e-4 was better)", "decrease", "1e-4"),
        # dev2/menzHSE__autoresearch-cifar10 (label data / increase / CROP_PADDING)
        ("crop padding 8 (4 is optimal)", "increase", "4"),
    ],
)
def test_a_value_said_to_be_still_best_is_where_the_change_started(
    text: str, direction: str, from_value: str
) -> None:
    parsed = parse_description(text)
    assert (parsed.direction, parsed.from_value) == (direction, from_value)


def test_a_still_best_value_equal_to_the_new_one_says_no_direction() -> None:
    assert parse_description("crop padding 4 (4 is optimal)").direction == "other"


def test_a_short_key_finds_the_one_kept_value_whose_name_contains_it() -> None:
    # dev2/VectorInstitute__helix-nanolm: "total_batch=65K ..." kept, then "batch=32K ..."
    # (label batch_size / decrease / TOTAL_BATCH, from 65K)
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("total_batch=65K grad_accum=1, matrix_lr=0.015"), kept=True)
    parsed = tracker.parse("batch=32K, device_batch=16, 2772 steps")
    assert (parsed.category, parsed.direction, parsed.from_value) == (
        "batch_size",
        "decrease",
        "65K",
    )


def test_a_short_key_matching_two_kept_values_stays_unknown() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("total_batch=65K, device_batch=64"), kept=True)
    assert tracker.parse("batch=32K").direction == "other"
