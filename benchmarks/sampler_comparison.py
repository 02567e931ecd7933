"""nutpie against PyMC's default NUTS on the hierarchy, compile time included.

Usage: python benchmarks/sampler_comparison.py [--bank URL] [--draws N] [--chains N] [--seed N]
Without --bank it fits a synthetic table shaped like the dev corpus (67 sessions, ~4.3k rows).
Prints per sampler: compile, sampling and total seconds, min bulk ESS per second, diagnostics,
and the ratio of total times (the baseline is pm.sample, measured in the same run).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def dev_table(bank: str | None, seed: int):
    if bank:
        from nrr_stats.bank import open_bank

        with open_bank(bank, create=False) as opened:
            return opened.experiment_table(), f"bank {bank}"
    from nrr_stats.models.simulate import dev_like_design, draw_truth, simulate_table

    rng = np.random.default_rng(seed)
    design = dev_like_design(rng)
    return simulate_table(rng, design, draw_truth(rng, design)), "synthetic dev-like table"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", default=None)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--samplers", default="nutpie,pymc")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("pymc").setLevel(logging.ERROR)
    from nrr_stats.models.fit import fit_hierarchy, model_data

    table, source = dev_table(args.bank, args.seed)
    data = model_data(table)
    print(
        f"data: {source}: {len(table)} experiments, {len(data.keeps_w)} leaves, "
        f"{len(data.cells)} cells, {len(data.parameters)} parameters, {len(data.sessions)} sessions"
    )
    print(f"{args.chains} chains x {args.draws} draws, tune {max(args.draws, 500)}")
    totals = {}
    for sampler in args.samplers.split(","):
        result = fit_hierarchy(
            table,
            sampler=sampler,
            draws=args.draws,
            chains=args.chains,
            seed=args.seed,
            progress=False,
        )
        t, d = result.timings, result.diagnostics
        totals[sampler] = t["total_s"]
        print(
            f"{sampler:7s} compile {t['compile_s']:6.1f} s  sample {t['sample_s']:6.1f} s  "
            f"total {t['total_s']:6.1f} s  min bulk ESS {d['min_ess_bulk']:6.0f} "
            f"({d['min_ess_bulk'] / t['total_s']:.1f}/s)  max R-hat {d['max_rhat']:.3f}  "
            f"divergences {d['divergences']}  passed {d['passed']}"
        )
    if "pymc" in totals and "nutpie" in totals:
        print(f"nutpie total / pm.sample total = {totals['nutpie'] / totals['pymc']:.2f}")


if __name__ == "__main__":
    main()
