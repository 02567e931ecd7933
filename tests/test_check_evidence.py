"""`nrr check` answers with the similarity-evidence model the backtest scores: for the same
history, check_proposal's P(keep), interval and avoid verdict are the backtest's row."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.backtest.walk import default_options, walk_log
from nrr_stats.check import check_proposal
from nrr_stats.ingest import read_results_log
from nrr_stats.models.similarity_evidence import shipped_evidence
from nrr_stats.parser import strip_result_words

SEED = Path(__file__).parent / "fixtures" / "backtest" / "seed_results.tsv"
needs_model = pytest.mark.skipif(shipped_evidence() is None, reason="no shipped evidence model")


@needs_model
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(index=st.integers(0, 10_000))
def test_check_proposal_equals_the_backtest_row_for_the_same_history(index: int, tmp_path_factory):
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_log

    walked = walk_log(SEED, None, default_options(curator_weights=False))
    assert {r.source for r in walked.rows} == {"similarity_evidence"}
    row = walked.rows[1 + index % (len(walked.rows) - 1)]
    log = read_results_log(SEED)
    line = next(r.line_number for r in log.rows if r.row_number == row.row)
    description = next(r.description for r in log.rows if r.row_number == row.row)
    tmp = tmp_path_factory.mktemp("check")
    history = tmp / SEED.name
    lines = SEED.read_text(encoding="utf-8").splitlines(keepends=True)
    history.write_text("".join(lines[: line - 1]), encoding="utf-8")
    with open_bank(tmp / "bank.db") as bank:
        ingest_log(bank, history)
        answer = check_proposal(strip_result_words(description), bank=bank, record=False)
    assert answer["p_keep"] == pytest.approx(row.p_keep, abs=1e-4)
    assert answer["interval"] == pytest.approx(list(row.interval), abs=1e-4)
    assert (answer["verdict"] == "avoid") == (row.verdict == "avoid")
