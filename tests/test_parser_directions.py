"""Direction in context and the words of other domains (issue 13): comparatives, multipliers,
NxM shapes, pairs, add/remove verbs, the kept configuration, and systems / data vocabulary."""

from __future__ import annotations

import pytest

from nrr_stats.parser import ConfigTracker, parse_description


@pytest.mark.parametrize(
    ("text", "category", "direction"),
    [
        ("bigger batch", "batch_size", "increase"),
        ("fewer layers", "model_depth", "decrease"),  # the comparative inside the named thing
        ("more heads", "model_width", "increase"),
        ("deeper model", "model_depth", "increase"),
        ("smaller model", "model_width", "decrease"),
        ("shorter training", "training_length", "decrease"),
        ("longer warmup", "lr_schedule", "increase"),
        ("wider MLP", "model_width", "increase"),  # TAXONOMY: MLP ratio is model_width
        ("higher LR", "learning_rate", "increase"),
        ("lower WD", "regularization", "decrease"),
    ],
)
def test_comparatives(text: str, category: str, direction: str) -> None:
    parsed = parse_description(text)
    assert (parsed.category, parsed.direction) == (category, direction)


@pytest.mark.parametrize(
    ("text", "direction", "to"),
    [
        ("LR x0.5", "decrease", "x0.5"),
        ("width ×2", "increase", "×2"),
        ("0.5x LR", "decrease", "0.5x"),
        ("2x batch size", "increase", "2x"),
        ("double the width", "increase", ""),
        ("halve LR", "decrease", ""),
    ],
)
def test_multipliers(text: str, direction: str, to: str) -> None:
    parsed = parse_description(text)
    assert (parsed.direction, parsed.to_value) == (direction, to)


@pytest.mark.parametrize(
    ("text", "category", "direction", "values"),
    [
        ("kernel size 3x3 to 5x5", "architecture_other", "increase", ("3x3", "5x5")),
        ("conv kernel 3x3 -> 5x5", "architecture_other", "increase", ("3x3", "5x5")),
        ("patch size 16x16 -> 8x8", "architecture_other", "decrease", ("16x16", "8x8")),
        ("image size 32x32 to 64x64", "data", "increase", ("32x32", "64x64")),
        ("tile 64x64 -> 128x128", "systems", "increase", ("64x64", "128x128")),
        ("batch 64→128", "batch_size", "increase", ("64", "128")),
        ("lr 0.04 → 0.02", "learning_rate", "decrease", ("0.04", "0.02")),
    ],
)
def test_pairs_and_shapes(
    text: str, category: str, direction: str, values: tuple[str, str]
) -> None:
    parsed = parse_description(text)
    assert (parsed.category, parsed.direction) == (category, direction)
    assert (parsed.from_value, parsed.to_value) == values


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("enable EMA", "add"),
        ("use RoPE", "add"),
        ("disable dropout", "remove"),
        ("without weight decay", "remove"),
        ("drop QK norm", "remove"),
        ("remove value embeddings", "remove"),
    ],
)
def test_add_and_remove_verbs(text: str, direction: str) -> None:
    assert parse_description(text).direction == direction


def test_a_target_is_read_against_the_value_in_force() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("DEPTH=8"), kept=True)
    for text, direction in (("DEPTH=10", "increase"), ("depth to 6", "decrease")):
        parsed = tracker.parse(text)
        assert (parsed.direction, parsed.from_value) == (direction, "8")


def test_two_changes_in_two_categories_are_multiple() -> None:
    assert parse_description("LR 0.02 and depth 10").category == "multiple"
    # "10 dim" is depth's value followed by the next key, not a width of 10
    assert parse_description("depth=10 dim=256 HEAD_DIM=64").category == "multiple"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("cudnn benchmark", "systems"),
        ("cuBLAS GEMM for the projection", "systems"),
        ("num_warps 4->8", "systems"),
        ("ACCUM 10→5", "batch_size"),
        ("SEQ 256→128", "data"),
        ("eta_min=0", "lr_schedule"),
        ("Increase LogisticRegression max_iter to 500", "training_length"),
        ("dlr=5e-5", "learning_rate"),
        ("Add RobustScaler after PCA", "data"),
        ("target encoding for the city column", "data"),
    ],
)
def test_domain_words(text: str, category: str) -> None:
    assert parse_description(text).category == category


def test_verbs_of_building_lead_an_add_and_other_domains_stay_other() -> None:
    parsed = parse_description("Recognize simple vertical cones and regenerate their height")
    assert (parsed.category, parsed.direction) == ("other", "add")
    assert parse_description("Deduplicated canonical successors in BFS").direction == "add"
    assert parse_description("tighten stop loss to 2%").category == "other"
    # a technique of several words named alone proposes adding it; labels and re-runs do not
    assert parse_description("scratch buffer reuse in count_into_bins").direction == "add"
    for text in ("H8: phase diagram", "Auto-research iteration", "confirm run with seed 3"):
        assert parse_description(text).direction == "other"


def test_each_part_of_a_multiple_change_is_parsed() -> None:
    parsed = parse_description("double width, halve LR to keep it stable")
    assert parsed.category == "multiple"
    assert [(p.category, p.direction) for p in parsed.parts] == [
        ("model_width", "increase"),
        ("learning_rate", "decrease"),
    ]
    assert parsed.as_dict()["parts"][1]["parameter"] == "LEARNING_RATE"
    assert "parts" not in parse_description("halve LR").as_dict()


def test_a_step_is_not_the_new_value_and_no_help_is_a_result() -> None:
    parsed = parse_description("Increased atr_rising_lookback by 1 from 3 to 4")
    assert (parsed.direction, parsed.from_value, parsed.to_value) == ("increase", "3", "4")
    assert parse_description("cudnn benchmark (no help + more VRAM)").direction == "add"


def test_a_bare_count_of_nothing_named_does_not_hide_the_change() -> None:
    parsed = parse_description("all global attention, 1373 steps")
    assert (parsed.category, parsed.direction) == ("attention", "replace")
