"""Ingest streams a log (issue 17 item 11): memory does not grow with the log, and the rows it
stores a small window at a time are exactly those of the whole log read at once.

The windows (bytes read, rows written, outcomes refreshed, feature rows paged and hashed) are
shrunk here so a few thousand rows cross hundreds of window edges; a log up to
HOLD_WHOLE_BYTES is normally read once and held, so the streamed path is forced too.
"""

from __future__ import annotations

import functools
import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from core_helpers import HEADER, run_nrr, write_log

import nrr_stats.bank.ingest as bank_ingest
import nrr_stats.ingest.reader as reader
import nrr_stats.similarity.features as features
import nrr_stats.similarity.store as feature_store
from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import experiment_rows, ingest_log
from nrr_stats.ingest import read_results_log
from nrr_stats.similarity.store import FeatureStore

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "autoresearch-logs" / "dev"
CHANGES = ["increase LR to", "set warmup steps to", "raise weight decay to", "use batch size"]


def _rows(n: int) -> list[str]:
    """Rows of a plausible log, each with its own numbers (every row's text differs)."""
    return [
        f"c{i:06d}\t{1.0 - 1e-5 * i:.6f}\t44.0\t{'keep' if i % 7 == 0 else 'discard'}"
        f"\t{CHANGES[i % 4]} {i % 97 + 1}.{i % 13}"
        for i in range(n)
    ]


def _small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "HOLD_WHOLE_BYTES", 0, raising=False)
    monkeypatch.setattr(reader, "READ_BLOCK_BYTES", 61, raising=False)
    monkeypatch.setattr(bank_ingest, "INSERT_BATCH", 7)
    monkeypatch.setattr(bank_ingest, "OUTCOME_BATCH", 5, raising=False)
    monkeypatch.setattr(feature_store, "FEATURE_PAGE", 13, raising=False)
    monkeypatch.setattr(feature_store, "COMMIT_BATCH", 11)


def _stored(bank_path: Path) -> tuple[list[dict], list[dict], np.ndarray]:
    """Every experiment row (but when it was ingested), every session, and the feature rows."""
    with open_bank(str(bank_path)) as bank:
        rows = [
            {k: v for k, v in row.items() if k != "ingested_at"}
            for row in bank.query("SELECT * FROM experiments ORDER BY id")
        ]
        sessions = bank.query(
            "SELECT id, session_key, name, metric_name, metric_direction, direction_source,"
            " tracker_state FROM sessions ORDER BY id"
        )
        matrix = np.array(FeatureStore(bank.features_path).matrix())
    return rows, sessions, matrix


