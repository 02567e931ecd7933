"""The evidence sums saved beside a large bank: a new process starts from them, never from stale ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from core_helpers import SEED_LOG, write_log
from hypothesis import given
from test_check_reading_cache import MORE_ROWS
from test_models_evidence import fast, weighted_rows, weighted_table

import nrr_stats.bank.evidence_file as evidence_file
from nrr_stats.bank import open_bank
from nrr_stats.bank.evidence_file import load_evidence, save_evidence, saved_state
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.check import Checker
from nrr_stats.models.data import LEVEL_KEYS
from nrr_stats.models.evidence import SUM_FIELDS, Evidence


def assert_same_sums(got: Evidence, want: Evidence) -> None:
    for level in LEVEL_KEYS:
        a, b = got.counts(level), want.counts(level)
        assert a.key_tuples() == b.key_tuples(), level
        for name in SUM_FIELDS:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-12)


@fast
@given(weighted_rows)
def test_saved_sums_load_as_they_were(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("saved") / "bank.evidence.npz"
    evidence = Evidence.from_table(weighted_table(rows))
    assert save_evidence(path, evidence, (7, 123))
    loaded, state = load_evidence(path)
    assert state == (7, 123) == saved_state(path)
    assert_same_sums(loaded, evidence)


@pytest.fixture()
def large(monkeypatch):
    """Every bank counts as large enough to save its sums."""
    monkeypatch.setattr(evidence_file, "MIN_LEAVES", 0)


def _fresh(url: str) -> Evidence:
    with open_bank(url, create=False) as bank:
        return Evidence.from_leaf_sums(bank.evidence_sums())


def _new_process_reading(url: str, reads: list[int]):
    """A reading by a bank opened anew (as a new process would), noting where its reads began."""
    bank = open_bank(url, create=False)
    original = bank.evidence_sums

    def noted(after_id: int = 0):
        reads.append(after_id)
        return original(after_id)

    bank.evidence_sums = noted  # type: ignore[method-assign]
    return bank, Checker(bank).reading()


def test_a_new_process_starts_from_the_saved_sums_and_reads_only_newer_rows(
    bank_url, tmp_path, large
):
    with open_bank(bank_url) as bank:
        ingest_log(bank, SEED_LOG)
        Checker(bank).reading()  # reads everything and saves it
        assert bank.evidence_path.exists()
        saved_last = saved_state(bank.evidence_path)[1]
        ingest_log(bank, write_log(tmp_path / "more.tsv", MORE_ROWS))
    reads: list[int] = []
    bank, reading = _new_process_reading(bank_url, reads)
    try:
        assert reads == [saved_last]  # only the rows past what was saved
        assert_same_sums(reading.evidence, _fresh(bank_url))
    finally:
        bank.close()


@pytest.mark.parametrize("fault", ["weights lowered", "damaged file"])
def test_saved_sums_of_another_revision_or_damaged_are_ignored(bank_url, large, fault):
    with open_bank(bank_url) as bank:
        ingest_log(bank, SEED_LOG)
        Checker(bank).reading()
        if fault == "weights lowered":
            with bank.transaction():
                bank.execute("UPDATE experiments SET evidence_weight = 0.5")
        else:
            bank.evidence_path.write_bytes(b"PK\x03\x04 not a whole zip file")
    reads: list[int] = []
    bank, reading = _new_process_reading(bank_url, reads)
    try:
        assert reads == [0]  # everything read again
        assert_same_sums(reading.evidence, _fresh(bank_url))
    finally:
        bank.close()


def test_an_unwritable_place_is_no_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    evidence = Evidence.from_table(weighted_table([("s1", "data", "add", "", "keep", 1.0)]))
    assert not save_evidence(blocker / "bank.evidence.npz", evidence, (0, 1))
    assert load_evidence(blocker / "bank.evidence.npz") is None
    assert list(Path(tmp_path).iterdir()) == [blocker]
