"""Issue 13, third pass: direction from an earlier row written the same way (parser/templates.py),
multipliers written as operators, a key and its change around a colon.
Examples are general phrasings; where one comes from a labelled log, the log is named
(../shared/data/autoresearch-logs/)."""

from __future__ import annotations

import pytest

from nrr_stats.parser import ConfigTracker, parse_description
from nrr_stats.parser.templates import earlier_match, template_direction, template_of


def walk(rows: list[tuple[str, bool]], text: str) -> tuple[str, str, str]:
    tracker = ConfigTracker()
    for earlier, kept in rows:
        tracker.observe(tracker.parse(earlier), kept=kept)
    parsed = tracker.parse(text)
    return parsed.category, parsed.direction, parsed.from_value


def test_a_rewritten_sweep_row_moves_the_way_its_number_moved() -> None:
    # dev/CuriousN006__ML_FluidDynamics_origstyle: "... ae160 dyn260" kept, then "... ae160 dyn320"
    rows = [("raw sweep: latent_dim=24, ae160 dyn260", True)]
    assert walk(rows, "raw sweep: latent_dim=24, ae160 dyn320")[1] == "increase"
    assert walk(rows, "raw sweep: latent_dim=24, ae160 dyn200")[1] == "decrease"
    # without the earlier row the text alone says nothing about which way
    assert walk([], "raw sweep: latent_dim=24, ae160 dyn320")[1] == "other"


def test_the_kept_row_is_the_reference_not_the_latest_discarded_one() -> None:
    rows = [("probe gain 300 mixer", True), ("probe gain 500 mixer", False)]
    # 400 is up from the kept 300 though down from the discarded 500
    assert walk(rows, "probe gain 400 mixer")[1] == "increase"


def test_numbers_moving_both_ways_or_a_seed_give_no_direction() -> None:
    assert walk([("mix 3 and 8 blend", True)], "mix 4 and 6 blend")[1] == "other"
    assert walk([("rerun with seed 1", True)], "rerun with seed 2")[1] == "other"


def test_a_row_index_is_not_a_setting() -> None:
    before = template_of("exp-11: warp tuner 4")
    after = template_of("exp-12: warp tuner 4")
    assert before is not None and after is not None
    assert template_direction(after, before) == ("", "", "")


def test_the_parse_and_the_template_must_agree_on_the_value_changed() -> None:
    # dev2/karpathy__autoresearch__pull-158-head: "DEPTH=16 BATCH=256 ..." discarded, then
    # "DEPTH=12 BATCH=256 ...": the parse's value (256) did not move, DEPTH did
    now = template_of("depth=12 batch=256 total=2^19")
    before = template_of("depth=16 batch=256 total=2^19")
    assert now is not None and before is not None
    assert earlier_match(now, [(before, False)], to_value="256") == ("", "", "")
    assert earlier_match(now, [(before, False)])[0] == "decrease"


def test_the_templates_survive_the_trackers_state() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("raw sweep: ae160 dyn260"), kept=True)
    resumed = ConfigTracker.from_state(tracker.state())
    assert resumed.parse("raw sweep: ae160 dyn320").direction == "increase"


@pytest.mark.parametrize(
    ("text", "direction", "to_value"),
    [
        ("lr*2", "increase", "*2"),
        ("lr * 0.5", "decrease", "*0.5"),
        ("n_embd/2", "decrease", "/2"),
        ("scale lr by 0.5", "decrease", "x0.5"),
        ("multiply the LR by 2", "increase", "x2"),
    ],
)
def test_an_operator_or_a_scaling_factor_is_a_multiplier(
    text: str, direction: str, to_value: str
) -> None:
    parsed = parse_description(text)
    assert (parsed.direction, parsed.to_value) == (direction, to_value)
    assert parsed.parameter


def test_a_multiplier_against_a_known_value_compares_the_product() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("lr 0.02 -> 0.04"), kept=True)
    # a factor of the kept value says which way whatever the kept value is
    assert tracker.parse("lr/2").direction == "decrease"


def test_a_key_then_a_colon_then_its_change_keeps_the_change() -> None:
    parsed = parse_description("beta2: 0.95→0.9")
    assert (parsed.direction, parsed.parameter, parsed.from_value, parsed.to_value) == (
        "decrease",
        "BETA2",
        "0.95",
        "0.9",
    )
    # the commentary after the pair is not read as a second change
    assert parse_description("matrix lr: 0.04 -> 0.06, depth unchanged").category == (
        "learning_rate"
    )


@pytest.mark.parametrize(
    ("text", "parameter"),
    [
        # dev2/shubhamtaywade82__algo_scalper_api (label other / increase / ATR_RISING_LOOKBACK)
        (
            "Increasing the ATR rising lookback period may help to capture more trend reversals",
            "ATR_RISING_LOOKBACK_PERIOD",
        ),
        ("lower the entry threshold", "ENTRY_THRESHOLD"),
        ("reduce the number of retries", "RETRIES"),
    ],
)
def test_the_object_of_an_increase_or_decrease_verb_names_the_parameter(
    text: str, parameter: str
) -> None:
    assert parse_description(text).parameter == parameter


def test_a_named_parameter_is_not_renamed_by_the_verbs_object() -> None:
    assert parse_description("reduce the weight decay").parameter == "WEIGHT_DECAY"
    # a verb that does not give the direction names nothing
    assert parse_description("enable the warmup").parameter == ""


@pytest.mark.parametrize(
    ("text", "direction"),
    [
        ("EMA on -> off", "remove"),
        ("compile false -> true", "add"),
        ("label smoothing off", "remove"),
        ("turn EMA off", "remove"),
        ("dropout=0", "remove"),
        ("dropout=0.1", "add"),
        ("relu -> gelu", "replace"),
    ],
)
def test_a_switch_turned_off_or_on_removes_or_adds(text: str, direction: str) -> None:
    assert parse_description(text).direction == direction


@pytest.mark.parametrize(
    ("text", "category", "direction"),
    [
        ("wider MLP", "model_width", "increase"),
        ("bigger embeddings", "model_width", "increase"),
        ("shorter sequences", "data", "decrease"),
        ("fewer steps", "training_length", "decrease"),
        ("conv 3x3 -> 5x5", "architecture_other", "increase"),
        ("crop 32x32 -> 28x28", "data", "decrease"),
    ],
)
def test_comparatives_and_shapes_name_the_quantity_they_move(
    text: str, category: str, direction: str
) -> None:
    parsed = parse_description(text)
    assert (parsed.category, parsed.direction) == (category, direction)


def test_a_bare_step_count_beside_a_change_is_not_a_training_length_change() -> None:
    # dev2/VectorInstitute__helix-nanolm (label attention / replace): "1373 steps" reports the run
    assert parse_description("all global attention, 1373 steps").category == "attention"