def _ingest_twice(bank_path: Path, log: Path, tmp_path: Path) -> list[dict]:
    """Ingest the log's first half (a loop part-way), then the whole log; the summaries."""
    lines = log.read_bytes().splitlines(keepends=True)
    partial = tmp_path / "partial" / log.name
    partial.parent.mkdir(exist_ok=True)
    partial.write_bytes(b"".join(lines[: max(2, len(lines) // 2)]))
    summaries = []
    with open_bank(str(bank_path)) as bank:
        for path in (partial, log):
            try:
                summaries.append(ingest_log(bank, path, finished=True).as_dict())
            except Exception as error:  # noqa: BLE001 - the same fault must be raised both ways
                summaries.append({"error": f"{type(error).__name__}: {error}"})
    for summary in summaries:
        summary.pop("path", None)
    return summaries


def _logs() -> list[Path]:
    logs = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".tsv", ".csv", ".txt"))
    logs = [p for p in logs if p.name != "SOURCES.md"]
    if DEV.is_dir():
        logs += sorted(p for p in DEV.glob("*.tsv") if p.name != "MANIFEST.tsv")[::4]
    return logs


@pytest.mark.parametrize("log", _logs(), ids=lambda p: p.name)
def test_streamed_ingest_stores_exactly_what_the_batched_ingest_does(
    log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_bank, streamed_bank = tmp_path / "whole.db", tmp_path / "streamed.db"
    whole = _ingest_twice(whole_bank, log, tmp_path)
    with monkeypatch.context() as patched:
        _small_windows(patched)
        streamed = _ingest_twice(streamed_bank, log, tmp_path)
    assert streamed == whole
    rows, sessions, matrix = _stored(streamed_bank)
    expected_rows, expected_sessions, expected_matrix = _stored(whole_bank)
    assert rows == expected_rows
    assert sessions == expected_sessions
    np.testing.assert_array_equal(matrix, expected_matrix)
    if "error" not in whole[-1]:
        # ... and the rows of the one log-to-rows function, the whole log read at once.
        made = experiment_rows(read_results_log(log))
        keys = [k for k in made[0] if k != "ingested_at"]
        mine = [r for r in rows if r["session_id"] == whole[-1]["session_id"]]
        assert [[r[k] for k in keys] for r in mine] == [[m[k] for k in keys] for m in made]


def _traced_peak(bank_path: Path, log: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        with open_bank(str(bank_path)) as bank:
            ingest_log(bank, log)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_ingest_memory_does_not_grow_with_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed before streaming: the whole file, its rows and their bank rows were held (the
    peak grew about 4x with 4x the rows)."""
    _small_windows(monkeypatch)
    monkeypatch.setattr(reader, "READ_BLOCK_BYTES", 4096, raising=False)
    monkeypatch.setattr(bank_ingest, "INSERT_BATCH", 50)
    monkeypatch.setattr(feature_store, "FEATURE_PAGE", 100, raising=False)
    monkeypatch.setattr(feature_store, "COMMIT_BATCH", 100)
    # The n-gram hash caches are bounded by count (65k by default); a small bound here keeps
    # them from filling up over the very rows whose memory is measured.
    monkeypatch.setattr(features, "_CACHE_LIMIT", 512)
    monkeypatch.setattr(features, "_TRANSFORM_BATCH", 64)
    monkeypatch.setattr(reader, "MAX_PROFILE_ROWS", 50)
    monkeypatch.setattr(
        features, "_field_part", functools.lru_cache(maxsize=64)(features._field_part.__wrapped__)
    )
    small, large = 600, 2400
    rows = _rows(large)
    write_log(tmp_path / "warm.tsv", rows[:200])
    _traced_peak(tmp_path / "warm.db", tmp_path / "warm.tsv")  # rules, regexes, imports
    peaks = {}
    for n in (small, large):
        log = write_log(tmp_path / f"log{n}.tsv", rows[:n])
        peaks[n] = _traced_peak(tmp_path / f"bank{n}.db", log)
    assert peaks[large] < 1.3 * peaks[small] + 256 * 1024, peaks


def test_a_log_rewritten_between_passes_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_windows(monkeypatch)
    log = write_log(tmp_path / "r.tsv", _rows(30))
    rewritten = _rows(30)
    rewritten[3] = rewritten[3].replace("44.0", "45.0")
    passes = []
    lines = reader._Source.lines

    def rewriting(source):  # the loop rewrites its log in place after the first pass
        passes.append(source)
        if len(passes) == 2:
            write_log(log, rewritten)
        return lines(source)

    monkeypatch.setattr(reader._Source, "lines", rewriting)
    with open_bank(str(tmp_path / "b.db")) as bank:
        summary = ingest_log(bank, log)
        stored = [r["fields_json"] for r in bank.query("SELECT * FROM experiments ORDER BY id")]
    assert summary.rows_added == 30
    assert '"memory_gb": "45.0"' in stored[3]  # the rewritten file, read whole again
    assert len({id(source) for source in passes}) == 2  # the read started again once


def test_a_log_that_never_holds_still_is_one_line_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_windows(monkeypatch)
    log = write_log(tmp_path / "r.tsv", _rows(30))
    lines = reader._Source.lines
    count = [0]

    def rewriting(source):
        count[0] += 1
        if count[0] > 1:  # rewritten before every pass but the first: no read holds still
            write_log(log, [row.replace("44.0", f"{count[0]}.0") for row in _rows(30)])
        return lines(source)

    monkeypatch.setattr(reader._Source, "lines", rewriting)
    bank = tmp_path / "b.db"
    run = run_nrr("ingest", "--bank", str(bank), str(log))
    assert run.code == 3
    assert "changed while it was read" in run.err and len(run.err.strip().splitlines()) == 1
    with open_bank(str(bank)) as opened:
        assert opened.count_experiments() == 0


def test_progress_is_shown_with_progress_and_quiet_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bank_ingest, "INSERT_BATCH", 10)
    log = write_log(tmp_path / "r.tsv", _rows(40))
    quiet = run_nrr("ingest", "--bank", str(tmp_path / "a.db"), str(log))
    shown = run_nrr("ingest", "--bank", str(tmp_path / "b.db"), str(log), "--progress")
    assert quiet.code == shown.code == 0
    assert "rows stored" not in quiet.err
    lines = [line for line in shown.err.splitlines() if "rows stored" in line]
    assert lines and lines[-1].startswith(f"nrr: {log}: 40 of 40 rows stored (")
    assert lines[-1].endswith(" rows/s)")
    assert len(lines) == len(set(lines))  # the last line is not said twice


def test_header_only_after_streaming_is_still_one_clear_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _small_windows(monkeypatch)
    log = tmp_path / "h.tsv"
    log.write_text(HEADER + "\n\n# a comment\n", encoding="utf-8")
    run = run_nrr("ingest", "--bank", str(tmp_path / "b.db"), str(log))
    assert run.code == 3 and "header only" in run.err
