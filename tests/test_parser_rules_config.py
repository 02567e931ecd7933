"""Rules a user can live with: $NRR_RULES or nrr.toml beside the bank, `nrr reparse`,
`nrr taxonomy`, and the example rules files shipped with the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_helpers import run_nrr, write_log

import nrr_stats.cli.parse  # noqa: F401  (registers the commands)
from nrr_stats.bank import open_bank
from nrr_stats.bank.reparse import reparse_bank
from nrr_stats.parser import load_rules, parse_description
from nrr_stats.parser.rules import (
    EXAMPLES,
    configured_rules_path,
    example_rules_path,
    load_configured_rules,
)

TRADING_RULES = """
[categories.exit_rule]
words = ["stop loss", "take profit", "max hold"]
[categories.exit_rule.parameters]
"stop loss" = "STOP_LOSS"
"""
ROWS = [
    "a1\t1.00\t10\tkeep\tbaseline",
    "a2\t0.99\t10\tkeep\tset stop loss to 2%",
    "a3\t1.01\t10\tdiscard\tstop loss to 3%",
    "a4\t0.98\t10\tkeep\tincrease LR to 0.04",
]


@pytest.fixture(autouse=True)
def no_rules_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NRR_RULES", raising=False)


def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "trading.toml"
    path.write_text(TRADING_RULES, encoding="utf-8")
    return path


def test_the_rules_file_comes_from_the_flag_then_the_environment_then_nrr_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = str(tmp_path / "lab" / "bank.db")
    assert configured_rules_path(None, bank) is None
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "rules").mkdir()
    beside = tmp_path / "lab" / "rules" / "mine.toml"
    beside.write_text(TRADING_RULES, encoding="utf-8")
    (tmp_path / "lab" / "nrr.toml").write_text('[parser]\nrules = "rules/mine.toml"\n', "utf-8")
    assert configured_rules_path(None, bank) == beside  # relative to nrr.toml's folder
    from_env = rules_file(tmp_path)
    monkeypatch.setenv("NRR_RULES", str(from_env))
    assert configured_rules_path(None, bank) == from_env
    assert configured_rules_path(beside, bank) == beside
    assert "exit_rule" in load_configured_rules(None, bank).categories


def test_a_bad_nrr_toml_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "nrr.toml").write_text("[parser]\nrules = 3\n", encoding="utf-8")
    log = write_log(tmp_path / "results.tsv", ROWS)
    done = run_nrr("ingest", "--bank", str(tmp_path / "bank.db"), str(log))
    assert done.code == 3
    assert "nrr.toml" in done.err and "[parser] rules" in done.err
    assert not (tmp_path / "bank.db").exists()


def test_nrr_rules_in_the_environment_reaches_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NRR_RULES", str(rules_file(tmp_path)))
    log = write_log(tmp_path / "results.tsv", ROWS)
    bank_path = tmp_path / "bank.db"
    assert run_nrr("ingest", "--bank", str(bank_path), str(log)).code == 0
    with open_bank(bank_path) as bank:
        stored = {row["description"]: row for row in bank.experiments()}
    assert stored["stop loss to 3%"]["category"] == "exit_rule"
    assert stored["stop loss to 3%"]["from_value"] == "2%"


def test_reparse_reclassifies_stored_rows_after_the_rules_change(tmp_path: Path) -> None:
    log = write_log(tmp_path / "results.tsv", ROWS)
    bank_path = tmp_path / "bank.db"
    assert run_nrr("ingest", "--bank", str(bank_path), str(log)).code == 0
    with open_bank(bank_path) as bank:
        before = {row["description"]: row for row in bank.experiments()}
        revision = bank.evidence_state()
    assert before["stop loss to 3%"]["category"] == "other"
    # re-ingesting with the rules changes nothing stored (rows are matched, not re-parsed) ...
    rules = rules_file(tmp_path)
    run_nrr("ingest", "--bank", str(bank_path), "--rules", str(rules), str(log))
    with open_bank(bank_path) as bank:
        assert bank.experiments()[2]["category"] == "other"
    # ... reparse does, and says what moved
    done = run_nrr("reparse", "--bank", str(bank_path), "--rules", str(rules), "--json")
    assert done.code == 0, done.err
    summary = json.loads(done.out)
    # two rows change cell; the LR row only its configuration before (which now holds STOP_LOSS)
    assert summary["rows"] == 4 and summary["changed"] == 3
    assert sum(move["rows"] for move in summary["moves"]) == 2
    with open_bank(bank_path) as bank:
        after = {row["description"]: row for row in bank.experiments()}
        assert bank.evidence_state() != revision  # open readings of the sums are rebuilt
        state = json.loads(bank.sessions()[0]["tracker_state"])
    row = after["stop loss to 3%"]
    assert (row["category"], row["direction"], row["parameter"]) == (
        "exit_rule",
        "increase",
        "STOP_LOSS",
    )
    assert row["from_value"] == "2%" and json.loads(row["config_before"])["STOP_LOSS"] == "2%"
    assert after["increase LR to 0.04"] == {
        **before["increase LR to 0.04"],
        "config_before": after["increase LR to 0.04"]["config_before"],
    }
    assert state["current"]["STOP_LOSS"] == "2%"
    # a second reparse with the same rules has nothing to do
    with open_bank(bank_path) as bank:
        assert reparse_bank(bank, load_rules(rules)).changed == 0


def test_reparse_dry_run_writes_nothing(tmp_path: Path) -> None:
    log = write_log(tmp_path / "results.tsv", ROWS)
    bank_path = tmp_path / "bank.db"
    run_nrr("ingest", "--bank", str(bank_path), str(log))
    done = run_nrr(
        "reparse", "--bank", str(bank_path), "--rules", str(rules_file(tmp_path)), "--dry-run"
    )
    assert done.code == 0 and "would change 3" in done.out
    with open_bank(bank_path) as bank:
        assert bank.experiments()[2]["category"] == "other"


def test_reparse_of_a_missing_bank_is_exit_3(tmp_path: Path) -> None:
    done = run_nrr("reparse", "--bank", str(tmp_path / "none.db"))
    assert done.code == 3 and done.err.count("\n") == 1
    assert not (tmp_path / "none.db").exists()


def test_taxonomy_prints_every_word_of_the_vocabulary_with_examples(tmp_path: Path) -> None:
    from nrr_stats.taxonomy import CATEGORIES, DIRECTIONS

    done = run_nrr("taxonomy", "--json", "--bank", str(tmp_path / "bank.db"))
    table = json.loads(done.out)
    assert [c["name"] for c in table["categories"]] == [
        *[c for c in CATEGORIES if c not in ("multiple", "other")],
        "multiple",
        "other",
    ]
    assert [d["name"] for d in table["directions"]] == list(DIRECTIONS)
    named = {c["name"]: c for c in table["categories"]}
    assert "increase LR to 0.04" in named["learning_rate"]["examples"]
    assert "lr" in named["learning_rate"]["words"]
    done = run_nrr("taxonomy", "--rules", str(rules_file(tmp_path)))
    assert done.code == 0 and "exit_rule [rules file]" in done.out


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_shipped_example_rules_load_by_name(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = example_rules_path(name)
    assert path.is_file()
    loaded = load_rules(path)
    assert loaded.user_categories
    monkeypatch.setenv("NRR_RULES", name)
    assert configured_rules_path(None, str(tmp_path / "bank.db")) == path


def test_the_example_rules_classify_their_domains() -> None:
    trading = load_rules(example_rules_path("trading"))
    systems = load_rules(example_rules_path("systems"))
    assert parse_description("tighten stop loss to 2%", rules=trading).category == "exit_rule"
    tile = parse_description("tile size 64 -> 128", rules=systems)
    assert (tile.category, tile.direction, tile.parameter) == ("tiling", "increase", "TILE_SIZE")
    threads = parse_description("4 threads instead of 8", rules=systems)
    assert (threads.category, threads.direction) == ("parallelism", "decrease")
    # ML descriptions keep their built-in categories under either file
    assert parse_description("increase LR to 0.04", rules=systems).category == "learning_rate"


def test_reparse_updates_rows_on_each_backend(bank, tmp_path: Path) -> None:
    from nrr_stats.bank.ingest import ingest_log

    ingest_log(bank, write_log(tmp_path / "results.tsv", ROWS))
    summary = reparse_bank(bank, load_rules(rules_file(tmp_path)))
    assert summary.changed == 3
    categories = [row["category"] for row in bank.experiments()]
    assert categories == ["other", "exit_rule", "exit_rule", "learning_rate"]
