"""Is this checkout's held `nrr check` faster than another checkout's? Paired per proposal.

    python benchmarks/check_latency_paired.py /path/to/baseline/checkout [--rounds 3]
        [--paths fit population-prior conjugate] [--size 100000] [--proposals 100]

On this kind of machine the same code's check moves by up to 1.7x from one minute to the next
(a plain Python loop does too), more than most changes are worth. So each round holds two
fresh processes open, one per checkout, on the same cached bank (check_latency.py's
benchmarks/out/, built first if missing), each with a Checker after one warm-up, and asks both
each proposal one right after the other: a slow spell falls on both. Per round: each side's
median CPU ms over its first asks and the median per-proposal ratio (this / baseline); over
rounds, that ratio's median and range. Answers are not compared here (check_answers.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import check_latency as latency  # noqa: E402

# Runs in the checkout under test, held open: its own nrr_stats and Checker on the bank named
# on its first stdin line; then one proposal per line, answered with that check's CPU seconds.
CHILD = """
import json, sys, time
from nrr_stats.bank import open_bank
from nrr_stats.check import Checker
job = json.loads(sys.stdin.readline())
with open_bank(job["bank"], create=False) as bank, Checker(bank, **job["options"]) as checker:
    checker.check(job["warm_up"], record=False)
    print("ready", flush=True)
    for line in sys.stdin:
        started = time.process_time()
        checker.check(json.loads(line), record=False)
        print(time.process_time() - started, flush=True)
"""
PATHS = {"fit": {}, "population-prior": {}, "conjugate": {"use_population_prior": False}}


class HeldChecker:
    """A child process holding one checkout's Checker: `ask(text)` is that check's CPU ms."""

    def __init__(self, checkout: Path, job: dict):
        env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=checkout,
            env=env,
        )
        self._send(job)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the checker of {checkout} did not start")

    def _send(self, value: object) -> None:
        self.process.stdin.write(json.dumps(value) + "\n")
        self.process.stdin.flush()

    def ask(self, text: str) -> float:
        self._send(text)
        return 1000.0 * float(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def paired_round(baseline: Path, this: Path, job: dict, texts: list[str]) -> list[tuple]:
    """(baseline ms, this ms) per proposal, the two asked one right after the other (which goes
    first alternates), so a slow spell of the machine falls on both."""
    checkers = HeldChecker(baseline, job), HeldChecker(this, job)
    try:
        pairs = []
        for i, text in enumerate(texts):
            order = (0, 1) if i % 2 == 0 else (1, 0)
            got = {side: checkers[side].ask(text) for side in order}
            pairs.append((got[0], got[1]))
        return pairs
    finally:
        for checker in checkers:
            checker.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (its repository root)")
    parser.add_argument("--rounds", type=int, default=3, help="each in fresh processes")
    parser.add_argument("--paths", nargs="*", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--proposals", type=int, default=100)
    args = parser.parse_args(argv)

    bank, _ = latency.build_bank(args.size)
    texts = latency.proposals(args.proposals + 1)
    this = HERE.parent
    print(
        f"baseline {args.baseline.resolve()}; this {this}; bank {bank.name}; {len(texts) - 1} "
        "proposals, each asked once by a held Checker in each checkout, one right after the other"
    )
    for path in args.paths:
        aside = latency.WithoutFit(bank) if path != "fit" else contextlib.nullcontext()
        job = {"bank": str(bank), "warm_up": texts[0], "options": PATHS[path]}
        rounds = []
        with aside:
            for index in range(args.rounds):
                pairs = paired_round(args.baseline.resolve(), this, job, texts[1:])
                base = statistics.median(b for b, _ in pairs)
                mine = statistics.median(m for _, m in pairs)
                ratio = statistics.median(m / b for b, m in pairs)
                rounds.append((base, mine, ratio))
                print(
                    f"  {path:17s} round {index + 1}: medians baseline {base:6.2f}  this "
                    f"{mine:6.2f} ms; median per-proposal ratio {ratio:.3f}"
                )
        ratios = [r for _, _, r in rounds]
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(
            f"{path:17s} this / baseline: per-proposal ratio, median over rounds "
            f"{statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f}); "
            f"medians {statistics.median(r[0] for r in rounds):.2f} -> "
            f"{statistics.median(r[1] for r in rounds):.2f} ms; load {load}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
