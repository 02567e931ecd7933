"""Description parser: seed descriptions, value syntax, result words, ConfigTracker and rules files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrr_stats.errors import NrrInputError
from nrr_stats.parser import (
    ConfigTracker,
    ParsedChange,
    load_rules,
    parse_description,
    parse_log_descriptions,
    strip_result_words,
)
from nrr_stats.parser.values import compare, to_number

FIXTURES = Path(__file__).parent / "fixtures" / "labels"


def seed_descriptions() -> dict[str, str]:
    """The seed log's descriptions keyed by their first words (tests/fixtures/labels/seed-results.tsv)."""
    lines = (FIXTURES / "seed-results.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return {line.split("\t")[-1][:40]: line.split("\t")[-1] for line in lines}


def seed(start: str) -> str:
    matches = [text for key, text in seed_descriptions().items() if key.startswith(start)]
    assert len(matches) == 1, start
    return matches[0]


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (
            "Increase learning rate from 0.01",
            ("learning_rate", "increase", "LEARNING_RATE", "0.01", "0.1"),
        ),
        ("Switch optimizer from SGD", ("optimizer", "replace", "OPTIMIZER", "SGD", "AdamW")),
        ("Add dropout of 0.3", ("regularization", "add", "DROPOUT", "", "0.3")),
        (
            "Increase the number of epochs",
            ("training_length", "increase", "NUM_EPOCHS", "10", "15"),
        ),
        ("Switch from ReLU to GELU", ("activation", "replace", "ACTIVATION", "ReLU", "GELU")),
        ("Increase batch size from 128", ("batch_size", "increase", "BATCH_SIZE", "128", "256")),
        (
            "Reduce weight decay from 1e-4",
            ("regularization", "decrease", "WEIGHT_DECAY", "1e-4", "5e-5"),
        ),
        (
            "Reduce learning rate to 0.005",
            ("learning_rate", "decrease", "LEARNING_RATE", "", "0.005"),
        ),
    ],
)
def test_seed_descriptions_parse_to_full_cells(start: str, expected: tuple[str, ...]) -> None:
    parsed = parse_description(seed(start))
    assert (
        parsed.category,
        parsed.direction,
        parsed.parameter,
        parsed.from_value,
        parsed.to_value,
    ) == expected


@pytest.mark.parametrize(
    ("start", "category", "direction"),
    [
        ("Add residual connections", "architecture_other", "add"),
        ("Enable color jitter", "data", "add"),
        ("Increase the model capacity by doubling", "model_width", "increase"),
        ("Add gradient clipping", "regularization", "add"),
        ("Switch from cosine annealing", "lr_schedule", "replace"),
        ("Increase the FC hidden layer size", "model_width", "increase"),
        ("LLM error", "other", "other"),
        ("baseline", "other", "other"),
    ],
)
def test_seed_descriptions_parse_to_category_and_direction(
    start: str, category: str, direction: str
) -> None:
    parsed = parse_description(seed(start))
    assert (parsed.category, parsed.direction) == (category, direction)


