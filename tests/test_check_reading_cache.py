"""`check_proposal` on one open bank reads the bank once, and rereads after any commit to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_helpers import SEED_LOG, write_log

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.check import check_proposal

PROPOSAL = "Increase learning rate from 0.01 to 0.05"
MORE_ROWS = [
    f"c{i:03d}\t{0.9 - 0.001 * i:.4f}\t1.0\t{'keep' if i % 3 == 0 else 'discard'}\t"
    f"Increase learning rate from 0.0{i % 9 + 1} to 0.{i % 7 + 1}"
    for i in range(12)
]


@pytest.fixture()
def bank_path(tmp_path: Path) -> Path:
    path = tmp_path / "bank.db"
    with open_bank(path) as bank:
        ingest_log(bank, SEED_LOG)
    return path


def _fresh_answer(path: Path) -> dict:
    return check_proposal(PROPOSAL, bank=path, record=False)


def _comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("decision_id",)}


def test_repeated_checks_on_an_open_bank_equal_fresh_ones(bank_path: Path) -> None:
    with open_bank(bank_path, create=False) as bank:
        answers = [check_proposal(PROPOSAL, bank=bank, record=True) for _ in range(3)]
    fresh = _fresh_answer(bank_path)
    for answer in answers:
        assert _comparable(answer) == fresh


def test_a_commit_by_another_connection_is_seen(bank_path: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "more.tsv", MORE_ROWS)
    with open_bank(bank_path, create=False) as bank:
        before = check_proposal(PROPOSAL, bank=bank, record=True)
        with open_bank(bank_path, create=False) as other:
            ingest_log(other, log)
        after = check_proposal(PROPOSAL, bank=bank, record=False)
    assert after["bank"]["experiments"] > before["bank"]["experiments"]
    assert after["bank"]["sessions"] == before["bank"]["sessions"] + 1
    assert after == _fresh_answer(bank_path)


def test_a_commit_on_the_same_connection_is_seen(bank_path: Path, tmp_path: Path) -> None:
    log = write_log(tmp_path / "more.tsv", MORE_ROWS)
    with open_bank(bank_path, create=False) as bank:
        before = check_proposal(PROPOSAL, bank=bank, record=False)
        ingest_log(bank, log)
        after = check_proposal(PROPOSAL, bank=bank, record=False)
    assert after["bank"]["experiments"] > before["bank"]["experiments"]
    assert after == _fresh_answer(bank_path)


# -- the incremental reading, on both backends and on the fitted path -------------------------


def _store_posterior(bank) -> None:
    """A posterior for the bank as it is now (draws from the model's prior: no PyMC needed),
    published as `nrr fit` publishes (beside a SQLite bank, in a PostgreSQL one)."""
    from core_helpers import publish_posterior
    from test_models_posterior import draws_posterior

    publish_posterior(bank, draws_posterior(bank.experiment_table()))


def _answer(bank_or_url, session: str | None = None) -> dict:
    """Without a stored fit: the conjugate form (the population prior reads no bank sums)."""
    return check_proposal(
        PROPOSAL, bank=bank_or_url, session=session, record=False, use_population_prior=False
    )


@pytest.mark.parametrize("fitted", [False, True], ids=["conjugate", "fitted"])
def test_rows_added_to_an_open_bank_answer_as_a_fresh_reading(
    bank_url: str, tmp_path: Path, fitted: bool
) -> None:
    """The loop's path: ingest a few rows, check again; only the new rows are read."""
    with open_bank(bank_url) as bank:
        ingest_log(bank, SEED_LOG)
        if fitted:
            _store_posterior(bank)
        first = _answer(bank, "seed_results.tsv")
        for step in range(3):
            log = write_log(tmp_path / "more.tsv", MORE_ROWS[: 4 * (step + 1)])
            ingest_log(bank, log)  # the same log, grown: its session gains rows
            again = _answer(bank, "more.tsv")
            assert again == _answer(bank_url, "more.tsv")
    assert first["fit"]["source"] == ("fit" if fitted else "conjugate")
    counted = len(MORE_ROWS) - 1  # a log's first row is its baseline, never counted
    assert again["bank"]["experiments"] == first["bank"]["experiments"] + counted
    assert fitted is False or again["fit"]["n_new"] == counted


@pytest.mark.parametrize("fitted", [False, True], ids=["conjugate", "fitted"])
def test_a_lowered_evidence_weight_rereads_the_whole_bank(bank_url: str, fitted: bool) -> None:
    with open_bank(bank_url) as bank:
        ingest_log(bank, SEED_LOG)
        if fitted:
            _store_posterior(bank)
        before = _answer(bank)
        with open_bank(bank_url, create=False) as other, other.transaction():
            other.execute("UPDATE experiments SET evidence_weight = 0.25")
        after = _answer(bank)
        assert after == _answer(bank_url)
    assert after != before
    # The session's rows now count a quarter each: its cell holds a quarter of the weight.
    assert after["n_weighted"] == pytest.approx(before["n_weighted"] / 4, abs=0.01)


def test_the_evidence_revision_moves_on_changes_to_counted_rows_only(bank) -> None:
    ingest_log(bank, SEED_LOG)
    revision, last = bank.evidence_state()
    with bank.transaction():
        bank.execute("UPDATE experiments SET outcome = 'marginal', delta = 0.5")
    assert bank.evidence_state()[:2] == (revision, last)
    with bank.transaction():
        bank.execute("UPDATE experiments SET evidence_weight = 0.5 WHERE id = ?", (last,))
    assert bank.evidence_state()[0] > revision
    moved = bank.evidence_state()[0]
    with bank.transaction():
        bank.execute("DELETE FROM experiments WHERE id = ?", (last,))
    assert bank.evidence_state()[0] > moved
