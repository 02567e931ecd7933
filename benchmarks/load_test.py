"""Load test of the bank: 8 writers ingesting 10k experiments each while 4 checkers read, per backend.

    python benchmarks/load_test.py                       # load test, then the kill test, on both backends
    python benchmarks/load_test.py --kills 0 --backends sqlite --rows 2000

Prints, per backend: rows expected / present / lost / duplicated, check calls and errors, and
check latency p50 / p99 (with 95% order-statistic intervals and counts) idle before the load,
under load, and idle after it on the full bank (the baseline for the load ratio).
PostgreSQL: `--postgres URL` or `$NRR_TEST_POSTGRES`; a throwaway schema is made and dropped.

Writers use the real pipeline (`nrr_stats.bank.ingest.ingest_log`, `--driver ingest`) or put
synthetic rows straight into the bank (`--driver rows`: more transactions, less parsing). Each
writer ingests its own log, then its neighbour's (which must add nothing: same log, twice).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCRIPT = Path(__file__).resolve()
SEED_WRITER = "seed"
SEED_ROWS = 200
PROPOSALS = (
    "increase learning rate from 3 to 12",
    "add dropout 0.1",
    "switch optimizer from SGD to AdamW",
    "reduce batch size from 64 to 32",
)
DESCRIPTIONS = (
    "increase learning rate from {a} to {b}",
    "reduce batch size from {b} to {a}",
    "add dropout 0.{a}",
    "switch optimizer from SGD to AdamW",
    "increase depth from {a} to {b}",
    "remove weight decay",
    "use GELU instead of ReLU",
    "warmup steps {a}00 -> {b}00",
)
HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription"


# -- logs ------------------------------------------------------------------------------------


def commit_id(writer: str, row: int) -> str:
    """The unique commit of one synthetic experiment: lost and duplicated rows are counted by it."""
    return f"{writer}x{row:06x}"


def write_log(path: Path, writer: str, rows: int) -> set[str]:
    """Write an autoresearch results.tsv of `rows` experiments; return the commits it holds."""
    rng = random.Random(f"{writer}:{rows}")
    lines = [HEADER]
    for row in range(rows):
        status = rng.choice(("keep", "discard", "discard", "discard", "crash"))
        metric = "0.000000" if status == "crash" else f"{1.0 - rng.random() * 0.01:.6f}"
        text = rng.choice(DESCRIPTIONS).format(a=rng.randint(1, 9), b=rng.randint(10, 20))
        lines.append(
            f"{commit_id(writer, row)}\t{metric}\t12.1\t{status}\t{text} (run {writer}/{row})"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {commit_id(writer, row) for row in range(rows)}


def rows_of_log(path: Path, session_id: int) -> list[dict[str, Any]]:
    """Bank rows read directly from a synthetic log (the `rows` driver: no parser)."""
    from nrr_stats.bank.testing import synthetic_rows

    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    template = synthetic_rows(session_id, len(lines))
    for row, line in zip(template, lines, strict=True):
        commit, metric, _memory, status, description = line.split("\t")
        row.update(
            experiment_id=commit,
            metric=None if status == "crash" else float(metric),
            status=status,
            raw_status=status,
            description=description,
        )
    return template


def ingest(url: str, path: Path, driver: str, batch: int, announce: Callable[[], None]) -> int:
    """Store one log in the bank with the chosen driver; return the rows it added."""
    from nrr_stats.bank import open_bank

    with open_bank(url) as bank:
        if driver == "ingest":
            from nrr_stats.bank.ingest import ingest_log

            original = bank.insert_experiments

            def announced(rows: Any) -> int:
                announce()
                return original(rows)

            bank.insert_experiments = announced  # type: ignore[method-assign]
            return ingest_log(bank, path).rows_added
        from nrr_stats.bank.testing import synthetic_session

        added = 0
        with bank.transaction():
            session_id, _ = bank.upsert_session(synthetic_session(path.stem))
        rows = rows_of_log(path, session_id)
        for start in range(0, len(rows), batch):
            with bank.transaction():
                announce()
                added += bank.insert_experiments(rows[start : start + batch])
            _sync_features(bank)
        return added


def _sync_features(bank: Any) -> None:
    """Bring the similarity features up to date after a write, as `ingest_log` does."""
    try:
        from nrr_stats.similarity.store import sync_bank_features
    except ImportError:
        return
    sync_bank_features(bank)


# -- worker processes ----------------------------------------------------------------------


def writer_main(url: str, logs: list[str], driver: str, batch: int) -> None:
    """A writer process: ingest each log in turn; print `writing` as each write transaction starts."""
    added = []
    for log in logs:
        added.append(ingest(url, Path(log), driver, batch, lambda: print("writing", flush=True)))
    print("result " + json.dumps({"added": added}), flush=True)


def check_once(url: str, mode: str, proposal: str) -> None:
    """One check: the real `check_proposal` (records its decision, as `nrr check` does) or a snapshot read."""
    if mode == "check":
        from nrr_stats.check import check_proposal

        check_proposal(proposal, bank=url)
        return
    from nrr_stats.bank import open_bank

    with open_bank(url, create=False) as bank, bank.snapshot():
        table = bank.experiment_table()
        if len(table.kept) > bank.count_experiments():
            raise AssertionError("snapshot saw more predicted rows than rows")


def checker_main(url: str, mode: str, stop_file: str, count: int) -> None:
    """A checker process: check in a loop (until `stop_file` exists, or `count` times); print latencies."""
    import traceback

    latencies: list[float] = []
    cpu: list[float] = []
    errors: list[str] = []
    calls = 0
    while (count and calls < count) or (not count and not os.path.exists(stop_file)):
        proposal = PROPOSALS[calls % len(PROPOSALS)]
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            check_once(url, mode, proposal)
            latencies.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        except Exception:  # every failure is counted and sampled, none stops the loop
            errors.append(" | ".join(traceback.format_exc().strip().splitlines()[-5:])[:600])
        calls += 1
    print(
        "result " + json.dumps({"latencies": latencies, "cpu": cpu, "errors": errors}), flush=True
    )


# -- orchestration -------------------------------------------------------------------------


@dataclass
class Worker:
    """A child process and what it printed (read on a thread, so the parent never blocks)."""

    args: list[str]
    process: subprocess.Popen[str] = field(init=False)
    writing: threading.Event = field(default_factory=threading.Event)
    writing_at: float = 0.0
    killed: bool = False
    result: dict[str, Any] | None = None
    stderr: str = ""

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("writing"):
                if not self.writing.is_set():
                    self.writing_at = time.monotonic()
                self.writing.set()
            elif line.startswith("result "):
                self.result = json.loads(line[len("result ") :])

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout=timeout)
        deadline = time.monotonic() + 10
        while self.result is None and code == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return code


@contextmanager
def bank_url_for(backend: str, postgres: str | None, workdir: Path) -> Iterator[str | None]:
    """A fresh bank URL on `backend` (None when PostgreSQL is not configured)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bank-{time.monotonic_ns()}.db'}"
        return
    if not postgres:
        yield None
        return
    from nrr_stats.bank import testing

    schema, url = testing.create_schema(postgres, prefix="nrr_load")
    try:
        yield url
    finally:
        testing.drop_schema(postgres, schema)


