"""`nrr check`: the SPEC.md contract (input forms, JSON fields, exit codes) and its light import path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import SEED_LOG, run_nrr

from nrr_stats.check import check_proposal
from nrr_stats.decide import VERDICT_EXIT_CODES

REQUIRED_FIELDS = {
    "verdict",
    "reason",
    "p_keep",
    "interval",
    "p_crash",
    "category",
    "direction",
    "parameter",
    "similar_failures",
    "patterns",
    "nk_records",
    "bank",
    "fit",
}


@pytest.fixture(scope="module")
def seed_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("check") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


def _check(bank: Path, *args: str, stdin: str = ""):
    run = run_nrr("check", *args, "--bank", str(bank), stdin=stdin)
    assert run.code in (0, 1, 2), run.err
    answer = json.loads(run.out)
    assert run.code == VERDICT_EXIT_CODES[answer["verdict"]]
    return answer


def test_answer_holds_the_contract_fields(seed_bank: Path) -> None:
    answer = _check(seed_bank, "Increase LR to 0.02")
    assert answer.keys() >= REQUIRED_FIELDS
    low, high = answer["interval"]
    assert 0.0 < low <= answer["p_keep"] <= high < 1.0 or 0.0 < low <= high < 1.0
    assert (answer["category"], answer["direction"]) == ("learning_rate", "increase")
    assert (
        answer["fit"]["n_new"] >= 0 and answer["bank"]["experiments"] == 20
    )  # the baseline is no experiment
    for failure in answer["similar_failures"]:
        assert {"id", "description", "outcome", "delta", "similarity"} <= failure.keys()
        assert failure["outcome"] not in ("improvement", None)
    for cell in answer["patterns"]:
        assert {"category", "direction", "n", "mean", "interval"} <= cell.keys()
        assert cell["interval"][0] <= cell["mean"] <= cell["interval"][1]


def test_thin_cells_answer_with_wide_intervals(seed_bank: Path) -> None:
    """Four learning-rate increases are not statistics: the 90% interval must stay wide."""
    answer = _check(seed_bank, "Increase LR to 0.02")
    low, high = answer["interval"]
    assert high - low > 0.2


@pytest.mark.parametrize("form", ["argument", "file", "file-stdin", "dash-stdin", "piped"])
def test_every_input_form_gives_the_same_answer(seed_bank: Path, tmp_path: Path, form: str) -> None:
    text = "Switch optimizer to AdamW"
    expected = _check(seed_bank, text)
    proposal_file = tmp_path / "proposal.txt"
    proposal_file.write_text(text, encoding="utf-8")
    args, stdin = {
        "argument": ((text,), ""),
        "file": (("--proposal-file", str(proposal_file)), ""),
        "file-stdin": (("--proposal-file", "-"), text),
        "dash-stdin": (("-",), text),
        "piped": ((), text),
    }[form]
    answer = _check(seed_bank, *args, stdin=stdin)
    for key in ("verdict", "p_keep", "interval", "category", "direction"):
        assert answer[key] == expected[key]


def test_diff_lines_give_the_parameter_and_direction(seed_bank: Path) -> None:
    diff = "--- a/train.py\n+++ b/train.py\n@@ -10 +10 @@\n-LEARNING_RATE = 0.01\n+LEARNING_RATE = 0.05\n"
    answer = _check(seed_bank, "-", stdin=diff)
    assert (answer["category"], answer["direction"], answer["parameter"]) == (
        "learning_rate",
        "increase",
        "LEARNING_RATE",
    )


@pytest.mark.parametrize(
    "args",
    [("",), ("--proposal-file", "/nonexistent/proposal.txt"), ("text", "--proposal-file", "x")],
)
def test_bad_proposal_input_exits_3(seed_bank: Path, args: tuple[str, ...]) -> None:
    run = run_nrr("check", *args, "--bank", str(seed_bank))
    assert run.code == 3 and len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err


def test_unknown_session_exits_3(seed_bank: Path) -> None:
    run = run_nrr("check", "Add dropout", "--bank", str(seed_bank), "--session", "no-such-log")
    assert run.code == 3 and "no-such-log" in run.err


def test_repeating_a_failed_change_under_the_same_config_is_flagged(tmp_path: Path) -> None:
    log = tmp_path / "results.tsv"
    log.write_text(
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1\t1.000\t44\tkeep\tbaseline\n"
        "a2\t1.020\t44\tdiscard\tincrease MATRIX_LR from 0.04 to 0.08\n",
        encoding="utf-8",
    )
    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(log), "--bank", str(bank)).code == 0
    answer = check_proposal("increase MATRIX_LR from 0.04 to 0.08", bank=bank)
    assert answer["exact_repeat"] is True and answer["verdict"] in ("caution", "avoid")
    assert "same change already failed" in answer["reason"]


def test_check_records_its_decision(tmp_path: Path) -> None:
    bank = tmp_path / "bank.db"
    run_nrr("ingest", str(SEED_LOG), "--bank", str(bank))
    answer = check_proposal("Add dropout 0.2", bank=bank)
    from nrr_stats.bank import open_bank

    with open_bank(bank) as opened:
        rows = opened.query(
            "SELECT verdict, p_keep FROM decisions WHERE id = ?", (answer["decision_id"],)
        )
    assert rows == [{"verdict": answer["verdict"], "p_keep": answer["p_keep"]}]


def test_check_never_imports_pymc(seed_bank: Path) -> None:
    """The in-loop path answers with numpy only: PyMC, PyTensor and ArviZ stay unloaded."""
    code = (
        "import sys\n"
        "from nrr_stats.cli import main\n"
        f"code = main(['check', 'Increase LR to 0.02', '--bank', {str(seed_bank)!r}])\n"
        "heavy = sorted(m for m in ('pymc', 'pytensor', 'arviz') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr


def test_check_answers_what_the_backtest_engine_predicts(tmp_path: Path) -> None:
    """Without a fit of its own, a bank answers with the engine `nrr backtest` scores."""
    from nrr_stats.backtest.walk import default_options, walk_log
    from nrr_stats.models.population import load_population_prior

    prior = load_population_prior()
    if prior is None:
        pytest.skip("no population prior in this checkout")
    proposal = "Increase learning rate to 0.02"
    extended = tmp_path / "extended.tsv"
    extended.write_text(
        SEED_LOG.read_text(encoding="utf-8") + f"zz00001\t0.700000\t1.1\tdiscard\t{proposal}\n",
        encoding="utf-8",
    )
    walked = walk_log(extended, prior, default_options(curator_weights=False))
    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    answer = check_proposal(proposal, bank=bank, record=False)
    assert answer["p_keep"] == pytest.approx(walked.rows[-1].p_keep, abs=1e-4)
    # Only text-similarity near repeats (proceed -> caution) may differ; avoid never does.
    assert (answer["verdict"] == "avoid") == (walked.rows[-1].verdict == "avoid")
