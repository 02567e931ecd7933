"""One answer path: every command's number about a cell or a proposal comes from one place.

Laws over random banks and every path (the bank's own fit, the shipped population prior, no
prior): the `patterns` of a check equal `patterns(bank)` for the same cell, and the check's
p_keep, interval and P(rate < base) are those of the one rate distribution (BetaMixture); on a
fitted bank a check answers what the backtest's engine predicts for the same rows; and the
import graph keeps check and backtest siblings over models/.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from core_helpers import SEED_LOG, write_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_models_posterior import draws_posterior

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.check import Checker, cell_json, check_proposal, patterns
from nrr_stats.models.population import load_population_prior
from nrr_stats.models.posterior import npz_path_for
from nrr_stats.models.rate import BetaMixture
from nrr_stats.models.similarity_evidence import evidence_answer, shipped_evidence

PACKAGE = Path(__file__).resolve().parents[1] / "nrr_stats"
DESCRIPTIONS = [
    "Increase learning rate to 0.02",
    "Decrease learning rate to 0.005",
    "Increase batch size to 128",
    "Reduce batch size to 32",
    "Add dropout 0.1",
    "Switch optimizer to AdamW",
    "Add residual connections",
    "Increase weight decay to 0.1",
    "Use cosine learning rate schedule",
    "Increase model depth to 12 layers",
]
PATHS = ("fitted", "population prior", "conjugate")


def _write_bank(directory: Path, rows: list[tuple[int, str]], path: str) -> Path:
    """A bank holding one log of `rows` (description index, status), answering on `path`."""
    lines = ["base\t1.000000\t1.0\tkeep\tbaseline"]
    for i, (d, status) in enumerate(rows):
        lines.append(f"r{i:04d}\t{1.0 - 0.001 * i:.6f}\t1.0\t{status}\t{DESCRIPTIONS[d]}")
    log = write_log(directory / "results.tsv", lines)
    bank_path = directory / "bank.db"
    with open_bank(bank_path) as bank:
        ingest_log(bank, log)
        if path == "fitted":
            target = npz_path_for(bank.posterior_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, **draws_posterior(bank.experiment_table()).to_npz_arrays())
    return bank_path


rows_strategy = st.lists(
    st.tuples(st.integers(0, len(DESCRIPTIONS) - 1), st.sampled_from(["keep", "discard", "crash"])),
    min_size=1,
    max_size=18,
)


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy, proposal=st.integers(0, len(DESCRIPTIONS) - 1))
def test_a_checks_numbers_come_from_the_one_rate_and_its_patterns_from_patterns(
    path: str, rows: list[tuple[int, str]], proposal: int
) -> None:
    if path == "population prior" and load_population_prior() is None:
        pytest.skip("no population prior in this checkout")
    with tempfile.TemporaryDirectory() as scratch:
        bank_path = _write_bank(Path(scratch), rows, path)
        prior = path != "conjugate"
        text = DESCRIPTIONS[proposal]
        answer = check_proposal(text, bank=bank_path, record=False, use_population_prior=prior)
        every_cell = {
            (c.category, c.direction): cell_json(c)
            for c in patterns(bank_path, use_population_prior=prior)
        }
        with Checker(bank_path, use_population_prior=prior) as checker:
            keep = checker.answer(
                None, answer["category"], answer["direction"], answer["parameter"] or ""
            )
            own_cell = checker.answer(None, answer["category"], answer["direction"], "")
            bank_rows = checker.bank.experiments()
    assert (
        answer["fit"]["source"]
        == {
            "fitted": "fit",
            "population prior": "population-prior",
            "conjugate": "conjugate",
        }[path]
    )
    # The check's patterns are patterns(bank)'s entries of its category (plus its own cell).
    for entry in answer["patterns"]:
        key = (entry["category"], entry["direction"])
        assert entry["category"] == answer["category"]
        assert entry == every_cell.get(key, entry)
    listed = {(e["category"], e["direction"]) for e in answer["patterns"]}
    assert listed >= {k for k in every_cell if k[0] == answer["category"]}
    assert (answer["category"], answer["direction"]) in listed
    # Its numbers are the rate distribution's: the proposal's own rate when the shipped
    # similarity-evidence model answers (models/similarity_evidence.py), else its cell's.
    rate = keep.rate
    if shipped_evidence() is not None:
        rate = _evidence_rate(bank_rows, text, answer, keep.base_rate)
    assert isinstance(rate, BetaMixture)
    low, high = rate.interval(0.9)
    assert answer["p_keep"] == round(rate.mean(), 4)
    assert answer["interval"] == [round(low, 4), round(high, 4)]
    assert answer["prob_below_base"] == round(rate.prob_below_base(), 4)
    assert answer["base_rate"] == round(rate.base_rate(), 4)
    # A cell's pattern is the answer for a change in it that names no parameter.
    mine = next(
        e for e in answer["patterns"] if (e["category"], e["direction"]) == listed_key(answer)
    )
    assert mine["mean"] == round(own_cell.rate.mean(), 4)
    assert mine["n"] == own_cell.n and mine["k"] == own_cell.k
    # The distribution is one: its quantiles invert its CDF, its interval holds 90%.
    assert rate.cdf(high) - rate.cdf(low) == pytest.approx(0.9, abs=1e-5)
    assert rate.ppf(0.5) == pytest.approx(_bisect_median(rate), abs=1e-5)


def _evidence_rate(rows: list[dict], text: str, answer: dict, base: float) -> BetaMixture:
    from nrr_stats.parser import ParsedChange

    change = ParsedChange(
        category=answer["category"],
        direction=answer["direction"],
        parameter=answer["parameter"],
        from_value=answer["from"],
        to_value=answer["to"],
    )
    return evidence_answer(shipped_evidence().params, rows, text, change, base).rate


def listed_key(answer: dict) -> tuple[str, str]:
    return answer["category"], answer["direction"]


def _bisect_median(rate: BetaMixture) -> float:
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if rate.cdf(mid) < 0.5 else (low, mid)
    return 0.5 * (low + high)


def test_a_fitted_bank_answers_what_the_backtest_engine_predicts(tmp_path: Path) -> None:
    """The fit replaces the population prior and nothing else: same engine, same dynamics."""
    from nrr_stats.backtest.walk import default_options, walk_log
    from nrr_stats.models.posterior import load_posterior

    proposal = "Increase learning rate to 0.02"
    bank = tmp_path / "bank.db"
    with open_bank(bank) as opened:
        ingest_log(opened, SEED_LOG)
        target = npz_path_for(opened.posterior_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, **draws_posterior(opened.experiment_table()).to_npz_arrays())
    fitted = load_posterior(target)
    extended = tmp_path / "extended.tsv"
    extended.write_text(
        SEED_LOG.read_text(encoding="utf-8") + f"zz00001\t0.700000\t1.1\tdiscard\t{proposal}\n",
        encoding="utf-8",
    )
    walked = walk_log(extended, fitted, default_options(curator_weights=False)).rows[-1]
    answer = check_proposal(proposal, bank=bank, record=False)
    assert answer["fit"]["source"] == "fit"
    assert answer["p_keep"] == pytest.approx(walked.p_keep, abs=1e-4)
    assert answer["interval"] == pytest.approx(list(walked.interval), abs=1e-4)
    assert answer["prob_below_base"] == pytest.approx(walked.prob_below_base, abs=1e-4)
    assert answer["p_crash"] == pytest.approx(walked.p_crash, abs=1e-4)
    assert answer["n_weighted"] == pytest.approx(walked.n_weighted, abs=1e-2)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["models", "similarity", "parser", "ingest"])
def test_the_answer_layers_never_import_check_cli_or_backtest(package: str) -> None:
    forbidden = ("nrr_stats.check", "nrr_stats.cli", "nrr_stats.backtest")
    for path in sorted((PACKAGE / package).rglob("*.py")):
        bad = [m for m in _imports(path) if m.startswith(forbidden)]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_check_does_not_import_the_backtest() -> None:
    assert not [m for m in _imports(PACKAGE / "check.py") if m.startswith("nrr_stats.backtest")]
    code = (
        "import sys, nrr_stats.check\n"
        "print(sorted(m for m in sys.modules if m.startswith('nrr_stats.backtest')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_public_api_is_importable_and_lazy() -> None:
    code = (
        "import sys, nrr_stats\n"
        "light = sorted(m for m in sys.modules if m.startswith('nrr_stats.') or m == 'numpy')\n"
        "from nrr_stats import (Checker, backtest_logs, check_proposal, ingest_log, open_bank,\n"
        "    patterns, validate_nk_record)\n"
        "assert validate_nk_record({}) != []\n"
        "print(light)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# Within the bank: `open_bank` (connect.py) stands above both backends, each backend above the
# `Bank` they return (store.py), and nothing below imports what stands above it.
BANK_LAYERS = {
    "store.py": ("nrr_stats.bank.connect", "nrr_stats.bank.sqlite", "nrr_stats.bank.postgres"),
    "nk_records.py": (
        "nrr_stats.bank.connect",
        "nrr_stats.bank.sqlite",
        "nrr_stats.bank.postgres",
        "nrr_stats.bank.store",
    ),
    "sqlite.py": ("nrr_stats.bank.connect", "nrr_stats.bank.postgres"),
    "postgres.py": ("nrr_stats.bank.connect", "nrr_stats.bank.sqlite"),
}


@pytest.mark.parametrize("module", sorted(BANK_LAYERS))
def test_the_bank_backends_stand_between_bank_and_open_bank(module: str) -> None:
    imported = _imports(PACKAGE / "bank" / module)
    # `nrr_stats.bank` itself is above too: its __init__ imports connect.py.
    bad = [m for m in imported if m.startswith(BANK_LAYERS[module]) or m == "nrr_stats.bank"]
    assert not bad, f"bank/{module} imports {bad}"


def test_open_bank_is_above_both_backends() -> None:
    imported = _imports(PACKAGE / "bank" / "connect.py")
    assert {"nrr_stats.bank.sqlite", "nrr_stats.bank.postgres"} <= imported
    assert (PACKAGE / "bank" / "sqlite.py").exists() and "sqlite3" not in _imports(
        PACKAGE / "bank" / "store.py"
    )