def quantile_with_interval(values: list[float], q: float) -> tuple[float, float, float]:
    """The q-quantile and its distribution-free 95% interval from order statistics (binomial ranks)."""
    from scipy.stats import binom

    ordered = np.sort(np.asarray(values))
    n = len(ordered)
    if n == 0:
        return (float("nan"),) * 3
    low_rank = int(binom.ppf(0.025, n, q))
    high_rank = int(binom.ppf(0.975, n, q))
    return (
        float(np.quantile(ordered, q)),
        float(ordered[max(low_rank - 1, 0)]),
        float(ordered[min(high_rank, n - 1)]),
    )


def latency_line(label: str, latencies: list[float]) -> str:
    p50 = quantile_with_interval(latencies, 0.50)
    p99 = quantile_with_interval(latencies, 0.99)
    return (
        f"  check latency {label:<11} n={len(latencies):>5}  "
        f"p50 {p50[0] * 1e3:7.1f} ms [{p50[1] * 1e3:.1f}, {p50[2] * 1e3:.1f}]  "
        f"p99 {p99[0] * 1e3:7.1f} ms [{p99[1] * 1e3:.1f}, {p99[2] * 1e3:.1f}]"
    )


def bank_counts(url: str, expected: set[str]) -> dict[str, int]:
    """Rows expected, present, lost, duplicated and unexpected; sessions; rows without a session."""
    from nrr_stats.bank import open_bank

    with open_bank(url, create=False) as bank, bank.snapshot():
        ids = [r["experiment_id"] for r in bank.query("SELECT experiment_id FROM experiments")]
        sessions = len(bank.sessions())
        orphans = bank.query(
            "SELECT COUNT(*) AS n FROM experiments e LEFT JOIN sessions s ON s.id = e.session_id"
            " WHERE s.id IS NULL"
        )[0]["n"]
        integrity = "n/a"
        if bank.location.backend == "sqlite":
            integrity = bank.query("PRAGMA integrity_check")[0]["integrity_check"]
    stored = set(ids)
    return {
        "expected": len(expected),
        "present": len(ids),
        "lost": len(expected - stored),
        "duplicates": len(ids) - len(stored),
        "unexpected": len(stored - expected),
        "sessions": sessions,
        "orphans": int(orphans),
        "integrity": integrity,
    }


