"""Proposals as agents write them: a real `git diff` at its default context, several changed
values in one diff, NRR's flags and field names, and a check that never answers from nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from core_helpers import SEED_LOG, run_nrr

from nrr_stats.proposal import read_proposal

TRAIN_PY = """\
import torch

# hyperparameters
LEARNING_RATE = 0.01
BATCH_SIZE = 128
WEIGHT_DECAY = 5e-4
OPTIMIZER = "sgd"
NUM_EPOCHS = 10
DROPOUT = 0.0


def train(model):
    lr = LEARNING_RATE
    return model
"""

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git_diff(tmp_path: Path, edits: dict[str, str]) -> str:
    """`git diff` (default 3 lines of context) of train.py after replacing whole lines."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_SYSTEM": "/dev/null",
        "HOME": str(tmp_path),
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo,
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout

    git("init", "-q")
    (repo / "train.py").write_text(TRAIN_PY)
    git("add", "train.py")
    git("commit", "-qm", "baseline")
    text = TRAIN_PY
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    (repo / "train.py").write_text(text)
    return git("diff")


@pytest.fixture(scope="module")
def seed_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("loop") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


@needs_git
def test_a_default_git_diff_is_read_by_its_changed_lines_only(tmp_path: Path) -> None:
    diff = _git_diff(tmp_path, {"LEARNING_RATE = 0.01": "LEARNING_RATE = 0.02"})
    assert "\n BATCH_SIZE = 128" in diff  # the context this test is about
    proposal = read_proposal(diff)
    assert proposal.form == "diff"
    assert proposal.new_values == {"LEARNING_RATE": "0.02"}
    assert proposal.old_values == {"LEARNING_RATE": "0.01"}
    assert [(c.key, c.old, c.new) for c in proposal.changes] == [("LEARNING_RATE", "0.01", "0.02")]
    used = [(line.use, line.text) for line in proposal.lines]
    assert used == [("from", "-LEARNING_RATE = 0.01"), ("to", "+LEARNING_RATE = 0.02")]
    assert proposal.ignored_lines >= 6  # headers and context lines, counted, not read


@needs_git
def test_nrr_check_reads_a_git_diff_from_stdin(tmp_path: Path, seed_bank: Path) -> None:
    diff = _git_diff(tmp_path, {"LEARNING_RATE = 0.01": "LEARNING_RATE = 0.02"})
    run = run_nrr("check", "-", "--bank", str(seed_bank), stdin=diff)
    assert run.code in (0, 1, 2), run.err
    answer = json.loads(run.out)
    assert (answer["category"], answer["direction"]) == ("learning_rate", "increase")
    assert (answer["from"], answer["to"]) == ("0.01", "0.02")
    read_as = answer["read_as"]
    assert read_as["form"] == "diff"
    assert read_as["changes"] == [{"parameter": "LEARNING_RATE", "from": "0.01", "to": "0.02"}]
    assert {line["use"] for line in read_as["lines_used"]} == {"from", "to"}
    assert answer["changes_checked"] == []


@needs_git
def test_a_multi_key_diff_is_answered_for_its_riskiest_change(
    tmp_path: Path, seed_bank: Path
) -> None:
    diff = _git_diff(
        tmp_path,
        {
            "LEARNING_RATE = 0.01": "LEARNING_RATE = 0.1",
            'OPTIMIZER = "sgd"': 'OPTIMIZER = "adamw"',
            "DROPOUT = 0.0": "DROPOUT = 0.1",
        },
    )
    run = run_nrr("check", "-", "--bank", str(seed_bank), stdin=diff)
    assert run.code in (0, 1, 2), run.err
    answer = json.loads(run.out)
    checked = answer["changes_checked"]
    assert [(c["parameter"], c["from"], c["to"]) for c in checked] == [
        ("LEARNING_RATE", "0.01", "0.1"),
        ("OPTIMIZER", "sgd", "adamw"),
        ("DROPOUT", "0.0", "0.1"),
    ]
    severity = {"proceed": 0, "caution": 1, "avoid": 2}
    worst = max(severity[c["verdict"]] for c in checked)
    assert severity[answer["verdict"]] == worst
    riskiest = min(
        (c for c in checked if severity[c["verdict"]] == worst), key=lambda c: c["p_keep"]
    )
    assert (answer["parameter"], answer["p_keep"]) == (riskiest["parameter"], riskiest["p_keep"])
    assert answer["reason"].startswith("the riskiest of 3 changes")
    # The learning-rate increase 0.01 -> 0.1 already failed in the seed log: never "proceed".
    assert checked[0]["verdict"] != "proceed" and answer["verdict"] != "proceed"


