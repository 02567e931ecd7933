"""Fit wall and CPU time of the bounded fit at 10k, 100k and 1M experiments, with diagnostics.

Usage: python benchmarks/fit_scaling.py [--sizes 10000,100000,1000000] [--draws N] [--chains N]
                                        [--max-sessions K] [--bank BANK.db]
Each size is a synthetic bank made like benchmarks/make_synthetic_bank.py's (the dev corpus's
descriptions, parsed; sessions of 200 rows, so 1M experiments are 5,000 sessions and about
415k leaves). `nrr fit`'s fit (models/fit.py `fit_hierarchy`, default draws and chains) sees at
most --max-sessions of them (models/session_sample.py), so its cost stops growing once the bank
holds more sessions than that. The baseline is the first size of the same run. With --bank the
largest size is read from that bank as `nrr fit` reads it (the bank's own session keys).
CPU time is the process's (all sampler threads): on a shared machine it is the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def synthetic_table(n_rows: int, templates, seed: int = 0):
    """The experiment table of a synthetic bank of `n_rows` rows (make_synthetic_bank's rows)."""
    from make_synthetic_bank import synthetic_rows

    from nrr_stats.models.data import ExperimentTable

    return ExperimentTable.from_records(
        {
            "session": f"synthetic-{row['session_id']:06d}",
            "category": row["category"],
            "direction": row["direction"],
            "parameter": row["parameter"],
            "status": row["status"],
            "position": row["row_number"] - 1,
        }
        for row in synthetic_rows(n_rows, templates, seed=seed)
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    from nrr_stats.models.fit import DEFAULT_DRAWS
    from nrr_stats.models.session_sample import MAX_FIT_SESSIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--draws", type=int, default=DEFAULT_DRAWS)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--max-sessions", type=int, default=MAX_FIT_SESSIONS)
    parser.add_argument("--bank", type=Path, help="read the largest size from this bank")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from make_synthetic_bank import dev_descriptions, parsed_templates

    from nrr_stats.models.data import cell_counts
    from nrr_stats.models.fit import fit_hierarchy

    templates = parsed_templates(dev_descriptions())
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{args.chains} chains x {args.draws} draws (tune {max(args.draws, 500)}), at most "
        f"{args.max_sessions} sessions per fit; wall and CPU seconds, reading included"
    )
    header = (
        f"{'experiments':>11s} {'sessions':>8s} {'leaves':>7s} {'fitted':>6s} {'fit leaves':>10s} "
        f"{'wall s':>7s} {'CPU s':>7s} {'x first':>7s} {'R-hat max':>9s} {'ESS bulk':>8s} "
        f"{'ESS tail':>8s} {'div':>4s} passed"
    )
    print(header)
    first = None
    for size in sizes:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        if args.bank is not None and size == max(sizes):
            from nrr_stats.bank import open_bank

            with open_bank(args.bank, create=False) as bank:
                table = bank.experiment_table()
        else:
            table = synthetic_table(size, templates, seed=size)
        read_wall, read_cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        result = fit_hierarchy(
            table,
            draws=args.draws,
            chains=args.chains,
            seed=1,
            progress=False,
            max_sessions=args.max_sessions,
        )
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        first = first or cpu
        sample = result.posterior.meta["session_sample"]
        d = result.diagnostics
        print(
            f"{len(table):>11d} {sample['sessions']:>8d} {len(cell_counts(table, 'leaf')):>7d} "
            f"{sample['sessions_fitted']:>6d} {len(result.posterior.seen['trials']):>10d} "
            f"{wall:>7.0f} {cpu:>7.0f} {cpu / first:>7.2f} {d['max_rhat']:>9.3f} "
            f"{d['min_ess_bulk']:>8.0f} {d['min_ess_tail']:>8.0f} {d['divergences']:>4d} "
            f"{d['passed']}",
            flush=True,
        )
        print(
            f"{'':>11s} (reading {read_wall:.1f} s wall / {read_cpu:.1f} s CPU; compile "
            f"{result.timings['compile_s']:.0f} s, sample {result.timings['sample_s']:.0f} s wall;"
            f" {'; '.join(d['failures']) or 'diagnostics pass'})",
            flush=True,
        )


if __name__ == "__main__":
    main()
