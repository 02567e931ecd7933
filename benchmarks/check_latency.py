"""`nrr check` at scale: in-process latency on a fitted bank, the cost of a stale or missing fit,
whole-process wall time against `python -c "import numpy"`, ingest throughput, size on disk and
peak memory. One command, one table; every baseline is measured in the same run.

    python benchmarks/check_latency.py            # banks of 1k and 100k experiments
    python benchmarks/check_latency.py --full     # and 1M (building it takes several minutes)

Banks are cached under benchmarks/out/ (git-ignored); a bank's fit is stored beside it and reused.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))

import make_synthetic_bank as synthetic  # noqa: E402

HEAVY = ("pymc", "pytensor", "arviz")
# Runs one `nrr check` through the real CLI entry point, then reports which heavy modules the
# process imported (on stderr, after the JSON the command prints).
CLI_PROBE = """
import atexit, sys
atexit.register(lambda: print("HEAVY=" + ",".join(
    m for m in {heavy!r} if m in sys.modules), file=sys.stderr))
from nrr_stats.cli import main
sys.argv = ["nrr", "check", *sys.argv[1:]]
sys.exit(main())
"""


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Timing(float):
    """Wall seconds of one call, with the CPU seconds of this process during it (`cpu`): on a
    machine shared with other work the wall time measures the load, the CPU time the code."""

    cpu: float


def timed(call: Callable[[], object]) -> Timing:
    started, cpu = time.perf_counter(), time.process_time()
    call()
    timing = Timing(time.perf_counter() - started)
    timing.cpu = time.process_time() - cpu
    return timing


def proposals(count: int, seed: int = 1) -> list[str]:
    """Varied proposals: real dev-corpus descriptions with perturbed numbers."""
    rows = synthetic.synthetic_rows(
        count * 4, synthetic.parsed_templates(synthetic.dev_descriptions()), seed=seed
    )
    texts = list(dict.fromkeys(row["description"] for row in rows))
    random.Random(seed).shuffle(texts)
    return texts[:count]


def build_bank(rows: int) -> tuple[Path, float | None]:
    """The cached synthetic bank of `rows` experiments, and its build time when built now."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"bank-{rows}.db"
    if path.exists() and path.with_suffix(".features.npy").exists():
        return path, None
    started = time.perf_counter()
    generated = synthetic.synthetic_rows(
        rows, synthetic.parsed_templates(synthetic.dev_descriptions()), seed=0
    )
    synthetic.write_bank(path, generated)
    return path, time.perf_counter() - started


def fit_bank(path: Path, draws: int, chains: int) -> tuple[float | None, str]:
    """Fit the bank once (stored beside it); (wall time, status). A stored fit is reused."""
    from nrr_stats.bank import open_bank
    from nrr_stats.models.posterior import failed_path_for, npz_path_for

    with open_bank(path, create=False) as bank:
        target = bank.posterior_path
        if npz_path_for(target).exists():
            return None, "cached"
        table = bank.experiment_table()
    import warnings

    from nrr_stats.models.fit import fit_and_store

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*BLAS.*")

    started = time.perf_counter()
    result, _ = fit_and_store(
        table, target, draws=draws, chains=chains, progress=False, retries=0
    )  # one try: a failed fit is used anyway below
    elapsed = time.perf_counter() - started
    if not result.passed:
        # A failed fit never answers; the latency of a current posterior is still what we measure.
        failed = npz_path_for(failed_path_for(target))
        shutil.copyfile(failed, npz_path_for(target))
        return elapsed, "failed diagnostics (used anyway)"
    return elapsed, "passed"


