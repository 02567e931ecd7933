"""Simulation-based calibration of the hierarchy (EVALUATION.md; Talts et al. 2018).

Usage: python benchmarks/sbc.py [--sims 100] [--draws 500] [--chains 2] [--seed 0]
                                [--max-sessions K]
On a fixed small dev-like design (sessions, cells, parameters and trials per group), each
simulation draws hyperparameters and rates from the model's prior, draws counts, fits with
nutpie (one compiled model, new data per simulation), and ranks the true global rate, a category
rate and a cell rate among the posterior draws. Prints chi-square p-values of rank uniformity
(10 bins) and the coverage of the central 50% and 90% intervals, with binomial standard errors.
With --max-sessions K the fit is the bounded one of `nrr fit` (models/session_sample.py): counts
are drawn for every session of the design, the fit sees only the K sessions of the hash sample.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def design_table(seed: int, n_experiments: int):
    """A dev-like table of about `n_experiments` rows (its counts are replaced per simulation)."""
    from nrr_stats.models.simulate import dev_like_design, draw_truth, simulate_table

    rng = np.random.default_rng(seed)
    design = dev_like_design(rng, n_experiments=n_experiments)
    return simulate_table(rng, design, draw_truth(rng, design))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-sessions", type=int, default=None, help="bound the fit's sessions")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from nrr_stats.models.calibration import QUANTITIES, restrict_sessions, run_sbc
    from nrr_stats.models.fit import build_model, compile_model, model_data
    from nrr_stats.models.session_sample import sample_sessions

    data = model_data(design_table(args.seed, args.experiments))
    print(
        f"design: {data.n_experiments} experiments, {len(data.keeps_w)} leaves, "
        f"{len(data.categories)} categories, {len(data.cells)} cells, "
        f"{len(data.parameters)} parameters, {len(data.sessions)} sessions"
    )
    fitted = restrict_sessions(data, set(sample_sessions(data.sessions, args.max_sessions)))
    print(
        f"fit on {len(fitted.sessions)} sessions ({len(fitted.keeps_w)} leaves, "
        f"{int(fitted.trials_w.sum())} experiments; --max-sessions {args.max_sessions})"
    )
    started = time.perf_counter()
    compiled = compile_model(build_model(fitted))
    print(f"compiled in {time.perf_counter() - started:.1f} s")

    def report(sim, result):
        if (sim + 1) % 10 == 0:
            print(f"  {sim + 1} simulations, {time.perf_counter() - started:.0f} s", flush=True)

    result = run_sbc(
        data,
        args.sims,
        seed=args.seed,
        draws=args.draws,
        chains=args.chains,
        tune=args.tune,
        compiled=compiled,
        on_sim=report,
        max_sessions=args.max_sessions,
    )
    n = args.sims
    pvalues = result.uniformity_pvalues()
    cover50, cover90 = result.coverage(50), result.coverage(90)
    print(f"{n} simulations, {args.chains} chains x {args.draws} draws, ranks out of 99 draws")
    print(f"{'quantity':14s} {'rank p (chi2)':>13s} {'50% coverage':>16s} {'90% coverage':>16s}")
    for q in QUANTITIES:
        se50 = np.sqrt(0.25 / n)
        se90 = np.sqrt(0.09 / n)
        print(
            f"{q:14s} {pvalues[q]:13.3f} {cover50[q]:10.2f} ±{se50:.2f} {cover90[q]:10.2f} ±{se90:.2f}"
        )
    cpu = time.process_time()
    print(
        f"fits failing diagnostics: {result.failed_diagnostics}/{n}; "
        f"fits with divergences: {result.divergent_fits}/{n}; "
        f"wall time {time.perf_counter() - started:.0f} s, CPU time {cpu:.0f} s"
    )


if __name__ == "__main__":
    main()
