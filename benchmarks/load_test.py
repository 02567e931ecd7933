"""Load test of the bank: 8 writers ingesting 10k experiments each while 4 checkers read, per backend.

    python benchmarks/load_test.py                       # load test, then the kill test, on both backends
    python benchmarks/load_test.py --kills 0 --backends sqlite --rows 2000

Prints, per backend: rows expected / present / lost / duplicated, check calls and errors,
decisions requested / recorded / still queued, the load average, and check latency p50 / p99
wall and CPU (with 95% order-statistic intervals and counts) idle before the load, under load,
and idle after it on the full bank, with the time of each phase of a check (opening the bank,
reading the sums, the session's rows, the similarity snapshot, the store's lock, recording the
decision, the bank's write lock). The 4 checkers each hold one `nrr_stats.check.Checker` (what
a loop, `nrr mcp` and the Python API hold) and ask about the seed log's session; one more
process calls the one-shot `check_proposal` once a second (reported apart). Every process runs
at the nice level the script was started at.
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
# Writers wait this long for the insert lock (`--lock-timeout 3600`): 8 ingests of 10k rows
# queue on it, and on a 2-core machine loaded by other work the last waited over 600 s.
WRITER_LOCK_TIMEOUT = 3600.0


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

    with open_bank(url, lock_timeout=WRITER_LOCK_TIMEOUT) as bank:
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


# -- where a check's time goes -------------------------------------------------------------

# Phases of a check, timed by wrapping the functions that do them (wall and CPU, seconds):
# opening the bank, reading the sums, the session's rows, the similarity snapshot (inside it:
# the wait for the store's lock, a sync of the rows past the store's last id or of all rows,
# features computed in memory), recording the decision (inside it: the wait for the bank's
# write lock). What is left of a check's time is the answer itself.
PHASES = (
    "open",
    "sums",
    "session",
    "features",
    "store lock",
    "sync tail",
    "sync all",
    "in memory",
    "record",
    "write lock",
)


class PhaseTimer:
    """Wall and CPU time per phase for the check running now (nested phases count in both)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def reset(self) -> None:
        self.wall, self.cpu = {}, {}

    def wrap(self, owner: Any, name: str, phase: str, *, context: bool = False) -> None:
        import functools

        original = getattr(owner, name)
        timer = self

        if context:  # a context manager: time until its body starts (a lock's wait)

            @contextmanager
            def timed_context(*args: Any, **kwargs: Any) -> Iterator[Any]:
                started, cpu = time.perf_counter(), time.thread_time()
                with original(*args, **kwargs) as value:
                    timer._add(phase, started, cpu)
                    yield value

            setattr(owner, name, timed_context)
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                timer._add(phase, started, cpu)

        setattr(owner, name, timed)

    def _add(self, phase: str, started: float, cpu: float) -> None:
        self.wall[phase] = self.wall.get(phase, 0.0) + time.perf_counter() - started
        self.cpu[phase] = self.cpu.get(phase, 0.0) + time.thread_time() - cpu


def instrument() -> PhaseTimer:
    """Time the phases of every check this process makes (see PHASES)."""
    import nrr_stats.bank.postgres as postgres
    import nrr_stats.bank.sqlite as sqlite
    import nrr_stats.check as check
    import nrr_stats.similarity.store as store
    from nrr_stats.bank.store import Bank

    timer = PhaseTimer()
    timer.wrap(check, "open_bank", "open")
    timer.wrap(check.Checker, "reading", "sums")
    timer.wrap(Bank, "experiments", "session")
    timer.wrap(store, "bank_features", "features")
    timer.wrap(store, "locked", "store lock", context=True)
    timer.wrap(store.FeatureStore, "sync_recent", "sync tail")
    timer.wrap(store.FeatureStore, "sync", "sync all")
    timer.wrap(store, "_in_memory", "in memory")
    timer.wrap(Bank, "record_decision", "record")
    timer.wrap(sqlite._AutoCommitSqlite, "begin", "write lock")
    timer.wrap(postgres.PostgresConnection, "begin", "write lock")
    return timer