def structured_posterior(path: Path, donor: Path) -> tuple[float, str]:
    """A stand-in for a fit too slow for one session (1M rows: 415k leaves on 2 cores would
    take hours): the bank's own level coding and seen counts (what a fit stores), the donor
    fit's hyperparameter draws, and effects drawn from them. A check's cost depends on these
    shapes and magnitudes, not on the values being a posterior. (wall time, status)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.models.fit import model_data, stored_posterior
    from nrr_stats.models.posterior import CRASH_DRAWS, KEEP_DRAWS, load_posterior, npz_path_for

    started = time.perf_counter()
    with open_bank(path, create=False) as bank:
        target = npz_path_for(bank.posterior_path)
        if target.exists():
            return 0.0, "cached stand-in"
        data = model_data(bank.experiment_table())
    with open_bank(donor, create=False) as bank:
        fitted = load_posterior(bank.posterior_path)
    rng = np.random.default_rng(0)
    draws = {name: fitted.draws[name] for name in KEEP_DRAWS + CRASH_DRAWS}
    n = fitted.n_draws

    def effects(sigma: str, columns: int) -> np.ndarray:
        return draws[sigma][:, None] * rng.standard_normal((n, columns))

    draws |= {
        "a_cat": effects("sigma_cat", len(data.categories)),
        "b_cell": effects("sigma_cell", len(data.cells)),
        "e_param": effects("sigma_param", len(data.parameters)),
        "u_sess": effects("sigma_sess", len(data.sessions)),
        "crash_a_cat": effects("crash_sigma_cat", len(data.categories)),
        "crash_u_sess": effects("crash_sigma_sess", len(data.sessions)),
    }
    meta = {"stand_in": True, "donor": str(donor), "passed_diagnostics": True}
    stand_in = stored_posterior(draws, data, meta)
    np.savez(target, **stand_in.to_npz_arrays())
    return time.perf_counter() - started, f"stand-in ({n} draws of the {donor.stem} fit)"


class WithoutFit:
    """Move the bank's stored fit aside for the duration (the bank then answers unfitted)."""

    def __init__(self, path: Path):
        from nrr_stats.bank import open_bank
        from nrr_stats.models.posterior import npz_path_for

        with open_bank(path, create=False) as bank:
            self.npz = npz_path_for(bank.posterior_path)
        self.aside = self.npz.with_name(self.npz.name + ".aside")

    def __enter__(self) -> None:
        if self.npz.exists():
            self.npz.rename(self.aside)

    def __exit__(self, *exc: object) -> None:
        if self.aside.exists():
            self.aside.rename(self.npz)


def in_process_latency(
    path: Path, texts: Sequence[str], rounds: int = 1, **options: object
) -> tuple[list[float], str]:
    """Seconds per `Checker.check` over texts (one warm-up first), and the answer's source.
    With rounds > 1, the times of the last round alone: every proposal asked before in this
    session, so its cells' distributions are already summarised (what a first ask adds)."""
    from nrr_stats.bank import open_bank
    from nrr_stats.check import Checker

    with open_bank(path, create=False) as bank, Checker(bank, **options) as checker:
        answer = checker.check(texts[0], record=False)
        for _ in range(rounds):
            times = [timed(lambda t=text: checker.check(t, record=False)) for text in texts]
    return times, answer["fit"]["source"]