@pytest.mark.parametrize(
    ("text", "category", "direction"),
    [
        ("Use mixed precision training", "systems", "add"),
        ("Reduce batch size to 64", "batch_size", "decrease"),
        ("Switch to AdamW", "optimizer", "replace"),
        ("Increase LR to 0.02", "learning_rate", "increase"),
        ("LR 0.02 and depth 10", "multiple", "other"),
        ("DEPTH 4->6", "model_depth", "increase"),
        ("EMBEDDING_LR 0.6→0.8", "learning_rate", "increase"),
        ("halve batch 524K→262K", "batch_size", "decrease"),
        ("init scale 0.68x", "initialization", "decrease"),
        ("double filters", "model_width", "increase"),
        ("remove logit soft-capping", "architecture_other", "remove"),
        ("untie embeddings", "architecture_other", "remove"),
        ("RMSNorm instead of LayerNorm", "normalization", "replace"),
        ("use SwiGLU", "activation", "replace"),
        ("retry with seed 2", "other", "other"),
        ("increase _DELTA_WEIGHT from 1.0 to 3.0", "other", "increase"),
        ("阶段 2 切块数 48→24", "other", "decrease"),
        ("revert LR to 0.04", "other", "other"),
        ("recapture extension at depth>=3", "other", "add"),  # a named technique proposes adding it
        ("enable cooldown 2 bars", "other", "add"),
        ("raise freshness_weight 0.30->0.38 (reward newer articles)", "other", "increase"),
        ("Add a fourth convolutional block with 256 filters", "model_depth", "increase"),
        ("remove one layer", "model_depth", "decrease"),
        ("lower embedding lr to 0.4 at batch 2^13", "learning_rate", "decrease"),
        ("disable VH->Low rescue", "other", "remove"),
        ("raise TOTAL_BATCH_SIZE from 2**16 to 2**17", "batch_size", "increase"),
        ("U-net skip connections: add skip from early layers", "architecture_other", "add"),
        ("stop loss 2% -> 1.5%", "other", "decrease"),
        ("num_warps 4->8", "systems", "increase"),  # issue 13: warps are systems words
        ("enable torch.compile", "systems", "add"),
        ("MLP 6x->8x", "model_width", "increase"),
        ("Auto-research iteration", "other", "other"),
        ("weight tying", "architecture_other", "add"),
        ("hetero attention schedule (linear*4+sliding*4)", "attention", "replace"),
        ("sqrt WD schedule", "regularization", "replace"),
    ],
)
def test_general_description_forms(text: str, category: str, direction: str) -> None:
    parsed = parse_description(text)
    assert (parsed.category, parsed.direction) == (category, direction)


def test_arrow_and_assignment_values_are_kept_as_written() -> None:
    parsed = parse_description("warmdown_iters 150->300 for more SWA steps")
    assert (parsed.parameter, parsed.from_value, parsed.to_value) == (
        "WARMDOWN_ITERS",
        "150",
        "300",
    )
    assert parse_description("_ROOT_CANDIDATE_CAP 15 -> 13").as_dict() == {
        "category": "other",
        "direction": "decrease",
        "parameter": "ROOT_CANDIDATE_CAP",
        "from": "15",
        "to": "13",
    }


@pytest.mark.parametrize(
    ("text", "parameter", "to_value"),
    [
        ("Increase INT8_KEEP_FLOAT_MAX_NUMEL to 131072", "INT8_KEEP_FLOAT_MAX_NUMEL", "131072"),
        ("exp19: shorten 15m max hold to 2 bars", "MAX_HOLD", "2"),
        ("x0_lambdas init 0.2->0.4 at d20", "X0_LAMBDAS_INIT", "0.4"),
        ("15k samples", "NUM_SAMPLES", "15k"),
        ("raise meta threshold to 0.45", "META_THRESHOLD", "0.45"),
        ("float16 weights", "", "float16"),
    ],
)
def test_parameter_names_come_from_identifiers_aliases_and_nouns(
    text: str, parameter: str, to_value: str
) -> None:
    parsed = parse_description(text)
    assert (parsed.parameter, parsed.to_value) == (parameter, to_value)


def test_as_dict_has_exactly_the_json_keys() -> None:
    assert list(ParsedChange("data", "add", "", "", "").as_dict()) == [
        "category",
        "direction",
        "parameter",
        "from",
        "to",
    ]


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("524K", 524e3),
        ("2^13", 8192.0),
        ("1e-3", 1e-3),
        ("0.6x", 0.6),
        ("4-way", 4.0),
        ("5%", 5.0),
        ("x2", 2.0),
    ],
)
def test_values_as_written_read_as_numbers(written: str, number: float) -> None:
    assert to_number(written) == pytest.approx(number)


def test_compare_orders_numbers_and_swaps_names() -> None:
    assert compare("524K", "262K") == "decrease"
    assert compare("(0.8, 0.95)", "(0.9, 0.98)") == "increase"
    assert compare("relu", "gelu") == "replace"
    assert compare("0.5", "0.50") == "other"


