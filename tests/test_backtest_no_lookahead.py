"""No look-ahead, proven: cutting a log right after row t leaves every prediction at rows <= t
exactly unchanged (EVALUATION.md), for the dev logs (when ../shared is present) and generated
logs, under the full engine's options (dynamics, curator weights, shipped prior)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nrr_stats.backtest.walk import default_options, walk_log
from nrr_stats.ingest import read_results_log
from nrr_stats.models.population import load_population_prior

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "autoresearch-logs"
DEV_LOGS = sorted((SHARED / "dev").glob("*.tsv")) + sorted((SHARED / "dev2").glob("*.tsv"))
PRIOR = load_population_prior()
MAX_ROWS = 120  # dev logs are walked on their first MAX_ROWS rows, to keep the test short


def _fields(row) -> tuple:
    """Everything a predicted row reports that could leak."""
    return (
        row.p_keep,
        row.interval,
        row.verdict,
        row.outcome,
        row.category,
        row.direction,
        row.parameter,
        row.p_laplace,
        getattr(row, "p_discounted", None),
        row.prob_below_base,
        row.base_rate,
        row.n_weighted,
        row.p_crash,
        row.exact_repeat,
        row.near_repeats,
    )


def _walk(path: Path) -> dict[int, tuple]:
    return {r.row: _fields(r) for r in walk_log(path, PRIOR, default_options()).rows}


def _cut(path: Path, row: int, target: Path) -> Path:
    """The log cut right after the physical lines of row `row`."""
    log = read_results_log(path)
    later = sorted(r.line_number for r in log.rows if r.row_number > row)
    later += sorted(b.line_number for b in log.bad_rows if (b.row_number or 0) > row)
    lines = path.read_bytes().splitlines(keepends=True)
    cut = min(later) - 1 if later else len(lines)
    target.write_bytes(b"".join(lines[:cut]))
    return target


def _readable(path: Path) -> bool:
    try:
        return bool(read_results_log(path).rows)
    except Exception:
        return False


@functools.cache
def _head(path: Path, tmp: Path) -> Path:
    """The log's first MAX_ROWS rows (itself a valid cut)."""
    return _cut(path, MAX_ROWS, tmp / f"head-{path.name}")


def _assert_prefix_safe(path: Path, fraction: float, tmp: Path) -> None:
    full = _walk(path)
    rows = sorted(full)
    if not rows:
        return
    t = rows[min(len(rows) - 1, int(fraction * len(rows)))]
    short = _walk(_cut(path, t, tmp / f"cut-{path.name}"))
    assert max(short) == t
    changed = {r: (full[r], short[r]) for r in short if full[r] != short[r]}
    assert not changed, f"{path.name} cut after row {t}: rows {sorted(changed)[:10]} changed"


@pytest.mark.skipif(not DEV_LOGS, reason="../shared dev corpus absent")
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(index=st.integers(0, 10_000), fraction=st.floats(0.05, 0.95))
def test_dev_log_cut_at_a_random_row_leaves_earlier_predictions_unchanged(
    index: int, fraction: float, tmp_path_factory
):
    readable = [p for p in DEV_LOGS if p.stat().st_size < 400_000]
    path = readable[index % len(readable)]
    if not _readable(path):
        return
    tmp = tmp_path_factory.mktemp("dev")
    _assert_prefix_safe(_head(path, tmp), fraction, tmp)


WORDS = [
    "increase LR to 0.02",
    "decrease LR to 0.001",
    "double width",
    "halve batch size",
    "add dropout 0.1",
    "remove dropout",
    "switch to AdamW",
    "warmup 500 steps",
    "weight decay 0.1",
    "depth 12",
    "try GELU",
    "cosine schedule",
]
ROW = st.tuples(
    st.sampled_from(WORDS),
    st.sampled_from(["keep", "discard", "discard", "crash"]),
    st.floats(0.5, 2.0, allow_nan=False),
    st.sampled_from(["", " (worse)", " new best", " OOM"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(ROW, min_size=4, max_size=40),
    fraction=st.floats(0.0, 1.0),
    header=st.sampled_from(["val_bpb", "score", "accuracy"]),
)
def test_generated_log_cut_at_a_random_row_leaves_earlier_predictions_unchanged(
    rows, fraction: float, header: str, tmp_path_factory
):
    tmp = tmp_path_factory.mktemp("gen")
    lines = [f"commit\t{header}\tmemory_gb\tstatus\tdescription\n", "a0\t1.0\t10\tkeep\tbaseline\n"]
    for i, (text, status, metric, suffix) in enumerate(rows, start=1):
        value = "0.0" if status == "crash" else f"{metric:.4f}"
        lines.append(f"c{i}\t{value}\t10\t{status}\t{text}{suffix}\n")
    path = tmp / "gen.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    _assert_prefix_safe(path, fraction, tmp)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(ROW, min_size=6, max_size=30),
    constant_for=st.integers(1, 20),
    fraction=st.floats(0.0, 1.0),
)
def test_a_metric_chosen_by_content_is_chosen_from_the_rows_before(
    rows, constant_for: int, fraction: float, tmp_path_factory
):
    """Columns named for no role, the first constant on the log's first rows (ingest's choice of
    the metric then depends on how long the log is): cutting the log leaves every earlier row's
    outcome, delta and prediction unchanged (backtest/prefix.py chooses from earlier rows)."""
    tmp = tmp_path_factory.mktemp("metric")
    lines = ["commit\tactive_b\ttok_sec\tstatus\tdescription\n", "a0\t10.0\t1.00\tkeep\tbaseline\n"]
    for i, (text, status, metric, suffix) in enumerate(rows, start=1):
        params = "10.0" if i <= constant_for else f"{10 + i * metric:.3f}"
        lines.append(f"c{i}\t{params}\t{metric:.4f}\t{status}\t{text}{suffix}\n")
    path = tmp / "metric.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    _assert_prefix_safe(path, fraction, tmp)