def counts_line(counts: dict[str, Any]) -> str:
    return (
        f"  rows expected {counts['expected']}  present {counts['present']}  lost {counts['lost']}"
        f"  duplicates {counts['duplicates']}  unexpected {counts['unexpected']}"
        f"  sessions {counts['sessions']}  orphan rows {counts['orphans']}  integrity {counts['integrity']}"
    )


def choose_check_mode(url: str) -> tuple[str, str]:
    """Use the real `check_proposal` when it answers on this bank; else a snapshot read, with the reason."""
    try:
        check_once(url, "check", PROPOSALS[0])
    except Exception as error:
        return "read", f"check_proposal unavailable ({type(error).__name__}: {str(error)[:120]})"
    return "check", "nrr_stats.check.check_proposal (records decisions, like `nrr check`)"


def checker_run(url: str, mode: str, count: int) -> list[float]:
    worker = Worker(["--role", "checker", "--url", url, "--mode", mode, "--count", str(count)])
    if worker.wait() != 0 or worker.result is None:
        raise RuntimeError(f"baseline checker failed: {worker.stderr[-2000:]}")
    if worker.result["errors"]:
        raise RuntimeError(f"baseline checker errors: {worker.result['errors'][:3]}")
    return worker.result["latencies"]


def seed_bank(url: str, workdir: Path, driver: str, batch: int) -> set[str]:
    """Create the bank with a small log, so that checks have data from the start."""
    path = workdir / f"{SEED_WRITER}.tsv"
    ids = write_log(path, SEED_WRITER, SEED_ROWS)
    ingest(url, path, driver, batch, lambda: None)
    return ids