def loop_latency(path: Path, texts: Sequence[str], steps: int) -> tuple[list[float], list[float]]:
    """The agent's loop on a copy of the bank: its results.tsv gains one row, `ingest_log` on the
    open bank, then `check_proposal` on it. (ingest seconds, check seconds) per step."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_log
    from nrr_stats.check import Checker

    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        copy = Path(tmp) / path.name
        for source in path.parent.glob(path.with_suffix("").name + ".*"):
            if source.is_file() and not source.name.endswith((".lock", "-shm", "-wal", ".log")):
                shutil.copyfile(source, Path(tmp) / source.name)
        log = Path(tmp) / "results.tsv"
        lines = [
            "commit\tval_bpb\tmemory_gb\tstatus\tdescription",
            "base\t1.000000\t1.0\tkeep\tbaseline",
        ]
        ingest_times, check_times = [], []
        with open_bank(copy, create=False) as bank, Checker(bank) as checker:
            checker.check(texts[0], record=False)  # the loop's process is warm
            for step in range(steps):
                status = "keep" if step % 5 == 4 else "discard"
                description = texts[(step + 1) % len(texts)].replace("\t", " ")
                lines.append(f"{step:07x}\t{0.99 - 0.001 * step:.6f}\t1.0\t{status}\t{description}")
                log.write_text("\n".join(lines) + "\n", encoding="utf-8")
                ingest_times.append(timed(lambda: ingest_log(bank, log)))
                text = texts[(step + 2) % len(texts)]
                check_times.append(
                    timed(lambda t=text: checker.check(t, session="results.tsv", record=False))
                )
    return ingest_times, check_times


def child_rss(argv: list[str]) -> tuple[float, int, str, str]:
    """(wall seconds, peak RSS in kB, "", stderr) of one child; os.wait4 gives its own RSS."""
    started = time.perf_counter()
    with open(os.devnull, "w") as sink, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=sink, stderr=err, text=True)
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0
        elapsed = time.perf_counter() - started
        err.seek(0)
        return elapsed, usage.ru_maxrss, "", err.read()


# ru_maxrss survives exec: a child forked from this (large) process would report our size, so the
# check runs under a small wrapper process and its own child's peak is read there.
RSS_WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], capture_output=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def peak_rss_kb(argv: list[str]) -> int:
    """Peak resident set (kB) of one process running argv, measured from a small parent."""
    out = subprocess.run(
        [sys.executable, "-c", RSS_WRAPPER, *argv], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def whole_process(path: Path, text: str, repeats: int = 5) -> dict[str, object]:
    """Median wall time of `nrr check` and of `python -c "import numpy"`, alternated; the check's
    peak RSS and the heavy modules it imported."""
    probe = [sys.executable, "-c", CLI_PROBE.format(heavy=HEAVY), text, "--bank", str(path)]
    numpy_only = [sys.executable, "-c", "import numpy"]
    # The `nrr` installed with this interpreter (a pyenv shim on PATH may be another one).
    beside = Path(sys.executable).with_name("nrr")
    nrr = str(beside) if beside.exists() else shutil.which("nrr") or "nrr"
    cli = [nrr, "check", text, "--bank", str(path)]
    check_times, numpy_times, rss = [], [], []
    for _ in range(repeats):
        numpy_times.append(child_rss(numpy_only)[0])
        check_times.append(child_rss(cli)[0])
    rss.append(peak_rss_kb(cli))
    _, _, _, err = child_rss(probe)
    heavy = [line for line in err.splitlines() if line.startswith("HEAVY=")]
    return {
        "check_s": statistics.median(check_times),
        "numpy_s": statistics.median(numpy_times),
        "peak_rss_mb": max(rss) / 1024.0,
        "heavy": heavy[-1].removeprefix("HEAVY=") if heavy else "probe failed: " + err[-200:],
    }


def ingest_throughput(rows: int = 20_000) -> tuple[float, float]:
    """(rows/s, seconds) of `ingest_log` on a synthetic results.tsv written from the dev corpus."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.ingest import ingest_log

    generated = synthetic.synthetic_rows(
        rows, synthetic.parsed_templates(synthetic.dev_descriptions()), seed=7
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "results.tsv"
        lines = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription"]
        metric = 1.0
        for i, row in enumerate(generated):
            status = row["status"]
            if status == "keep":
                metric -= 0.001
            value = (
                "0.000000" if status == "crash" else f"{metric + 0.002 * (status != 'keep'):.6f}"
            )
            description = row["description"].replace("\t", " ").replace("\n", " ")
            lines.append(f"{i:07x}\t{value}\t1.0\t{status}\t{description}")
        log.write_text("\n".join(lines) + "\n", encoding="utf-8")
        bank = open_bank(Path(tmp) / "ingest.db")
        try:
            elapsed = timed(lambda: ingest_log(bank, log))
            stored = bank.count_experiments()
        finally:
            bank.close()
    return stored / elapsed, elapsed


def disk_bytes(path: Path) -> tuple[int, int]:
    """(bytes growing with the rows: db, WAL, feature rows and keys; other bytes: fit, idf state,
    the saved evidence sums)."""
    stem = path.with_suffix("")
    files = [p for p in path.parent.glob(stem.name + ".*") if p.is_file()]
    fixed = [p for p in files if p.name.endswith((".npz", ".nc"))]
    return sum(p.stat().st_size for p in files if p not in fixed), sum(
        p.stat().st_size for p in fixed
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the 1M-experiment bank")
    parser.add_argument("--sizes", type=int, nargs="*", help="bank sizes (default 1k, 100k)")
    parser.add_argument("--no-fit", action="store_true", help="time only the unfitted paths")
    parser.add_argument("--skip-ingest", action="store_true", help="no ingest throughput row")
    parser.add_argument("--proposals", type=int, default=40)
    parser.add_argument("--draws", type=int, default=500, help="fit draws per chain")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument(
        "--max-fit-rows",
        type=int,
        default=100_000,
        help="larger banks get a stand-in posterior shaped like a fit (see structured_posterior)",
    )
    parser.add_argument("--stale-proposals", type=int, default=10)
    parser.add_argument("--loop-steps", type=int, default=15, help="ingest-then-check steps")
    parser.add_argument(
        "--stale-max-rows",
        type=int,
        default=1_000_000,
        help="largest bank on which to time the unfitted (population prior) check",
    )
    args = parser.parse_args(argv)
    from nrr_stats.check import check_proposal

    sizes = args.sizes or [1_000, 100_000] + ([1_000_000] if args.full else [])
    texts = proposals(args.proposals)
    rows: list[tuple[str, str]] = []

    def add(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"  {name:<58} {value}", file=sys.stderr, flush=True)

    def latency(times: Sequence[float]) -> str:
        ms = [t * 1e3 for t in times]
        cpu = [getattr(t, "cpu", float("nan")) * 1e3 for t in times]
        return (
            f"p50 {percentile(ms, 50):8.2f} ms  p99 {percentile(ms, 99):8.2f} ms  (n={len(ms)});"
            f" CPU p50 {percentile(cpu, 50):.2f} ms  p90 {percentile(cpu, 90):.2f} ms"
        )

    for size in sizes:
        label = f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"
        path, built = build_bank(size)
        if built is not None:
            add(f"[{label}] build synthetic bank", f"{built:.1f} s")
        if args.no_fit:
            fit_s, status = None, "not fitted (--no-fit)"
            add(f"[{label}] nrr fit", status)
        elif size > args.max_fit_rows:
            fit_s, status = structured_posterior(path, OUT / f"bank-{args.max_fit_rows}.db")
            add(f"[{label}] posterior (no NUTS fit above {args.max_fit_rows} rows)", status)
        else:
            fit_s, status = fit_bank(path, args.draws, args.chains)
            add(
                f"[{label}] nrr fit ({args.chains}x{args.draws} draws)",
                f"{fit_s:.1f} s, {status}" if fit_s is not None else status,
            )
        if not args.no_fit:
            times, source = in_process_latency(path, texts)
            add(f"[{label}] in-process check, current fit ({source})", latency(times))
            again, _ = in_process_latency(path, texts, rounds=2)
            add(
                f"[{label}] in-process check, current fit, each proposal asked again",
                latency(again),
            )
            ingests, checks = loop_latency(path, texts, args.loop_steps)
            add(f"[{label}] in-process check after ingesting one row (the loop)", latency(checks))
            add(f"[{label}] ingest_log of that one-row change (the loop)", latency(ingests))
            cold = [
                timed(lambda t=text, p=path: check_proposal(t, bank=p, record=False))
                for text in texts[: args.stale_proposals + 1]
            ]
            add(f"[{label}] in-process check, bank opened per check (cold read)", latency(cold))
        stale_texts = texts[: args.stale_proposals + 1]
        with WithoutFit(path):
            if size <= args.stale_max_rows:
                times, source = in_process_latency(path, stale_texts)
                add(f"[{label}] in-process check, no fit: population prior", latency(times))
            else:
                add(f"[{label}] in-process check, no fit: population prior", "skipped (slow)")
            times, source = in_process_latency(path, texts, use_population_prior=False)
            add(f"[{label}] in-process check, no fit: conjugate ({source})", latency(times))
        whole = whole_process(path, texts[1])
        add(
            f"[{label}] whole-process nrr check (median of 5)",
            f"{whole['check_s'] * 1e3:.0f} ms = {whole['check_s'] / whole['numpy_s']:.1f}x "
            f"`python -c 'import numpy'` ({whole['numpy_s'] * 1e3:.0f} ms)",
        )
        add(f"[{label}] heavy modules in the check process", whole["heavy"] or "none")
        add(f"[{label}] peak memory (ru_maxrss) of nrr check", f"{whole['peak_rss_mb']:.0f} MB")
        growing, fixed = disk_bytes(path)
        add(
            f"[{label}] bank on disk: db + WAL + feature rows",
            f"{growing / 1e6:.1f} MB = {growing / size * 1e5 / 1e6:.1f} MB per 100k experiments"
            f" (+ {fixed / 1e6:.1f} MB fit, idf state and saved sums)",
        )
    if not args.skip_ingest:
        rate, elapsed = ingest_throughput()
        add(
            "ingest_log, synthetic results.tsv of 20k rows", f"{rate:,.0f} rows/s ({elapsed:.1f} s)"
        )

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmachine: {os.cpu_count()} cores, load average {load} (1, 5, 15 min) at the end")
    print(f"{'measure':<60} figure")
    print("-" * 120)
    for name, value in rows:
        print(f"{name:<60} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
