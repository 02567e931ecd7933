"""Refit the shipped population prior on the dev corpus and write `models/population_prior.npz`.

Usage: python benchmarks/fit_population_prior.py [DEV_DIR] [--folds] [--out FILE]
  --folds  also fit (and cache) the K-fold priors the dev backtest uses.
Prints the corpus counts, fit diagnostics and wall times; models/README.md quotes them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nrr_stats.models.population import (
    DEFAULT_FOLDS,
    PRIOR_FILE,
    fit_population_prior,
    fold_assignment,
    fold_prior,
    repo_models_dir,
    save_prior,
    write_model_card_facts,
)

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared/data/autoresearch-logs/dev"


def dev_logs(directory: Path) -> list[Path]:
    """Every results log of the dev folder (the manifest is not a log)."""
    return sorted(p for p in directory.glob("*.tsv") if p.name != "MANIFEST.tsv")


def main(argv: list[str]) -> int:
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else None
    args = [a for i, a in enumerate(argv) if not a.startswith("--") and argv[i - 1] != "--out"]
    directory = Path(args[0]) if args else DEFAULT_DEV
    paths = dev_logs(directory)
    if not paths:
        print(f"no logs in {directory}", file=sys.stderr)
        return 3
    started = time.perf_counter()
    # More draws than `nrr fit`'s default: sigma_param mixes slowly (tail ESS) on this corpus.
    prior, diagnostics = fit_population_prior(paths, draws=2000, tune=1500, progress=False)
    target = save_prior(prior, out or repo_models_dir() / PRIOR_FILE)
    print(write_model_card_facts(prior, diagnostics))
    print(
        f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.1f} s"
    )
    if "--folds" in argv:
        assignment = fold_assignment(prior.meta["training_logs"])
        for fold in range(DEFAULT_FOLDS):
            t0 = time.perf_counter()
            fitted = fold_prior(paths, fold, assignment=assignment)
            d = fitted.meta.get("diagnostics", {})
            print(
                f"fold {fold}: {fitted.meta['n_logs']} logs, {fitted.meta['n_rows']} rows,"
                f" max R-hat {d.get('max_rhat', float('nan')):.3f},"
                f" min bulk ESS {d.get('min_ess_bulk', float('nan')):.0f},"
                f" divergences {d.get('divergences')}, {time.perf_counter() - t0:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