def run_load(backend: str, url: str, workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    """The load test on one bank: returns counts and latencies."""
    expected = seed_bank(url, workdir, options.driver, options.batch)
    logs = []
    for index in range(options.writers):
        path = workdir / f"w{index}.tsv"
        expected |= write_log(path, f"w{index}", options.rows)
        logs.append(path)
    mode, why = choose_check_mode(url)
    print(f"{backend}: checkers use {why}")
    idle_before = checker_run(url, mode, options.idle_checks)

    stop_file = workdir / f"stop-{time.monotonic_ns()}"
    checkers = [
        Worker(["--role", "checker", "--url", url, "--mode", mode, "--stop-file", str(stop_file)])
        for _ in range(options.checkers)
    ]
    started = time.perf_counter()
    writers = [
        Worker(
            [
                "--role", "writer", "--url", url, "--driver", options.driver, "--batch", str(options.batch),
                "--logs", str(logs[i]), str(logs[(i + 1) % len(logs)]),
            ]
        )
        for i in range(options.writers)
    ]  # fmt: skip
    writer_codes = [w.wait() for w in writers]
    load_seconds = time.perf_counter() - started
    stop_file.touch()
    for checker in checkers:
        checker.wait()
    failures = [
        w.stderr[-1500:] for w, code in zip(writers, writer_codes, strict=True) if code != 0
    ]
    under_load = [x for c in checkers if c.result for x in c.result["latencies"]]
    under_load_cpu = [x for c in checkers if c.result for x in c.result["cpu"]]
    errors = [e for c in checkers if c.result for e in c.result["errors"]]
    errors += [
        f"checker exited {c.process.returncode}: {c.stderr[-300:]}"
        for c in checkers
        if c.result is None
    ]
    idle_after = checker_run(url, mode, options.idle_checks)
    added = [w.result["added"] for w in writers if w.result]
    return {
        "counts": bank_counts(url, expected),
        "writer_failures": failures,
        "rows_added_own_then_neighbour": added,
        "load_seconds": load_seconds,
        "check_calls": len(under_load) + len(errors),
        "check_errors": errors,
        "idle_before": idle_before,
        "under_load": under_load,
        "under_load_cpu": under_load_cpu,
        "idle_after": idle_after,
    }


def report_load(backend: str, result: dict[str, Any], options: argparse.Namespace) -> None:
    counts = result["counts"]
    rows = options.writers * options.rows
    print(
        f"{backend}: load, {options.writers} writers x {options.rows} rows ({options.driver}) + "
        f"{options.checkers} checkers: {result['load_seconds']:.1f} s, "
        f"{rows / result['load_seconds']:.0f} rows/s stored"
    )
    print(counts_line(counts))
    total_added = sum(sum(pair) for pair in result["rows_added_own_then_neighbour"])
    ingests = sum(len(pair) for pair in result["rows_added_own_then_neighbour"])
    print(
        f"  rows added by {ingests} ingests of {options.writers} logs (each log twice, concurrently):"
        f" {total_added} (must be {rows}: each log stored once)"
    )
    print(f"  writer failures {len(result['writer_failures'])}")
    for failure in result["writer_failures"][:3]:
        print("    " + failure.strip().splitlines()[-1] if failure.strip() else "    (no stderr)")
    print(f"  check calls {result['check_calls']}  errors {len(result['check_errors'])}")
    for error in result["check_errors"][:3]:
        print(f"    {error}")
    print(latency_line("idle, seed", result["idle_before"]))
    print(latency_line("under load", result["under_load"]))
    print(
        latency_line("(its CPU)", result["under_load_cpu"])
        + "  (wall >> CPU: waiting for CPU or locks)"
    )
    print(latency_line("idle, full", result["idle_after"]))
    if result["under_load"] and result["idle_after"]:
        ratio = np.median(result["under_load"]) / np.median(result["idle_after"])
        p99 = np.quantile(result["under_load"], 0.99) / np.quantile(result["idle_after"], 0.99)
        print(
            f"  under load / idle on the full bank: p50 x{ratio:.2f}, p99 x{p99:.2f}"
            " (the bank grows during the load, so 'under load' mixes bank sizes)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=os.environ.get("NRR_TEST_POSTGRES"))
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--checkers", type=int, default=4)
    parser.add_argument("--driver", choices=("ingest", "rows"), default="ingest")
    parser.add_argument(
        "--batch", type=int, default=10_000, help="rows per transaction (rows driver)"
    )
    parser.add_argument("--idle-checks", type=int, default=40)
    parser.add_argument(
        "--kills", type=int, default=20, help="SIGKILLs of the kill test (0: skip it)"
    )
    parser.add_argument(
        "--kill-window", type=float, default=0.5, help="max seconds a victim writes before the kill"
    )
    parser.add_argument("--seed", type=int, default=7)
    # worker roles (internal)
    parser.add_argument("--role", choices=("writer", "checker"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--logs", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="read", help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.role == "writer":
        writer_main(options.url, options.logs, options.driver, options.batch)
        return 0
    if options.role == "checker":
        checker_main(options.url, options.mode, options.stop_file, options.count)
        return 0

    clean = True
    for backend in options.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="nrr-load-") as scratch:
            with bank_url_for(backend, options.postgres, Path(scratch)) as url:
                if url is None:
                    print(
                        f"{backend}: skipped (set $NRR_TEST_POSTGRES or --postgres to a server URL)"
                    )
                    continue
                result = run_load(backend, url, Path(scratch), options)
                report_load(backend, result, options)
                total_added = sum(sum(pair) for pair in result["rows_added_own_then_neighbour"])
                clean &= (
                    _clean(result["counts"])
                    and not result["check_errors"]
                    and not result["writer_failures"]
                    and total_added == options.writers * options.rows
                )
            if options.kills:
                from kill_test import report_kills, run_kills

                with bank_url_for(backend, options.postgres, Path(scratch)) as url:
                    assert url is not None
                    kills = run_kills(backend, url, Path(scratch), options)
                    report_kills(backend, kills, options)
                    clean &= (
                        _clean(kills["counts"])
                        and kills["rerun_added"] == 0
                        and not kills["failures"]
                    )
    print("ALL CLEAN: zero lost, zero duplicated" if clean else "PROBLEMS FOUND (see above)")
    return 0 if clean else 1


def _clean(counts: dict[str, Any]) -> bool:
    return (
        counts["lost"] == 0
        and counts["duplicates"] == 0
        and counts["unexpected"] == 0
        and counts["orphans"] == 0
        and counts["integrity"] in ("ok", "n/a")
    )


if __name__ == "__main__":
    sys.exit(main())