@pytest.mark.parametrize(
    ("text", "kept_words", "gone_words"),
    [
        ("double model width (OOM)", ["double model width"], ["OOM"]),
        ("bundle=gate_up_down (3x chunk) — regression", ["bundle=gate_up_down"], ["regression"]),
        ("exp21: LR 2e-3 (-28.3% vs 1e-3, still climbing)", ["LR 2e-3"], ["28.3"]),
        ("SwiGLU activation: slower+worse than ReLU²", ["SwiGLU activation"], ["slower", "ReLU"]),
        ("DEPTH 10->9 (77M tokens, new best)", ["DEPTH 10->9"], ["new best"]),
        ("increase LR val_bpb 0.993", ["increase LR"], ["0.993"]),
        ("double moment epochs (16->32)", ["(16->32)"], []),
        ("fix OOM - reduce batch_size to 32", ["fix OOM", "batch_size to 32"], []),
    ],
)
def test_strip_result_words_keeps_the_proposal(
    text: str, kept_words: list[str], gone_words: list[str]
) -> None:
    stripped = strip_result_words(text)
    for word in kept_words:
        assert word in stripped
    for word in gone_words:
        assert word not in stripped


def test_result_words_do_not_decide_the_parse() -> None:
    assert parse_description("SwiGLU MLP (worse than ReLU²)") == parse_description("SwiGLU MLP")
    assert parse_description("no weight decay (WD=0.2 better)").direction == "remove"


def kept_then(first: str, kept: bool, then: str) -> ParsedChange:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse(first), kept=kept)
    return tracker.parse(then)


def test_tracker_gives_target_only_changes_a_direction() -> None:
    assert kept_then("LR 0.04", True, "LR to 0.05").direction == "increase"
    assert kept_then("LR 0.1", True, "LR to 0.05").direction == "decrease"
    assert ConfigTracker().parse("LR to 0.05").direction == "other"


def test_discarded_rows_do_not_move_the_config() -> None:
    assert kept_then("LR 0.1", False, "LR to 0.05").direction == "other"
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("LR 0.04"), kept=True)
    tracker.observe(tracker.parse("LR 0.2"), kept=False)
    assert tracker.current == {"LEARNING_RATE": "0.04"}
    assert tracker.parse("LR to 0.05").direction == "increase"


def test_a_counted_noun_names_the_parameter() -> None:
    parsed = kept_then("exp15: 16 refine layers", True, "exp17: 20 refine layers")
    assert (parsed.category, parsed.direction, parsed.parameter) == (
        "model_depth",
        "increase",
        "REFINE_LAYERS",
    )
    assert kept_then("10k samples", True, "15k samples").direction == "increase"


def test_a_relative_factor_beats_an_absolute_current_value() -> None:
    assert kept_then("LR 3.0", True, "2x LR at D_MODEL=256").direction == "increase"
    assert kept_then("init scale 0.8x", True, "init scale 1.2x").direction == "increase"


def test_a_discarded_rows_from_value_reveals_the_current_value() -> None:
    assert kept_then("MATRIX_LR 0.04->0.06", False, "MATRIX_LR 0.03").direction == "decrease"
    assert kept_then("softcap 30 (15 is better)", False, "softcap 20").direction == "increase"


def test_a_baseline_row_states_the_current_configuration() -> None:
    parsed = kept_then("baseline: DEPTH=4 ASPECT_RATIO=64", False, "DEPTH 6")
    assert (parsed.category, parsed.direction) == ("model_depth", "increase")


def test_assignments_equal_to_the_kept_config_are_not_changes() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("lr=0.05 depth=8"), kept=True)
    parsed = tracker.parse("lr=0.05 depth=10")
    assert (parsed.category, parsed.direction, parsed.parameter) == (
        "model_depth",
        "increase",
        "DEPTH",
    )


