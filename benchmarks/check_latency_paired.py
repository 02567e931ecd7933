"""Is this checkout's held `nrr check` faster than another checkout's? Alternated, paired runs.

    python benchmarks/check_latency_paired.py /path/to/baseline/checkout [--pairs 6]
        [--paths fit population-prior conjugate] [--size 100000] [--proposals 100]

On a machine shared with other work one run of check_latency.py moves by 2x, more than most
changes are worth. Here each pair runs the baseline checkout and this one back to back, each in
a fresh process on the same cached bank (check_latency.py's benchmarks/out/, built first if
missing) and the same proposals: a held Checker answers one warm-up, then times the CPU of its
first ask of each proposal. Per pair: the two medians and their ratio (this / baseline); over
the pairs: the median ratio and its range. Answers are not compared here (check_answers.py).
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

# Runs in the checkout under test: its own nrr_stats, the bank and proposals given on stdin.
CHILD = """
import json, sys, time
from nrr_stats.bank import open_bank
from nrr_stats.check import Checker
job = json.load(sys.stdin)
with open_bank(job["bank"], create=False) as bank, Checker(bank, **job["options"]) as checker:
    checker.check(job["texts"][0], record=False)
    times = []
    for text in job["texts"][1:]:
        started = time.process_time()
        checker.check(text, record=False)
        times.append(time.process_time() - started)
print(json.dumps(times))
"""
PATHS = {"fit": {}, "population-prior": {}, "conjugate": {"use_population_prior": False}}


def child_median_ms(checkout: Path, job: dict) -> float:
    """The median CPU ms per first ask, from one fresh process importing `checkout`'s code."""
    env = dict(os.environ, PYTHONPATH=str(checkout), OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=checkout,
        env=env,
        check=True,
    )
    return 1000.0 * statistics.median(json.loads(done.stdout.splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (its repository root)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--paths", nargs="*", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--proposals", type=int, default=100)
    args = parser.parse_args(argv)

    bank, _ = latency.build_bank(args.size)
    texts = latency.proposals(args.proposals + 1)
    this = HERE.parent
    print(
        f"baseline {args.baseline.resolve()}; this {this}; bank {bank.name}; {len(texts) - 1} "
        "proposals, each asked once by a held Checker; CPU ms, median per process"
    )
    for path in args.paths:
        aside = latency.WithoutFit(bank) if path != "fit" else contextlib.nullcontext()
        job = {"bank": str(bank), "texts": texts, "options": PATHS[path]}
        ratios = []
        with aside:
            for pair in range(args.pairs):
                base = child_median_ms(args.baseline.resolve(), job)
                mine = child_median_ms(this, job)
                ratios.append(mine / base)
                print(
                    f"  {path:17s} pair {pair + 1}: baseline {base:6.2f}  this {mine:6.2f}  "
                    f"ratio {mine / base:.3f}"
                )
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(
            f"{path:17s} ratio this / baseline: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs; load {load})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
