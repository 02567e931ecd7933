"""The dev backtest with fold priors fitted on every training session vs on a hash sample of K.

Usage: python benchmarks/bounded_fit_backtest.py [--max-sessions 20] [--draws 500] [--chains 2]
                                                 [--folds 0,1] [--out DIR]
For each chosen fold of the dev corpus (the folds of `nrr backtest`), two priors are fitted on
the other folds' logs with the same settings: one on all their sessions, one on the bounded
fit's sample (models/session_sample.py, --max-sessions). Each of the fold's logs is then walked
with the cell engine (its P(keep), default dynamics and curator weights) under each prior, and
log loss and ECE are printed with 90% intervals from 1,000 bootstrap resamples of logs, and
their paired difference (bounded - all). Fitted priors are kept in --out and reused.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs" / "dev"


def fold_priors(paths, assignment, folds, max_sessions, draws, chains, out: Path) -> dict:
    from nrr_stats.models.fit import fit_hierarchy
    from nrr_stats.models.population import load_prior, read_training_logs, save_prior, shipped_form

    priors = {}
    for fold in folds:
        for variant, bound in (("all", None), ("bounded", max_sessions)):
            target = out / f"fold{fold}-{variant}-k{max_sessions}-d{draws}c{chains}.npz"
            if not target.exists():
                table, logs = read_training_logs([p for p in paths if assignment[p.name] != fold])
                wall, cpu = time.perf_counter(), time.process_time()
                result = fit_hierarchy(
                    table,
                    draws=draws,
                    chains=chains,
                    seed=0,
                    progress=False,
                    max_sessions=bound,
                )
                sample, d = result.posterior.meta["session_sample"], result.diagnostics
                print(
                    f"fold {fold} {variant}: {sample['sessions_fitted']} of {sample['sessions']}"
                    f" sessions, {sample['experiments_fitted']} experiments; wall"
                    f" {time.perf_counter() - wall:.0f} s, CPU {time.process_time() - cpu:.0f} s;"
                    f" R-hat {d['max_rhat']:.3f}, ESS {d['min_ess_bulk']:.0f} /"
                    f" {d['min_ess_tail']:.0f}, divergences {d['divergences']}",
                    flush=True,
                )
                save_prior(shipped_form(result.posterior, logs), target)
            priors[(fold, variant)] = load_prior(target)
    return priors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-sessions", type=int, default=20)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--folds", default="0,1")
    parser.add_argument("--out", type=Path, default=Path("bounded-fit-backtest"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from nrr_stats.backtest.metrics import expected_calibration_error, log_loss
    from nrr_stats.backtest.walk import default_options, walk_log
    from nrr_stats.models.population import fold_assignment, load_population_prior

    args.out.mkdir(parents=True, exist_ok=True)
    folds = [int(f) for f in args.folds.split(",")]
    pairs = [tuple(p) for p in load_population_prior().meta["training_logs"]]
    assignment = fold_assignment(pairs)
    paths = sorted(p for p in DEV.glob("*.tsv") if p.name != "MANIFEST.tsv")
    paths = [p for p in paths if p.name in assignment]
    priors = fold_priors(
        paths, assignment, folds, args.max_sessions, args.draws, args.chains, args.out
    )
    options = default_options(evidence=False)
    rows = {}
    for variant in ("all", "bounded"):
        rows[variant] = [
            (i, row.p_keep, row.y)
            for i, path in enumerate(paths)
            if assignment[path.name] in folds
            for row in walk_log(path, priors[(assignment[path.name], variant)], options).rows
        ]
    a, b = np.array(rows["all"]), np.array(rows["bounded"])
    logs, y = a[:, 0].astype(int), a[:, 2].astype(int)
    groups = [np.flatnonzero(logs == g) for g in np.unique(logs)]

    def scores(index):
        return {
            name: (
                log_loss(p[index, 1], y[index]),
                expected_calibration_error(p[index, 1], y[index]),
            )
            for name, p in (("all", a), ("bounded", b))
        }

    point = scores(np.arange(len(y)))
    rng = np.random.default_rng(0)
    boot = [
        scores(np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))]))
        for _ in range(1000)
    ]

    def interval(values):
        low, high = np.quantile(values, [0.05, 0.95])
        return f"[{low:.4f}, {high:.4f}]"

    print(f"{len(y)} rows of {len(groups)} logs (folds {args.folds}); 90% intervals over logs")
    for name in ("all", "bounded"):
        print(
            f"{name:8s} log loss {point[name][0]:.4f} {interval([s[name][0] for s in boot])}"
            f"  ECE {point[name][1]:.4f} {interval([s[name][1] for s in boot])}"
        )
    for j, metric in enumerate(("log loss", "ECE")):
        diff = [s["bounded"][j] - s["all"][j] for s in boot]
        print(
            f"bounded - all, {metric}: {point['bounded'][j] - point['all'][j]:+.4f} "
            f"{interval(diff)}"
        )


if __name__ == "__main__":
    main()
