"""`nrr similar`, `suggest`, `patterns`, `report`, `export` and `demo` over a seeded bank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from core_helpers import SEED_LOG, run_nrr

from nrr_stats.bank import open_bank
from nrr_stats.similarity.search import similar_experiments_in_bank


@pytest.fixture(scope="module")
def seed_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("commands") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


def test_similar_lists_failures_best_first(seed_bank: Path) -> None:
    run = run_nrr("similar", "increase learning rate to 0.05", "--bank", str(seed_bank), "-k", "4")
    rows = [json.loads(line) for line in run.out.splitlines()]
    assert run.code == 0 and len(rows) == 4
    assert all(row["status"] in ("discard", "crash") for row in rows)
    scores = [row["similarity"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0]["category"] == "learning_rate"


def test_similar_equals_brute_force_over_the_bank(seed_bank: Path) -> None:
    """The kernel's top-k is the brute-force ranking of the stored feature rows."""
    from nrr_stats.similarity.store import bank_features

    with open_bank(seed_bank) as bank:
        found = similar_experiments_in_bank(bank, "add dropout 0.2", 20, failures_only=False)
        snapshot = bank_features(bank)
    from nrr_stats.parser import parse_description
    from nrr_stats.similarity.search import proposal_vector

    query = proposal_vector(snapshot.space, "add dropout 0.2", parse_description("add dropout 0.2"))
    scores = np.asarray(snapshot.matrix) @ query
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    assert [row["id"] for row in found] == [int(snapshot.ids[i]) for i in order[:20]]


def test_suggest_ranks_cells_by_how_sure_they_are_good(seed_bank: Path) -> None:
    run = run_nrr("suggest", "--bank", str(seed_bank), "--json", "-n", "3")
    cells = [json.loads(line) for line in run.out.splitlines()]
    assert run.code == 0 and len(cells) == 3
    below = [cell["prob_below_base"] for cell in cells]
    assert below == sorted(below)
    patterns = [
        json.loads(line)
        for line in run_nrr(
            "patterns", "--bank", str(seed_bank), "--json", "--all"
        ).out.splitlines()
    ]
    assert (
        min(cell["prob_below_base"] for cell in patterns if cell["category"] != "other") == below[0]
    )


def test_patterns_give_intervals_around_means_with_counts(seed_bank: Path) -> None:
    run = run_nrr("patterns", "--bank", str(seed_bank), "--json")
    cells = [json.loads(line) for line in run.out.splitlines()]
    assert run.code == 0 and sum(cell["n"] for cell in cells) == 20
    for cell in cells:
        assert 0 < cell["interval"][0] <= cell["mean"] <= cell["interval"][1] < 1


def test_report_writes_one_html_page(seed_bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run = run_nrr("report", "--bank", str(seed_bank), "--html", str(out))
    assert run.code == 0, run.err
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert "learning_rate" in page


def test_report_to_an_unwritable_place_exits_3(seed_bank: Path, tmp_path: Path) -> None:
    run = run_nrr(
        "report", "--bank", str(seed_bank), "--html", str(tmp_path / "no" / "dir" / "r.html")
    )
    assert run.code == 3 and "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["patterns", "suggest", "similar", "export"])
def test_commands_on_a_missing_bank_exit_3(tmp_path: Path, command: str) -> None:
    args = {"similar": ("x",), "export": ("1",)}.get(command, ())
    run = run_nrr(command, *args, "--bank", str(tmp_path / "none.db"))
    assert run.code == 3 and "no bank here" in run.err and "nrr ingest results.tsv" in run.err
    assert not (tmp_path / "none.db").exists()


def test_demo_checks_the_five_seed_proposals_with_wide_intervals() -> None:
    from nrr_stats.demo import SEED_PROPOSALS, run_demo

    checks = run_demo()
    assert [text for text, _ in checks] == list(SEED_PROPOSALS)
    for _, answer in checks:
        low, high = answer["interval"]
        assert high - low > 0.2  # a handful of experiments per cell cannot say more


def test_similar_filters_by_session_and_cell_and_refuses_a_bad_cell(tmp_path):
    bank = str(tmp_path / "bank.db")
    assert run_nrr("ingest", str(SEED_LOG), "--bank", bank).code == 0
    lines = run_nrr(
        "similar", "increase LR", "--bank", bank, "--all", "--cell", "learning_rate/increase"
    )
    assert lines.code == 0, lines.err
    found = [json.loads(line) for line in lines.out.splitlines()]
    assert found and {(r["category"], r["direction"]) for r in found} == {
        ("learning_rate", "increase")
    }
    session = run_nrr("similar", "x", "--bank", bank, "--session", "seed_results.tsv", "-k", "3")
    assert session.code == 0 and len(session.out.splitlines()) == 3
    bad = run_nrr("similar", "x", "--bank", bank, "--cell", "learning_rate-increase")
    assert bad.code == 3 and "CATEGORY/DIRECTION" in bad.err and len(bad.err.splitlines()) == 1
    missing = run_nrr("similar", "x", "--bank", bank, "--session", "nope")
    assert missing.code == 3 and "no session" in missing.err
