"""Nothing lost, nothing stored twice (issue 17): logs read while being written or rewritten,
forks that are prefixes of each other, mixed line ends, files that are not files, over-long rows.

Each case reproduces a fault an independent probe found; every one failed before its fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from core_helpers import GOOD_ROWS, HEADER, run_nrr, write_log

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.errors import NrrInputError

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "autoresearch-logs" / "dev"
# Dev logs whose torn row 20 read as a complete row (a fork before the fix).
TORN_DEV_LOGS = [
    "Bervaso__autoresearch-macos.tsv",
    "BobMolt__autoresearch-mlx.tsv",
    "CalebisGross__felix-lm.tsv",
    "DanRWilloughby__auto-researchtrading.tsv",
    "Dazarang__pquant_ultimate.tsv",
]


def _rows(n: int, start: int = 0, tag: str = "") -> list[str]:
    descriptions = ["increase LR to 0.04", "switch to GeLU", "double model width", "add dropout"]
    return [
        f"c{i:04d}{tag}\t{1.0 - 0.001 * i:.4f}\t44.0\t{'keep' if i % 3 == 0 else 'discard'}"
        f"\t{descriptions[i % 4]} {tag}run {i}"
        for i in range(start, start + n)
    ]


def _counts(url: str) -> tuple[int, int]:
    with open_bank(url, create=False) as bank:
        return bank.count_sessions(), bank.count_experiments()


def _export(url: str, name: str) -> list[str]:
    run = run_nrr("export", name, "--bank", url)
    assert run.code == 0, run.err
    return [line for line in run.out.splitlines() if line.strip()][1:]


# -- 1. a log read while it is being written -------------------------------------------------


def test_torn_last_line_is_not_a_row_and_is_read_once_complete(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(20)
    log = tmp_path / "r.tsv"
    log.write_text(HEADER + "".join(r + "\n" for r in rows[:19]) + rows[19][:30])
    first = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["rows_added"] == 19
    assert "no newline" in first.err  # held back, said so: nothing lost silently
    write_log(log, rows)
    second = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert second.code == 0, second.err
    assert json.loads(second.out)["rows_added"] == 1
    assert _counts(url) == (1, 20)
    assert _export(url, "r.tsv")[-1].split("\t")[-1] == rows[19].split("\t")[-1]


def test_a_finished_log_without_final_newline_is_read_whole_with_finished(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    log = tmp_path / "done.tsv"
    log.write_text(HEADER + "\n".join(GOOD_ROWS))
    run = run_nrr("ingest", str(log), "--bank", url, "--json", "--finished")
    assert run.code == 0, run.err
    assert json.loads(run.out)["rows_added"] == len(GOOD_ROWS)


@pytest.mark.skipif(not DEV.is_dir(), reason="dev corpus not beside the repo")
@pytest.mark.parametrize("name", TORN_DEV_LOGS)
def test_issue_repro_on_dev_logs_gives_one_session(tmp_path: Path, name: str) -> None:
    """head -19 LOG > r.tsv; tail -n +20 LOG | head -1 | head -c 30 >> r.tsv; ingest;
    head -20 LOG > r.tsv; ingest: one session holding what head -20 holds."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    lines = (DEV / name).read_bytes().splitlines(keepends=True)
    log = tmp_path / "r.tsv"
    log.write_bytes(b"".join(lines[:19]) + lines[19][:30])
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    log.write_bytes(b"".join(lines[:20]))
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert run_nrr("ingest", str(log), "--bank", fresh).code == 0
    assert _counts(url) == _counts(fresh)
    assert _counts(url)[0] == 1


def test_a_changed_last_row_is_an_update_not_a_fork(tmp_path: Path) -> None:
    """A row stored from a torn line (banks written before the fix, or a loop that rewrites its
    last row, e.g. status `running` then `keep`) is updated in place."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(6)
    log = write_log(tmp_path / "r.tsv", rows[:5] + [rows[5].rsplit("\t", 1)[0] + "\tincrease"])
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    write_log(log, rows)
    run = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert run.code == 0, run.err
    assert _counts(url) == (1, 6)
    assert _export(url, "r.tsv")[-1].split("\t")[-1] == rows[5].split("\t")[-1]
    with open_bank(url, create=False) as bank:
        last = bank.experiments()[-1]
    assert last["description"] == rows[5].split("\t")[-1]


def test_live_appender_leaves_one_session_with_the_logs_rows(tmp_path: Path) -> None:
    """A thread appends rows (each in two writes, so reads catch torn lines) while ingests run
    again and again: afterwards the bank holds exactly the log's rows, in one session."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(60)
    log = write_log(tmp_path / "results.tsv", rows[:1])
    done = threading.Event()

    def append() -> None:
        with log.open("a", encoding="utf-8") as out:
            for row in rows[1:]:
                out.write(row[:25])
                out.flush()
                time.sleep(0.004)
                out.write(row[25:] + "\n")
                out.flush()
                time.sleep(0.004)
        done.set()

    writer = threading.Thread(target=append)
    writer.start()
    bank = open_bank(url)
    try:
        ingests = 0
        while not done.is_set():
            ingest_log(bank, log)
            ingests += 1
        writer.join()
        ingest_log(bank, log)
        assert ingests >= 3
        assert (bank.count_sessions(), bank.count_experiments()) == (1, len(rows))
        stored = [e["description"] for e in bank.experiments()]
    finally:
        bank.close()
    assert stored == [row.split("\t")[-1] for row in rows]


