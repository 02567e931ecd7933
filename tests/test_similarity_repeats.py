"""find_repeats: exact repeats need the same change under the same kept configuration."""

from __future__ import annotations

import copy
import json

import pytest

from nrr_stats.similarity import NEAR_REPEAT_SIMILARITY, find_repeats

PROPOSAL = {
    "category": "learning_rate",
    "direction": "increase",
    "parameter": "LEARNING_RATE",
    "to": "0.02",
    "description": "Increase LR to 0.02",
}
CONFIG = {"LEARNING_RATE": "0.01", "DEPTH": "8"}


def failed(row_id=1, **overrides):
    row = {
        "id": row_id,
        "description": "increase lr to 0.02",
        "category": "learning_rate",
        "direction": "increase",
        "parameter": "LEARNING_RATE",
        "to_value": "0.02",
        "status": "discard",
        "outcome": "regression",
        "config_before": json.dumps(CONFIG),
    }
    row.update(overrides)
    return row


def test_same_change_under_same_config_is_an_exact_repeat():
    result = find_repeats(
        PROPOSAL,
        [failed(to_value="2e-2", config_before={"DEPTH": 8, "LEARNING_RATE": 0.01})],
        CONFIG,
    )
    assert result["exact_repeat"] is True
    assert [row["id"] for row in result["exact"]] == [1]
    assert result["near"] == []


@pytest.mark.parametrize(
    ("config_before", "relation"),
    [
        (json.dumps({"LEARNING_RATE": "0.005", "DEPTH": "8"}), "differs"),
        (json.dumps({"LEARNING_RATE": "0.01"}), "partly known"),
        (None, "not recorded"),
        ("not json", "not recorded"),
    ],
)
def test_same_change_under_another_or_unknown_config_is_only_near(config_before, relation):
    result = find_repeats(PROPOSAL, [failed(config_before=config_before)], CONFIG)
    assert result["exact_repeat"] is False
    assert [row["reason"] for row in result["near"]] == [f"same change, configuration {relation}"]


def test_unknown_current_config_is_never_exact():
    assert find_repeats(PROPOSAL, [failed()], None)["exact_repeat"] is False


@pytest.mark.parametrize(
    "override",
    [
        {"to_value": "0.03"},
        {"direction": "decrease"},
        {"parameter": "MATRIX_LR"},
        {"category": "optimizer"},
    ],
)
def test_a_different_change_is_not_exact(override):
    assert find_repeats(PROPOSAL, [failed(**override)], CONFIG)["exact_repeat"] is False


@pytest.mark.parametrize("status", ["keep", "other"])
def test_rows_that_did_not_fail_are_ignored(status):
    result = find_repeats(PROPOSAL, [failed(status=status, similarity=0.99)], CONFIG)
    assert result == {
        "exact_repeat": False,
        "exact": [],
        "near": [],
        "near_threshold": NEAR_REPEAT_SIMILARITY,
    }


def test_crashes_count_as_failures():
    assert find_repeats(PROPOSAL, [failed(status="crash")], CONFIG)["exact_repeat"] is True


def test_near_repeats_by_similarity_are_sorted_and_thresholded():
    rows = [
        failed(1, to_value="0.03", similarity=0.86),
        failed(2, to_value="0.04", similarity=0.95),
        failed(3, to_value="0.05", similarity=NEAR_REPEAT_SIMILARITY - 0.01),
    ]
    result = find_repeats(PROPOSAL, rows, CONFIG)
    assert [row["id"] for row in result["near"]] == [2, 1]
    assert find_repeats(PROPOSAL, rows, CONFIG, near_threshold=0.9)["near"][0]["id"] == 2


def test_without_parameter_or_target_the_words_must_match():
    proposal = {
        "category": "architecture_other",
        "direction": "add",
        "description": "Add residual connections",
    }
    same = failed(
        1,
        description="add residual  connections",
        category="architecture_other",
        direction="add",
        parameter="",
        to_value="",
    )
    other = failed(
        2,
        description="add SE blocks",
        category="architecture_other",
        direction="add",
        parameter="",
        to_value="",
    )
    result = find_repeats(proposal, [same, other], CONFIG)
    assert [row["id"] for row in result["exact"]] == [1]


def test_is_pure():
    rows = [failed(similarity=0.9)]
    before = (copy.deepcopy(PROPOSAL), copy.deepcopy(rows), copy.deepcopy(CONFIG))
    first = find_repeats(PROPOSAL, rows, CONFIG)
    assert (PROPOSAL, rows, CONFIG) == before
    assert find_repeats(PROPOSAL, rows, CONFIG) == first