def test_a_trading_log_does_not_turn_momentum_into_an_optimizer_change() -> None:
    trading = [
        "RSI 30->40 entries",
        "ATR stops 2.0 -> 2.5",
        "wider take profit",
        "momentum 12 -> 24",
    ]
    training = ["lower LR to 0.02", "DEPTH 8->10", "add dropout 0.1", "momentum 0.9 -> 0.95"]
    assert parse_log_descriptions(trading, ["discard"] * 4)[-1].category == "other"
    assert parse_log_descriptions(training, ["discard"] * 4)[-1].category == "optimizer"
    assert parse_description("momentum 12 -> 24").category == "optimizer"


def test_a_kept_multiple_change_moves_every_value_it_names() -> None:
    tracker = ConfigTracker()
    tracker.observe(
        tracker.parse("total batch size 2**14->2**13, Muon learning rate 0.04->0.03"), True
    )
    assert tracker.current == {"TOTAL_BATCH_SIZE": "2**13", "MUON_LR": "0.03"}
    assert tracker.parse("Muon LR 0.02").direction == "decrease"


def test_parse_log_descriptions_is_prefix_safe() -> None:
    descriptions = ["baseline", "LR 0.04", "LR to 0.05", "LR to 0.03", "depth 12"]
    statuses = ["keep", "keep", "discard", "keep", "discard"]
    full = parse_log_descriptions(descriptions, statuses)
    for t in range(len(descriptions)):
        changed_future = descriptions[: t + 1] + ["LR 9.0"] * (len(descriptions) - t - 1)
        future_statuses = statuses[: t + 1] + ["keep"] * (len(descriptions) - t - 1)
        again = parse_log_descriptions(changed_future, future_statuses)
        assert again[t] == full[t]
    assert [p.direction for p in full[2:4]] == ["increase", "decrease"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_user_rules_add_a_category_its_words_and_parameters(tmp_path: Path) -> None:
    rules = load_rules(
        write(
            tmp_path,
            '[categories.risk]\nwords = ["stop loss", "position size"]\npatterns = [\'\\bsl\\d+\\b\']\n'
            '[categories.risk.parameters]\n"stop loss" = "STOP_LOSS"\n',
        )
    )
    parsed = parse_description("tighten stop loss from 2% to 1.5%", rules=rules)
    assert (parsed.category, parsed.direction, parsed.parameter) == (
        "risk",
        "decrease",
        "STOP_LOSS",
    )
    assert parse_description("try sl3 exits", rules=rules).category == "risk"
    assert parse_description("tighten stop loss from 2% to 1.5%").category == "other"
    assert "risk" in rules.vocabulary


def test_user_rules_add_words_to_a_builtin_category(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, '[categories.optimizer]\nwords = ["prodigy"]\n'))
    assert parse_description("switch to prodigy", rules=rules).category == "optimizer"


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("[categories.x\n", ":1: bad rules file: invalid TOML"),
        ("[categories.risk]\nwords = 3\n", "categories.risk.words must be a list of strings"),
        ("[categories.risk]\npatterns = ['(']\n", "bad regex"),
        ("[categories.Risk]\nwords = []\n", "lower_snake_case"),
        ('[categories.risk.parameters]\n"sl" = "stop"\n', "UPPER_SNAKE"),
        ('[directions]\nsideways = ["x"]\n', "is not one of"),
        ("[stuff]\n", "unknown top-level key"),
        ('[categories.multiple]\nwords = ["x"]\n', "reserved"),
    ],
)
def test_bad_rules_files_name_the_file_and_the_fault(tmp_path: Path, text: str, fault: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(NrrInputError) as raised:
        load_rules(path)
    message = raised.value.one_line()
    assert str(path) in message and fault in message and "\n" not in message


def test_missing_directory_and_undecodable_rules_files(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"[categories.caf\xe9]\n")
    for path, fault in (
        (tmp_path / "nope.toml", "no such file"),
        (tmp_path, "directory"),
        (bad, "UTF-8"),
    ):
        with pytest.raises(NrrInputError, match=fault):
            load_rules(path)