def make_checker(url: str, mode: str, session: str) -> Callable[[str], dict[str, Any]]:
    """One check per call: `held` keeps one nrr_stats.check.Checker (as a loop, `nrr mcp` and
    the Python API do), `oneshot` calls check_proposal (opens the bank, reads it, records,
    closes: what one `nrr check` process does inside), `read` only reads a snapshot. `session`
    is the seed log's path: a loop asks about its own session, which the other writers do not
    write."""
    if mode == "held":
        from nrr_stats.check import Checker

        checker = Checker(url)
        return lambda proposal: checker.check(proposal, session=session)
    if mode == "oneshot":
        from nrr_stats.check import check_proposal

        return lambda proposal: check_proposal(proposal, bank=url, session=session)

    def read(_proposal: str) -> dict[str, Any]:
        from nrr_stats.bank import open_bank

        with open_bank(url, create=False) as bank, bank.snapshot():
            table = bank.experiment_table()
            if len(table.kept) > bank.count_experiments():
                raise AssertionError("snapshot saw more predicted rows than rows")
        return {}

    return read


def checker_main(
    url: str, mode: str, session: str, stop_file: str, count: int, pause: float
) -> None:
    """A checker process: check in a loop (until `stop_file` exists, or `count` times); print
    per check its wall and CPU time, its phases, and whether its decision was recorded now
    (an id), queued (None, no warning) or not recorded (a warning)."""
    import traceback

    timer = instrument()
    started_open = time.perf_counter()
    check = make_checker(url, mode, session)
    opened = time.perf_counter() - started_open
    latencies: list[float] = []
    cpu: list[float] = []
    phases: list[dict[str, list[float]]] = []
    errors: list[str] = []
    decisions = {"requested": 0, "recorded": 0, "queued": 0, "not_recorded": 0}
    calls = 0
    while (count and calls < count) or (not count and not os.path.exists(stop_file)):
        proposal = PROPOSALS[calls % len(PROPOSALS)]
        timer.reset()
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            answer = check(proposal)
            latencies.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            phases.append({p: [timer.wall[p], timer.cpu[p]] for p in timer.wall})
            if mode != "read":
                decisions["requested"] += 1
                if isinstance(answer.get("decision_id"), int):
                    decisions["recorded"] += 1
                elif any("not recorded" in w for w in answer.get("warnings", [])):
                    decisions["not_recorded"] += 1
                else:
                    decisions["queued"] += 1
        except Exception:  # every failure is counted and sampled, none stops the loop
            errors.append(" | ".join(traceback.format_exc().strip().splitlines()[-5:])[:600])
        calls += 1
        if pause:
            time.sleep(pause)
    print(
        "result "
        + json.dumps(
            {
                "latencies": latencies,
                "cpu": cpu,
                "phases": phases,
                "errors": errors,
                "decisions": decisions,
                "opened": opened,
            }
        ),
        flush=True,
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
        f"  check {label:<18} n={len(latencies):>5}  "
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


@dataclass
class Checks:
    """What checker processes measured: per check wall and CPU seconds and phases; decisions."""

    latencies: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    phases: list[dict[str, list[float]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    decisions: dict[str, int] = field(default_factory=dict)

    def add(self, worker: Worker) -> None:
        if worker.result is None:
            self.errors.append(
                f"checker exited {worker.process.returncode}: {worker.stderr[-300:]}"
            )
            return
        result = worker.result
        self.latencies += result["latencies"]
        self.cpu += result["cpu"]
        self.phases += result["phases"]
        self.errors += result["errors"]
        for key, value in result["decisions"].items():
            self.decisions[key] = self.decisions.get(key, 0) + value


def checker_args(url: str, mode: str, session: Path, *more: str) -> list[str]:
    return ["--role", "checker", "--url", url, "--mode", mode, "--session", str(session), *more]


def checker_run(url: str, mode: str, session: Path, count: int) -> Checks:
    worker = Worker(checker_args(url, mode, session, "--count", str(count)))
    if worker.wait() != 0 or worker.result is None:
        raise RuntimeError(f"baseline checker failed: {worker.stderr[-2000:]}")
    if worker.result["errors"]:
        raise RuntimeError(f"baseline checker errors: {worker.result['errors'][:3]}")
    checks = Checks()
    checks.add(worker)
    return checks


def seed_bank(url: str, workdir: Path, driver: str, batch: int) -> set[str]:
    """Create the bank with a small log, so that checks have data from the start."""
    path = workdir / f"{SEED_WRITER}.tsv"
    ids = write_log(path, SEED_WRITER, SEED_ROWS)
    ingest(url, path, driver, batch, lambda: None)
    return ids


class LoadSampler:
    """The 1-minute load average and CPU pressure ("some avg10"), sampled every 2 s on a thread."""

    def __init__(self) -> None:
        self.load: list[float] = []
        self.pressure: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            self.load.append(os.getloadavg()[0])
            try:
                line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
                self.pressure.append(float(line.split()[1].split("=")[1]))
            except (OSError, IndexError, ValueError):
                pass

    def stop(self) -> str:
        self._stop.set()
        self._thread.join(timeout=5)
        if not self.load:
            return "load average: not sampled"
        load = np.array(self.load)
        text = (
            f"load average (1 min, {len(load)} samples): median {np.median(load):.1f},"
            f" range {load.min():.1f}-{load.max():.1f} on {os.cpu_count()} cores"
        )
        if self.pressure:
            text += f"; CPU pressure some avg10 median {np.median(self.pressure):.0f}%"
        return text


def decisions_in_bank(url: str) -> tuple[int, int]:
    """(decisions recorded in the bank, decisions still queued beside it)."""
    from nrr_stats.bank import open_bank

    with open_bank(url, create=False) as bank:
        recorded = int(bank.query("SELECT COUNT(*) AS n FROM decisions")[0]["n"])
        queued = bank.queued_decisions() if hasattr(bank, "queued_decisions") else 0
    return recorded, queued


def run_load(backend: str, url: str, workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    """The load test on one bank: returns counts, latencies and decisions."""
    expected = seed_bank(url, workdir, options.driver, options.batch)
    session = workdir / f"{SEED_WRITER}.tsv"
    logs = []
    for index in range(options.writers):
        path = workdir / f"w{index}.tsv"
        expected |= write_log(path, f"w{index}", options.rows)
        logs.append(path)
    idle_before = checker_run(url, "held", session, options.idle_checks)
    oneshot_before = checker_run(url, "oneshot", session, options.oneshot_idle_checks)
    print(f"{backend}: idle checks done; load starting", flush=True)

    stop_file = workdir / f"stop-{time.monotonic_ns()}"
    stop = ["--stop-file", str(stop_file)]
    checkers = [Worker(checker_args(url, "held", session, *stop)) for _ in range(options.checkers)]
    oneshots = [
        Worker(checker_args(url, "oneshot", session, *stop, "--pause", str(options.oneshot_pause)))
        for _ in range(options.oneshot_checkers)
    ]
    sampler = LoadSampler()
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
    writer_codes = []
    for writer in writers:
        writer_codes.append(writer.wait())
        print(f"{backend}: writer done after {time.perf_counter() - started:.0f} s", flush=True)
    load_seconds = time.perf_counter() - started
    stop_file.touch()
    under_load, oneshot_load = Checks(), Checks()
    for checker in checkers:
        checker.wait()
        under_load.add(checker)
    for checker in oneshots:
        checker.wait()
        oneshot_load.add(checker)
    load_line = sampler.stop()
    failures = [
        w.stderr[-1500:] for w, code in zip(writers, writer_codes, strict=True) if code != 0
    ]
    queued_after_load = decisions_in_bank(url)
    idle_after = checker_run(url, "held", session, options.idle_checks)
    oneshot_after = checker_run(url, "oneshot", session, options.oneshot_idle_checks)
    recorded, queued = decisions_in_bank(url)
    requested = sum(
        c.decisions.get("requested", 0)
        for c in (idle_before, oneshot_before, under_load, oneshot_load, idle_after, oneshot_after)
    )
    added = [w.result["added"] for w in writers if w.result]
    return {
        "counts": bank_counts(url, expected),
        "writer_failures": failures,
        "rows_added_own_then_neighbour": added,
        "load_seconds": load_seconds,
        "load_line": load_line,
        "check_errors": under_load.errors + oneshot_load.errors,
        "idle_before": idle_before,
        "oneshot_before": oneshot_before,
        "under_load": under_load,
        "oneshot_load": oneshot_load,
        "idle_after": idle_after,
        "oneshot_after": oneshot_after,
        "decisions": {
            "requested": requested,
            "recorded": recorded,
            "queued": queued,
            "queued_when_load_ended": queued_after_load[1],
            "answers_warning_not_recorded": under_load.decisions.get("not_recorded", 0)
            + oneshot_load.decisions.get("not_recorded", 0),
        },
    }


def phases_lines(checks: Checks) -> list[str]:
    """Per phase: p50 / p99 wall and p50 CPU over the checks (0 where a check skipped it)."""
    lines = []
    for phase in PHASES:
        wall = [p.get(phase, [0.0, 0.0])[0] for p in checks.phases]
        cpu = [p.get(phase, [0.0, 0.0])[1] for p in checks.phases]
        if not wall or not any(wall):
            continue
        lines.append(
            f"    {phase:<11} wall p50 {np.median(wall) * 1e3:7.1f} ms  p99"
            f" {np.quantile(wall, 0.99) * 1e3:7.1f} ms  max {max(wall) * 1e3:7.1f} ms"
            f"  CPU p50 {np.median(cpu) * 1e3:6.1f} p99 {np.quantile(cpu, 0.99) * 1e3:6.1f} ms"
            f"  (in {sum(w > 0 for w in wall)} checks)"
        )
    return lines


def report_load(backend: str, result: dict[str, Any], options: argparse.Namespace) -> None:
    counts = result["counts"]
    rows = options.writers * options.rows
    print(
        f"{backend}: load, {options.writers} writers x {options.rows} rows ({options.driver}) + "
        f"{options.checkers} held checkers + {options.oneshot_checkers} one-shot:"
        f" {result['load_seconds']:.1f} s, {rows / result['load_seconds']:.0f} rows/s stored"
    )
    print("  " + result["load_line"])
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
    calls = len(result["under_load"].latencies) + len(result["oneshot_load"].latencies)
    print(f"  check calls under load {calls}  errors {len(result['check_errors'])}")
    for error in result["check_errors"][:3]:
        print(f"    {error}")
    d = result["decisions"]
    at_once = result["under_load"].decisions.get("recorded", 0)
    queued = result["under_load"].decisions.get("queued", 0)
    print(f"  held checks under load: decision recorded at once {at_once}, queued {queued}")
    print(
        f"  decisions requested {d['requested']}  recorded {d['recorded']}  still queued"
        f" {d['queued']}  lost {d['requested'] - d['recorded'] - d['queued']}"
        f"  (queued when the load ended: {d['queued_when_load_ended']};"
        f" answers warning 'not recorded': {d['answers_warning_not_recorded']})"
    )
    for label, key in (
        ("held, idle, seed", "idle_before"),
        ("held, load", "under_load"),
        ("held, idle, full", "idle_after"),
        ("1-shot, idle, seed", "oneshot_before"),
        ("1-shot, load", "oneshot_load"),
        ("1-shot, idle, full", "oneshot_after"),
    ):
        checks = result[key]
        print(latency_line(label, checks.latencies))
        print(latency_line("  its CPU", checks.cpu))
        if key in ("under_load", "oneshot_load", "idle_after"):
            print("\n".join(phases_lines(checks)))


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
        "--oneshot-checkers",
        type=int,
        default=1,
        help="processes calling the one-shot check_proposal under load (reported apart)",
    )
    parser.add_argument("--oneshot-pause", type=float, default=1.0)
    parser.add_argument("--oneshot-idle-checks", type=int, default=10)
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
    parser.add_argument("--mode", default="held", help=argparse.SUPPRESS)
    parser.add_argument("--session", default="", help=argparse.SUPPRESS)
    parser.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)

    if options.role == "writer":
        writer_main(options.url, options.logs, options.driver, options.batch)
        return 0
    if options.role == "checker":
        checker_main(
            options.url,
            options.mode,
            options.session,
            options.stop_file,
            options.count,
            options.pause,
        )
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