def test_context_lines_of_a_hand_written_hunk_are_not_changes() -> None:
    diff = (
        "Try a larger learning rate\n"
        "--- a/train.py\n+++ b/train.py\n@@ -3,5 +3,5 @@\n"
        " BATCH_SIZE = 128\n WEIGHT_DECAY = 5e-4\n-LEARNING_RATE = 0.01\n+LEARNING_RATE = 0.02\n"
        " DROPOUT = 0.0\n"
    )
    proposal = read_proposal(diff)
    assert proposal.description == "Try a larger learning rate"
    assert proposal.new_values == {"LEARNING_RATE": "0.02"}
    assert "BATCH_SIZE" not in proposal.old_values


def test_a_pair_that_keeps_its_value_is_no_change() -> None:
    proposal = read_proposal(
        "@@ -1,2 +1,2 @@\n-LEARNING_RATE = 0.01  # old\n+LEARNING_RATE = 0.01  # tuned\n-x = f(1)\n+x = f(2)\n"
    )
    assert proposal.changes == [] and proposal.form == "diff"


def test_forms_text_and_key_value() -> None:
    assert read_proposal("Switch to AdamW").form == "text"
    kv = read_proposal("Raise the LR\nLEARNING_RATE = 0.02")
    assert kv.form == "key=value"
    assert [(line.number, line.use) for line in kv.lines] == [(1, "description"), (2, "set")]


def test_a_missing_bank_is_exit_3_and_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "typo" / "bank.db"
    run = run_nrr("check", "Increase LR to 0.02", "--bank", str(target))
    assert run.code == 3 and run.out == ""
    assert "nrr ingest results.tsv" in run.err and len(run.err.strip().splitlines()) == 1
    assert not target.exists() and not target.parent.exists()


def test_an_empty_bank_answers_from_the_prior_and_says_so(tmp_path: Path) -> None:
    from nrr_stats.bank import open_bank

    target = tmp_path / "empty.db"
    open_bank(target).close()
    run = run_nrr("check", "Increase LR to 0.02", "--bank", str(target))
    assert run.code in (0, 1, 2), run.err
    answer = json.loads(run.out)
    assert answer["empty_bank"] is True
    assert "no experiments yet" in answer["reason"] and "prior alone" in answer["reason"]
    assert "no experiments yet" in run.err


def test_brief_is_under_one_kilobyte_and_holds_the_numbers(seed_bank: Path) -> None:
    full = json.loads(run_nrr("check", "Switch to AdamW", "--bank", str(seed_bank)).out)
    run = run_nrr("check", "Switch to AdamW", "--bank", str(seed_bank), "--brief")
    assert run.code == {"proceed": 0, "caution": 1, "avoid": 2}[full["verdict"]]
    assert len(run.out.encode()) < 1024
    low, high = full["interval"]
    assert f"P(keep) {full['p_keep']:.2f} [{low:.2f}, {high:.2f}]" in run.out
    assert f"({full['k']} kept)" in run.out and f"base rate {full['base_rate']:.2f}" in run.out
    assert full["similar_failures"][0]["description"][:40] in run.out


def test_a_proposal_setting_very_many_values_is_checked_on_its_first_ones(
    seed_bank: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nrr_stats.check as check

    monkeypatch.setattr(check, "MAX_CHANGES_CHECKED", 3)
    lines = [f"{key} = {value}" for key, value in zip("ABCDE", (1, 2, 3, 4, 5), strict=True)]
    answer = check.check_proposal("\n".join(lines), bank=seed_bank, record=False)
    assert [c["parameter"] for c in answer["changes_checked"]] == ["A", "B", "C"]
    assert answer["reason"].startswith("the riskiest of 3 changes")
    assert any("sets 5 values: the first 3 were checked" in w for w in answer["warnings"])
    assert len(answer["read_as"]["changes"]) == 5  # every change is still said as read
