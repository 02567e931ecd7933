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
