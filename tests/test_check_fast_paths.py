"""The check's shortcuts return what the plain computations return, bit for bit.

- FeatureSpace computes the idf of the n-grams a transform uses, not of all 2^20 ids: rows
  equal those built from the whole idf array.
- a held Checker prepares a session's rows for the evidence model once (EvidenceHistory) and
  anew when the session grows: its answer is then a fresh Checker's, and the one-shot
  evidence_answer's.
"""

from __future__ import annotations

import numpy as np
from core_helpers import SEED_LOG

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.check import Checker
from nrr_stats.models import similarity_evidence as evidence
from nrr_stats.parser import parse_description
from nrr_stats.similarity.features import FINE_SIZE, FeatureSpace, idf_weights

TEXTS = [
    "Increase LR to 0.02",
    "replace relu with gelu in the MLP",
    "depth 8 -> 12, n_embd 512",
    "swap adam for lion (lr 3e-4)",
    "",
]
FIELDS = [
    {"category": "learning_rate", "direction": "increase", "parameter": "LEARNING_RATE"},
    {"category": "activation", "direction": "change", "to": "gelu"},
    {"category": "model_size", "direction": "increase", "from": "8", "to": "12"},
    {"category": "optimizer", "direction": "change"},
    {},
]


def test_transform_with_idf_of_used_ids_equals_the_whole_idf():
    rng = np.random.default_rng(5)
    df = rng.integers(0, 400, FINE_SIZE)
    lazy = FeatureSpace(df=df, n_docs=400)
    rows = lazy.transform(TEXTS, FIELDS)
    assert lazy._idf is None  # the full array was never built
    whole = FeatureSpace(df=df, n_docs=400)
    assert np.array_equal(whole.idf, idf_weights(df, 400))  # builds it: transform reads it
    assert np.array_equal(whole.transform(TEXTS, FIELDS).view(np.int32), rows.view(np.int32))
    ids = rng.integers(0, FINE_SIZE, 1000)
    assert np.array_equal(whole.idf_of(ids), lazy.idf_of(ids))


def test_a_held_checker_prepares_a_session_once_and_anew_when_it_grows(tmp_path) -> None:
    log = tmp_path / "results.tsv"
    log.write_text(SEED_LOG.read_text())
    proposal = "Increase learning rate to 0.02"
    with open_bank(tmp_path / "bank.db") as bank:
        ingest_log(bank, log)
        with Checker(bank) as checker:
            first = checker.check(proposal, record=False)
            (kept,) = checker._sessions.values()
            prepared = kept.evidence
            assert prepared is not None
            checker.check("Add dropout 0.1", record=False)
            assert kept.evidence is prepared  # the same rows: prepared once

            with log.open("a") as out:  # the loop logs the very change, and it fails
                out.write("ffff999\t1.200000\t44.0\tdiscard\tIncrease learning rate to 0.02\n")
            ingest_log(bank, log)
            grown = checker.check(proposal, record=False)
            (kept,) = checker._sessions.values()
            assert kept.evidence is not prepared
            assert len(kept.evidence.y) == len(prepared.y) + 1
            rows = kept.rows
        with Checker(bank) as fresh:
            assert fresh.check(proposal, record=False)["p_keep"] == grown["p_keep"]
    assert grown["p_keep"] < first["p_keep"]  # the new failure was read, not the old rows'
    change = parse_description(proposal)
    one_shot = evidence.evidence_answer(evidence.shipped_evidence().params, rows, proposal, change)
    assert one_shot == kept.evidence.answer(proposal, change)
