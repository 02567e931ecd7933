"""Kill test of the bank: 20 random SIGKILLs of writers in the middle of their ingests, then the counts.

    python benchmarks/kill_test.py                       # both backends (PostgreSQL via $NRR_TEST_POSTGRES)
    python benchmarks/kill_test.py --backends sqlite --kills 5 --rows 2000

Writers ingest their logs (same drivers as load_test.py); a killer waits until a writer has
begun its write transaction, lets it run for a random moment, and SIGKILLs it; the killed
ingest is simply run again, as a user would. When every log is stored, each is ingested once
more (that must add nothing), then rows expected / present / lost / duplicated are counted.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_test import (  # noqa: E402
    Worker,
    bank_counts,
    bank_url_for,
    counts_line,
    seed_bank,
    write_log,
)


def _writer(url: str, log: Path, options: argparse.Namespace) -> Worker:
    return Worker(
        [
            "--role",
            "writer",
            "--url",
            url,
            "--driver",
            options.driver,
            "--batch",
            str(options.batch),
        ]
        + ["--logs", str(log)]
    )


def run_kills(backend: str, url: str, workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    """Ingest every writer's log under `options.kills` random SIGKILLs; return counts and what happened."""
    rng = random.Random(options.seed)
    expected = seed_bank(url, workdir, options.driver, options.batch)
    logs = []
    for index in range(options.writers):
        path = workdir / f"k{index}.tsv"
        expected |= write_log(path, f"k{index}", options.rows)
        logs.append(path)

    started = time.perf_counter()
    running = {index: _writer(url, log, options) for index, log in enumerate(logs)}
    done: set[int] = set()
    kills = killed_before_result = restarts = extra_reingests = 0
    failures: list[str] = []
    write_seconds: list[
        float
    ] = []  # from a writer's first write to its exit: where kills should land
    while running:
        for index, worker in list(running.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del running[index]
            if code == 0:
                done.add(index)
                if worker.writing_at:
                    write_seconds.append(time.monotonic() - worker.writing_at)
            elif code == -signal.SIGKILL:
                running[index] = _writer(url, logs[index], options)
                restarts += 1
            else:
                failures.append(worker.stderr[-1500:])
        if kills < options.kills:
            writing = [
                w
                for w in running.values()
                if w.writing.is_set() and not w.killed and w.process.poll() is None
            ]
            if writing:
                victim = rng.choice(writing)
                window = options.kill_window
                if write_seconds:
                    window = min(window, 0.8 * sorted(write_seconds)[len(write_seconds) // 2])
                time.sleep(rng.uniform(0.0, window))
                if victim.process.poll() is None:
                    killed_before_result += victim.result is None
                    os.kill(victim.process.pid, signal.SIGKILL)
                    victim.killed = True  # until reaped, a dying process still polls as running
                    kills += 1
            elif not running:
                # Every log is stored but kills remain: re-ingest one (must add nothing) and kill that.
                index = rng.randrange(len(logs))
                running[index] = _writer(url, logs[index], options)
                extra_reingests += 1
        time.sleep(0.005)
    kill_seconds = time.perf_counter() - started

    rerun = [_writer(url, log, options) for log in logs]
    rerun_codes = [w.wait() for w in rerun]
    rerun_added = sum(sum(w.result["added"]) for w in rerun if w.result)
    failures += [w.stderr[-1500:] for w, code in zip(rerun, rerun_codes, strict=True) if code != 0]
    return {
        "counts": bank_counts(url, expected),
        "kills": kills,
        "killed_before_result": killed_before_result,
        "restarts": restarts,
        "extra_reingests": extra_reingests,
        "rerun_added": rerun_added,
        "failures": failures,
        "seconds": kill_seconds,
        "logs_done": len(done),
    }


def report_kills(backend: str, result: dict[str, Any], options: argparse.Namespace) -> None:
    print(
        f"{backend}: kill test, {options.writers} writers x {options.rows} rows ({options.driver}): "
        f"{result['kills']} SIGKILLs ({result['killed_before_result']} before the writer reported its result),"
        f" {result['restarts']} reruns of killed ingests, {result['extra_reingests']} extra re-ingests,"
        f" {result['seconds']:.1f} s"
    )
    print(counts_line(result["counts"]))
    print(f"  rows added by a final re-ingest of every log (must be 0): {result['rerun_added']}")
    print(f"  writer failures (not SIGKILL) {len(result['failures'])}")
    for failure in result["failures"][:3]:
        print("    " + (failure.strip().splitlines() or ["(no stderr)"])[-1])


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=os.environ.get("NRR_TEST_POSTGRES"))
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--driver", choices=("ingest", "rows"), default="ingest")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--kill-window", type=float, default=0.5, help="max seconds a victim writes before the kill"
    )
    parser.add_argument("--seed", type=int, default=7)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_options(parser)
    options = parser.parse_args(argv)
    clean = True
    for backend in options.backends.split(","):
        with (
            tempfile.TemporaryDirectory(prefix="nrr-kill-") as scratch,
            bank_url_for(backend, options.postgres, Path(scratch)) as url,
        ):
            if url is None:
                print(f"{backend}: skipped (set $NRR_TEST_POSTGRES or --postgres to a server URL)")
                continue
            result = run_kills(backend, url, Path(scratch), options)
            report_kills(backend, result, options)
            counts = result["counts"]
            clean &= (
                counts["lost"] == 0 and counts["duplicates"] == 0 and result["rerun_added"] == 0
            )
    print("ALL CLEAN: zero lost, zero duplicated" if clean else "PROBLEMS FOUND (see above)")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