def test_whole_file_rewriter_leaves_one_session(tmp_path: Path) -> None:
    """A loop that rewrites its whole log for every new row (truncate, then write in pieces)."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(25)
    log = write_log(tmp_path / "results.tsv", rows[:1])
    done = threading.Event()

    def rewrite() -> None:
        for count in range(2, len(rows) + 1):
            text = (HEADER + "".join(r + "\n" for r in rows[:count])).encode()
            with log.open("wb") as out:
                for start in range(0, len(text), 61):
                    out.write(text[start : start + 61])
                    out.flush()
                    time.sleep(0.003)
        done.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    bank = open_bank(url)
    try:
        while not done.is_set():
            # Caught the file empty or header-only mid-rewrite: refused, nothing written.
            with contextlib.suppress(NrrInputError):
                ingest_log(bank, log)
        writer.join()
        ingest_log(bank, log)
        assert (bank.count_sessions(), bank.count_experiments()) == (1, len(rows))
    finally:
        bank.close()


# -- 2. a fork whose log is a prefix of a sibling's -------------------------------------------


def test_fork_that_is_a_prefix_of_a_sibling_keeps_its_own_session(bank_url: str, tmp_path) -> None:
    rows = _rows(3)
    a = write_log(tmp_path / "A.tsv", rows[:2])
    b = write_log(tmp_path / "B.tsv", rows[:3])
    assert run_nrr("ingest", str(a), "--bank", bank_url).code == 0
    assert run_nrr("ingest", str(b), "--bank", bank_url).code == 0
    other = _rows(1, start=2, tag="a")[0]
    write_log(a, rows[:2] + [other])
    assert run_nrr("ingest", str(a), "--bank", bank_url).code == 0
    assert _export(bank_url, "A.tsv") == rows[:2] + [other]
    assert _export(bank_url, "B.tsv") == rows[:3]
    # Both again: nothing new.
    for path in (a, b):
        run = run_nrr("ingest", str(path), "--bank", bank_url, "--json")
        assert json.loads(run.out)["rows_added"] == 0


def test_a_moved_log_that_grew_continues_its_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(5)
    first = write_log(tmp_path / "results.tsv", rows[:3])
    assert run_nrr("ingest", str(first), "--bank", url).code == 0
    moved = tmp_path / "archive" / "results.tsv"
    moved.parent.mkdir()
    first.rename(moved)
    write_log(moved, rows)
    assert run_nrr("ingest", str(moved), "--bank", url).code == 0
    assert _counts(url) == (1, 5)


def test_a_copy_adds_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    log = write_log(tmp_path / "results.tsv", _rows(5))
    copy = write_log(tmp_path / "copy.tsv", _rows(5))
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    run = run_nrr("ingest", str(copy), "--bank", url, "--json")
    assert json.loads(run.out)["rows_added"] == 0
    assert _counts(url) == (1, 5)


# -- 5. mixed line ends ---------------------------------------------------------------------


def test_mixed_lf_and_lone_cr_lose_no_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    text = HEADER.rstrip("\n") + "\r" + GOOD_ROWS[0] + "\n" + GOOD_ROWS[1] + "\r"
    text += GOOD_ROWS[2] + "\r\n" + GOOD_ROWS[3] + "\n" + GOOD_ROWS[4] + "\r"
    log = tmp_path / "mixed.tsv"
    log.write_bytes(text.encode())
    run = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["rows_added"] == 5 and summary["rows_skipped"] == []
    with open_bank(url, create=False) as bank:
        header = json.loads(bank.sessions()[0]["header_json"])
    assert header == HEADER.split()


# -- 12. files that are not regular files -----------------------------------------------------


def test_fifo_without_writer_is_refused_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    fifo = tmp_path / "pipe.tsv"
    os.mkfifo(fifo)
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(run_nrr("ingest", str(fifo), "--bank", url)), daemon=True
    )
    thread.start()
    thread.join(10)
    if thread.is_alive():  # unblock the reader so the test process can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("ingest of a FIFO with no writer blocked")
    run = result[0]
    assert run.code == 3
    assert run.err.count("\n") == 1 and str(fifo) in run.err and "FIFO" in run.err


def test_device_is_refused(tmp_path: Path) -> None:
    run = run_nrr("ingest", "/dev/zero", "--bank", str(tmp_path / "bank.db"))
    assert run.code == 3 and "/dev/zero" in run.err and "not a regular file" in run.err


def test_symlink_loop_is_reported_as_a_loop(tmp_path: Path) -> None:
    loop = tmp_path / "loop.tsv"
    loop.symlink_to(tmp_path / "loop2.tsv")
    (tmp_path / "loop2.tsv").symlink_to(loop)
    run = run_nrr("ingest", str(loop), "--bank", str(tmp_path / "bank.db"))
    assert run.code == 3 and "symlink loop" in run.err and "no such file" not in run.err


# -- 13. over-long rows and out-of-range ids --------------------------------------------------


def test_ten_thousand_fields_under_a_five_column_header_is_a_reported_bad_row(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    wide = "a9\t1.0\t44.0\tdiscard\t" + "\t".join(f"w{i}" for i in range(10_000))
    log = write_log(tmp_path / "wide.tsv", GOOD_ROWS[:2] + [wide] + GOOD_ROWS[2:])
    run = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["rows_added"] == 5
    assert [s["line"] for s in summary["rows_skipped"]] == [4]
    assert "10004 fields for 5 columns" in summary["rows_skipped"][0]["reason"]
    assert f"{log}:4: skipped: " in run.err
    strict = run_nrr("ingest", str(log), "--bank", url, "--strict")
    assert strict.code == 3 and f"{log}:4:" in strict.err


@pytest.mark.parametrize("reference", ["99999999999999999999", str(2**63), "²", "１２"])
def test_session_references_out_of_range_or_not_ascii_are_names(
    tmp_path: Path, reference: str
) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    assert run_nrr("ingest", str(write_log(tmp_path / "r.tsv", GOOD_ROWS)), "--bank", url).code == 0
    run = run_nrr("export", reference, "--bank", url)
    assert run.code == 3 and "internal error" not in run.err and reference in run.err
    named = write_log(tmp_path / reference, _rows(3, tag="n"))
    assert run_nrr("ingest", str(named), "--bank", url).code == 0
    assert _export(url, reference) == _rows(3, tag="n")


def test_a_grown_log_resumed_reads_as_the_whole_log_read_at_once(tmp_path: Path) -> None:
    """Rows already stored are not parsed again (the tracker resumes from its stored state):
    the bank must hold what one ingest of the whole log gives, config_before included."""
    rows = [
        f"c{i}\t{1.0 - 0.01 * i:.3f}\t44.0\t{'keep' if i % 2 else 'discard'}\t{text}"
        for i, text in enumerate(
            [
                "baseline",
                "LR 0.04 -> 0.08",
                "increase LR to 0.1",
                "warmup 100 -> 200",
                "decrease LR to 0.05",
                "batch size 64 -> 128",
                "increase warmup to 400",
                "switch to GeLU",
            ]
        )
    ]
    grown, whole = f"sqlite:///{tmp_path / 'grown.db'}", f"sqlite:///{tmp_path / 'whole.db'}"
    log = tmp_path / "results.tsv"
    for count in (2, 5, len(rows)):
        write_log(log, rows[:count])
        assert run_nrr("ingest", str(log), "--bank", grown).code == 0
    assert run_nrr("ingest", str(log), "--bank", whole).code == 0

    def stored(url: str) -> list[dict]:
        with open_bank(url, create=False) as bank:
            return [
                {k: v for k, v in e.items() if k not in ("id", "ingested_at")}
                for e in bank.experiments()
            ] + [json.loads(bank.sessions()[0]["tracker_state"])]

    assert stored(grown) == stored(whole)


def test_a_row_stored_torn_is_completed_in_place_even_in_a_new_file(tmp_path: Path) -> None:
    """A bank written before the fix holds a torn row (here: read with --finished); the log,
    finished and written anew (another inode, as an atomic rewrite gives), updates that row."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(6)
    log = tmp_path / "r.tsv"
    log.write_text(HEADER + "".join(r + "\n" for r in rows[:5]) + rows[5][:-6])
    assert run_nrr("ingest", str(log), "--bank", url, "--finished").code == 0
    fresh = write_log(tmp_path / "r.tsv.new", rows)
    fresh.replace(log)
    run = run_nrr("ingest", str(log), "--bank", url, "--json")
    assert json.loads(run.out)["rows_updated"] == 1
    assert _counts(url) == (1, 6)
    assert _export(url, "r.tsv") == rows


def test_a_new_log_at_the_path_that_changes_the_last_row_is_another_session(
    tmp_path: Path,
) -> None:
    """A log rotated away and a new one started at its path (another file): a fork, not an update."""
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    rows = _rows(3)
    log = write_log(tmp_path / "results.tsv", rows)
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    log.rename(tmp_path / "results.tsv.1")
    write_log(log, rows[:2] + _rows(1, start=2, tag="new"))
    assert run_nrr("ingest", str(log), "--bank", url).code == 0
    assert _counts(url) == (2, 6)
