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

With `--fitted` the bank is first fitted (`nrr fit`, `--fit-draws` x 2 chains, `--fit-retries`
retries) so the check answers from the bank's own posterior. A fit that still fails its
diagnostics is put in the passing fit's place for the measurement and said so (as
check_latency.py does): a check's cost depends on the posterior's shapes, not its values.
With `--bank PATH` an existing bank (e.g. check_latency.py's benchmarks/out/bank-1000.db, with
its fit) is copied, side files and all, and measured instead of the built one.

    python benchmarks/cold_start.py [--repeats 21] [--importtime] [--conjugate]
        [--fitted [--fit-draws 200] [--fit-retries 0]] [--bank PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
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


def fit_bank(bank: Path, draws: int, retries: int) -> str:
    """Fit `bank` with `nrr fit` (2 chains); the fit's status, printable. A fit that fails its
    diagnostics is copied into the passing fit's place (benchmark only: never do this to a
    real bank) so the check answers from it."""
    from nrr_stats.models.posterior import failed_path_for, npz_path_for

    nrr = Path(sys.executable).with_name("nrr")
    argv = [str(nrr), "fit", "--bank", str(bank), "--draws", str(draws), "--chains", "2"]
    argv += ["--retries", str(retries), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"nrr fit failed: {done.stderr[-500:]}")
    from nrr_stats.bank import open_bank

    with open_bank(bank, create=False) as opened:
        published = opened.posterior_path
    if done.returncode == 0:
        return f"passed its diagnostics ({draws} draws x 2 chains, {took:.0f} s)"
    shutil.copyfile(npz_path_for(failed_path_for(published)), npz_path_for(published))
    return f"failed its diagnostics ({draws} draws x 2 chains, {took:.0f} s): used anyway"


def copy_bank(source: Path, folder: Path) -> Path:
    """A copy of the bank at `source` and its side files (fit, features, saved evidence)."""
    for path in source.parent.glob(source.stem + ".*"):
        if not path.name.endswith(".lock"):
            shutil.copy2(path, folder / path.name)
    return folder / source.name


def checked_session_rows(bank: Path) -> int:
    """Rows of the session a check replays (the latest): what the session grid's cost grows with."""
    from nrr_stats.bank import open_bank

    with open_bank(bank, create=False) as opened:
        latest = opened.latest_session()
        return len(opened.experiments(latest["id"])) if latest else 0


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
    parser.add_argument("--fitted", action="store_true", help="fit the bank first (nrr fit)")
    parser.add_argument("--fit-draws", type=int, default=200, help="with --fitted: draws/chain")
    parser.add_argument(
        "--fit-retries", type=int, default=0, help="with --fitted: nrr fit --retries"
    )
    parser.add_argument("--bank", type=Path, help="measure a copy of this bank instead")
    args = parser.parse_args(argv)
    import compileall

    import nrr_stats

    compileall.compile_dir(Path(nrr_stats.__file__).parent, quiet=1)
    nrr = Path(sys.executable).with_name("nrr")
    with tempfile.TemporaryDirectory(prefix="nrr-cold-") as scratch:
        if args.bank is not None:
            bank = copy_bank(args.bank.resolve(), Path(scratch))
            built = f"a copy of {args.bank}"
        else:
            bank = build_bank(Path(scratch))
            built = "1,000 experiments"
        fitted = fit_bank(bank, args.fit_draws, args.fit_retries) if args.fitted else None
        check = [str(nrr), "check", PROPOSAL, "--bank", str(bank)]
        check += ["--no-population-prior"] if args.conjugate else []
        numpy_only = [sys.executable, "-c", "import numpy"]
        wall(check), wall(numpy_only)  # warm the page cache and the bank's saved files
        pairs = [timed_pair(numpy_only, check) for _ in range(args.repeats)]
        answer = json.loads(subprocess.run(check, capture_output=True, text=True).stdout)
        source = answer["fit"]["source"]
        path = "conjugate path" if args.conjugate else f"answered from: {source}"
        print(
            f"bank: {built} ({path}; the checked session has {checked_session_rows(bank)} rows);"
            f" {args.repeats} alternated pairs"
        )
        if fitted is not None:
            print(f"fit: {fitted}")
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
