"""Whole-process `nrr check` against `python -c "import numpy"`, side by side, on a 1k bank.

Builds a bank of 1,000 experiments (50 logs of the bundled seed log's 20 experiments, each
with its own commits and metrics), then alternates the two processes `--repeats` times and
prints the median of each, the ratio of the medians, and the spread of the per-pair ratios
(the machine may be loaded by others: the pairs share its load), and the same for the
processes' CPU time (user + system), which a loaded machine inflates less. With `--importtime` it also
lists the check's slowest imports (`python -X importtime`), by cumulative and by own time.
Target: ratio <= 2.5.

nrr_stats' bytecode is compiled first (`compileall`, as `pip install` does for an installed
package): with $PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise recompile
every module from source in every process (~0.25 s here).

    python benchmarks/cold_start.py [--repeats 21] [--importtime] [--conjugate]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = Path(__file__).resolve().parents[1] / "nrr_stats" / "data" / "seed_results.tsv"
PROPOSAL = "Increase LR to 0.02"


def build_bank(folder: Path, logs: int = 50) -> Path:
    """A SQLite bank of `logs` x 20 experiments."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_logs

    header, *rows = SEED.read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    paths = []
    for number in range(logs):
        lines = [header]
        for row in rows:
            commit, metric, memory, status, description = row.split("\t")
            shifted = float(metric) + rng.uniform(-0.01, 0.01)
            lines.append(
                f"{number:03d}{commit[3:]}\t{shifted:.6f}\t{memory}\t{status}\t{description}"
            )
        path = folder / f"loop{number:02d}" / "results.tsv"
        path.parent.mkdir()
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    bank = folder / "bank.db"
    with open_bank(bank) as opened:
        ingest_logs(opened, paths)
        assert opened.count_experiments() == logs * len(rows)
    return bank


def wall(argv: list[str]) -> float:
    """Wall seconds of one process; its CPU seconds (user + system) in `last_cpu[0]`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last_cpu[0] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-500:]}")
    return took


last_cpu = [0.0]


def timed_pair(numpy_only: list[str], check: list[str]) -> tuple[float, float, float, float]:
    """(numpy wall, check wall, numpy CPU, check CPU) of one alternated pair."""
    numpy_wall = wall(numpy_only)
    numpy_cpu = last_cpu[0]
    check_wall = wall(check)
    return numpy_wall, check_wall, numpy_cpu, last_cpu[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--importtime", action="store_true")
    parser.add_argument(
        "--conjugate",
        action="store_true",
        help="check with --no-population-prior (the conjugate path) instead of the default",
    )
    args = parser.parse_args(argv)
    import compileall

    import nrr_stats

    compileall.compile_dir(Path(nrr_stats.__file__).parent, quiet=1)
    nrr = Path(sys.executable).with_name("nrr")
    with tempfile.TemporaryDirectory(prefix="nrr-cold-") as scratch:
        bank = build_bank(Path(scratch))
        check = [str(nrr), "check", PROPOSAL, "--bank", str(bank)]
        check += ["--no-population-prior"] if args.conjugate else []
        numpy_only = [sys.executable, "-c", "import numpy"]
        wall(check), wall(numpy_only)  # warm the page cache and the bank's saved files
        pairs = [timed_pair(numpy_only, check) for _ in range(args.repeats)]
        path = "conjugate path" if args.conjugate else "population prior"
        print(f"bank: 1,000 experiments ({path}); {args.repeats} alternated pairs")
        print(f"machine load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for label, n, c in (("wall", 0, 1), ("CPU (user + system)", 2, 3)):
            numpy_s = statistics.median(p[n] for p in pairs)
            check_s = statistics.median(p[c] for p in pairs)
            ratios = sorted(p[c] / p[n] for p in pairs)
            quartiles = statistics.quantiles(ratios, n=4)
            print(
                f"{label}: python -c 'import numpy' median {numpy_s * 1e3:.0f} ms, nrr check "
                f"(whole process) median {check_s * 1e3:.0f} ms"
            )
            print(
                f"  ratio of medians {check_s / numpy_s:.2f}x (target 2.5x); per-pair ratios: "
                f"median {statistics.median(ratios):.2f}, quartiles {quartiles[0]:.2f}-"
                f"{quartiles[2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}"
            )
        if args.importtime:
            done = subprocess.run(
                [
                    sys.executable,
                    "-X",
                    "importtime",
                    "-c",
                    "import sys; from nrr_stats.cli import main; sys.exit(main(sys.argv[1:]))",
                    *check[1:],
                ],
                capture_output=True,
                text=True,
            )
            rows = []
            for line in done.stderr.splitlines():
                if line.startswith("import time:") and "|" in line and "cumulative" not in line:
                    own, cumulative, name = line.removeprefix("import time:").split("|")
                    rows.append((int(cumulative), int(own), name.rstrip()))
            print("slowest imports of the check (cumulative us):")
            for cumulative, _, name in sorted(rows, reverse=True)[:15]:
                print(f"  {cumulative:>8} {name}")
            print("... and by their own time (us; what is left when their imports are taken out):")
            for _, own, name in sorted(rows, key=lambda row: -row[1])[:15]:
                print(f"  {own:>8} {name.strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
