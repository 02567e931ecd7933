"""The parse errors issue 13 lists, one test each (each failed before its fix)."""

from __future__ import annotations

from pathlib import Path

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.parser import ConfigTracker, parse_description


def test_replace_x_with_y_goes_from_x_to_y() -> None:
    parsed = parse_description("replace ReLU with GELU")
    assert parsed.as_dict() == {
        "category": "activation",
        "direction": "replace",
        "parameter": "ACTIVATION",
        "from": "ReLU",
        "to": "GELU",
    }
    phrase = parse_description("replace cosine schedule with linear decay")
    assert (phrase.category, phrase.direction) == ("lr_schedule", "replace")
    assert (phrase.from_value, phrase.to_value) == ("cosine schedule", "linear decay")
    numeric = parse_description("replace dropout 0.1 with 0.2")
    assert (numeric.direction, numeric.from_value, numeric.to_value) == ("increase", "0.1", "0.2")


def test_try_y_instead_of_x_gives_y_not_the_verb() -> None:
    for text in ("try SwiGLU instead of GELU", "use SwiGLU instead of GELU"):
        parsed = parse_description(text)
        assert (parsed.category, parsed.direction) == ("activation", "replace")
        assert (parsed.from_value, parsed.to_value) == ("GELU", "SwiGLU")
    # a noun after the new value is not it: "GELU activation instead of ReLU"
    assert parse_description("GELU activation instead of ReLU").to_value == "GELU"


def test_a_filter_count_of_an_added_block_is_not_the_depth() -> None:
    parsed = parse_description(
        "Add a fourth convolutional block with 256 filters to increase model depth"
    )
    assert (parsed.category, parsed.direction) == ("model_depth", "increase")
    assert parsed.to_value != "256"
    # a value of the thing itself still counts: "add dropout of 0.3"
    assert parse_description("add dropout of 0.3").to_value == "0.3"


def test_the_words_before_a_stated_pair_name_the_parameter() -> None:
    parsed = parse_description("Increase the FC hidden layer size from 256 to 512")
    assert (parsed.category, parsed.direction) == ("model_width", "increase")
    assert (parsed.from_value, parsed.to_value) == ("256", "512")
    assert parsed.parameter == "HIDDEN_LAYER_SIZE"


def test_a_target_only_change_takes_its_from_value_from_the_tracker() -> None:
    tracker = ConfigTracker()
    tracker.observe(tracker.parse("LR 0.04"), kept=True)
    parsed = tracker.parse("LR to 0.05")
    assert (parsed.direction, parsed.from_value, parsed.to_value) == ("increase", "0.04", "0.05")
    # a discarded change does not move the kept value
    tracker.observe(parsed, kept=False)
    assert tracker.parse("lower LR to 0.03").from_value == "0.04"


def test_the_stored_from_value_is_the_kept_value_of_earlier_rows(tmp_path: Path) -> None:
    log = tmp_path / "results.tsv"
    log.write_text(
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1\t1.00\t10\tkeep\tbaseline\n"
        "a2\t0.99\t10\tkeep\tset LR to 0.04\n"
        "a3\t1.01\t10\tdiscard\tLR to 0.08\n"
        "a4\t0.98\t10\tkeep\tdepth 8 -> 10\n"
        "a5\t0.99\t10\tdiscard\tlower LR to 0.02\n",
        encoding="utf-8",
    )
    with open_bank(tmp_path / "bank.db") as bank:
        ingest_log(bank, log)
        rows = {row["description"]: row for row in bank.experiments()}
    assert (rows["LR to 0.08"]["from_value"], rows["LR to 0.08"]["direction"]) == (
        "0.04",
        "increase",
    )
    assert rows["lower LR to 0.02"]["from_value"] == "0.04"
    assert rows["depth 8 -> 10"]["from_value"] == "8"
