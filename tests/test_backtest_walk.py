"""The prequential walk: no look-ahead, EVALUATION.md numbering and fields, baselines as stated."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.backtest.walk import (
    BacktestOptions,
    Dynamics,
    backtest_logs,
    walk_log,
)
from nrr_stats.ingest import read_results_log
from nrr_stats.models.population import load_population_prior

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
LOGS = sorted(FIXTURES.glob("*.tsv"))
PRIOR = load_population_prior()
needs_prior = pytest.mark.skipif(PRIOR is None, reason="no population prior in models/")
JSONL_FIELDS = {
    "file",
    "row",
    "status",
    "p_keep",
    "interval",
    "verdict",
    "category",
    "direction",
    "outcome",
}


def truncated_copy(path: Path, row: int, target: Path) -> Path:
    """The log cut right after the physical lines of row `row` (its next row's line is dropped)."""
    log = read_results_log(path)
    numbers = sorted(r.line_number for r in log.rows if r.row_number > row)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = numbers[0] - 1 if numbers else len(lines)
    target.write_text("".join(lines[:cut]), encoding="utf-8")
    return target


def _walk(path: Path, prior, options=BacktestOptions()):
    return {r.row: r for r in walk_log(path, prior, options).rows}


@functools.cache
def _seed_walk() -> dict:
    return _walk(FIXTURES / "seed_results.tsv", PRIOR)


@pytest.mark.parametrize("with_prior", [False, pytest.param(True, marks=needs_prior)])
@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_prediction_at_t_ignores_later_rows(path: Path, with_prior: bool, tmp_path: Path):
    prior = PRIOR if with_prior else None
    full = _walk(path, prior)
    rows = sorted(full)
    assert rows, "fixture has predicted rows"
    for t in sorted({rows[0], rows[len(rows) // 2], rows[-1]}):
        cut = _walk(truncated_copy(path, t, tmp_path / path.name), prior)
        assert max(cut) == t
        for earlier in (r for r in rows if r <= t):
            a, b = full[earlier], cut[earlier]
            assert (a.p_keep, a.interval, a.verdict) == (b.p_keep, b.interval, b.verdict)


@needs_prior
@settings(max_examples=4, deadline=None)
@given(index=st.integers(min_value=0, max_value=10_000), flip=st.sampled_from(["keep", "discard"]))
def test_rewriting_later_rows_leaves_row_t_alone(index: int, flip: str, tmp_path_factory):
    path = FIXTURES / "seed_results.tsv"
    full = _seed_walk()
    rows = sorted(full)
    t = rows[index % (len(rows) - 1)]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    log = read_results_log(path)
    later = {r.line_number for r in log.rows if r.row_number > t}
    rewritten = [
        line.replace("\tkeep\t", f"\t{flip}\t").replace("\tdiscard\t", f"\t{flip}\t")
        if number in later
        else line
        for number, line in enumerate(lines, start=1)
    ]
    target = tmp_path_factory.mktemp("rewrite") / path.name
    target.write_text("".join(rewritten), encoding="utf-8")
    changed = _walk(target, PRIOR)
    for row in (r for r in rows if r <= t):
        assert changed[row].p_keep == full[row].p_keep
        assert changed[row].verdict == full[row].verdict


def test_result_words_of_row_t_do_not_reach_its_prediction(tmp_path: Path):
    header = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    body = [
        "a1\t1.00\t1\tkeep\tbaseline\n",
        "a2\t0.99\t1\tdiscard\tincrease learning rate to 0.02\n",
        "a3\t0.98\t1\tkeep\tadd weight decay 0.1\n",
    ]
    plain = tmp_path / "plain.tsv"
    plain.write_text(header + "".join(body) + "a4\t0.97\t1\tkeep\tdouble the batch size\n")
    leaky = tmp_path / "leaky.tsv"
    leaky.write_text(
        header + "".join(body) + "a4\t0.97\t1\tkeep\tdouble the batch size (new best, OOM fixed)\n"
    )
    a, b = _walk(plain, PRIOR), _walk(leaky, PRIOR)
    assert (a[4].category, a[4].direction) == (b[4].category, b[4].direction)
    assert a[4].p_keep == b[4].p_keep


def test_jsonl_fields_and_row_numbering_count_unreadable_rows(tmp_path: Path):
    log = tmp_path / "numbered.tsv"
    log.write_text(
        "# a comment before the header\n"
        "\n"
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1\t1.00\t1\tkeep\tbaseline\n"
        "a2\t0.99\t1\tdiscard\tincrease learning rate to 0.02\n"
        "# a comment between rows\n"
        "a3\t0.98\t1\t\tadd dropout 0.1\n"
        "\n"
        "a4\t0.97\t1\tkeep\tadd weight decay 0.1\n"
        "a5\t0.97\t1\tcrash\tdouble model width\n"
    )
    out = tmp_path / "out.jsonl"
    result = backtest_logs([log], prior=None)
    result.write_jsonl(out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in records] == [2, 4, 5]
    assert [r["status"] for r in records] == ["discard", "keep", "crash"]
    for record in records:
        assert set(record) == JSONL_FIELDS
        assert record["file"] == "numbered.tsv"
        low, high = record["interval"]
        assert 0.0 <= low <= high <= 1.0
        assert 0.0 < record["p_keep"] < 1.0
        assert record["verdict"] in ("proceed", "caution", "avoid")


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_running_laplace_is_the_logs_own_smoothed_rate(path: Path):
    rows = walk_log(path, None).rows
    kept = np.array([r.y for r in rows])
    for i, row in enumerate(rows):
        assert row.p_laplace == pytest.approx((kept[:i].sum() + 1) / (i + 2))
        assert row.y == (row.status == "keep")


@pytest.mark.parametrize("path", LOGS, ids=lambda p: p.stem)
def test_discounted_rate_weighs_each_earlier_row_by_its_age(path: Path):
    result = backtest_logs([path], prior=None)
    rows = result.rows()
    kept = [r.y for r in rows]
    for i, row in enumerate(rows):
        weights = [0.9 ** (i - 1 - j) for j in range(i)]  # the latest earlier row weighs 1
        expected = (0.5 + sum(w * y for w, y in zip(weights, kept[:i], strict=True))) / (
            2 + sum(weights)
        )
        assert row.p_discounted == pytest.approx(expected, rel=1e-12)
    scores = result.scores["discounted_rate"]
    assert scores.rows == result.scores["engine"].rows
    avoided = [r.p_discounted < 0.05 for r in rows if not r.y]
    assert scores.avoid_recall == pytest.approx(sum(avoided) / len(avoided))


@needs_prior
def test_constant_baseline_is_the_training_corpus_keep_rate():
    meta = PRIOR.meta
    assert meta["constant_keep_rate"] == pytest.approx(meta["n_keeps"] / meta["n_rows"])
    result = backtest_logs([FIXTURES / "seed_results.tsv"], prior=None)
    assert result.constant_rate == meta["constant_keep_rate"]
    assert {r.p_constant for r in result.rows()} == {meta["constant_keep_rate"]}
    assert result.scores["constant"].rows == result.scores["engine"].rows


def test_keep_discount_weights_follow_later_keeps():
    kept = [True, False, True, False, False, True, False]
    weights = Dynamics(keep_discount=0.5).weights(kept)
    assert weights.tolist() == [0.125, 0.25, 0.25, 0.5, 0.5, 0.5, 1.0]
    assert Dynamics().weights(kept).tolist() == [1.0] * len(kept)
    assert np.all(np.diff(Dynamics(keep_discount=0.8).weights(kept)) >= 0)


@needs_prior
def test_shipped_prior_log_gets_held_out_fold_prior_or_a_clear_error(tmp_path: Path):
    from nrr_stats.errors import NrrInputError

    dev_log = FIXTURES / "Chang-Han-Chen__autoresearch-moe.tsv"
    with pytest.raises(NrrInputError, match="corpus"):
        backtest_logs([dev_log], corpus_dir=tmp_path)
    fresh = backtest_logs([FIXTURES / "seed_results.tsv"], corpus_dir=tmp_path)
    assert [log.prior for log in fresh.logs] == ["shipped"]
