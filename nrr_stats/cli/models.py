"""`nrr fit`: fit the hierarchical model on the bank and store its posterior."""

from __future__ import annotations

import sys

import typer

from nrr_stats.cli.app import BankOption, app

EXIT_FIT_FAILED = 1


@app.command()
def fit(
    bank: str = BankOption,
    sampler: str = typer.Option("nutpie", "--sampler", help="nutpie (default, faster) or pymc."),
    draws: int = typer.Option(1500, "--draws", help="Posterior draws per chain."),
    chains: int = typer.Option(4, "--chains", help="Independent chains (R-hat needs at least 2)."),
    tune: int = typer.Option(
        None, "--tune", help="Warm-up steps per chain; default max(draws, 500)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the sampler."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show sampling progress."),
) -> None:
    """Fit the hierarchical Beta-Binomial on the bank and store the posterior beside it.

    Exits 1 when the fit fails its diagnostics (R-hat <= 1.01, ESS >= 400, no divergences):
    the failed fit is stored marked, and `nrr check` keeps the last good fit.

    Example: nrr fit --draws 1000 --chains 4
    """
    import warnings

    from nrr_stats.bank import open_bank
    from nrr_stats.models.fit import fit_and_store

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*BLAS.*")  # PyTensor's pip-install notice
    with open_bank(bank, create=False) as opened:
        table = opened.experiment_table()
        target = opened.posterior_path
    if progress and sys.stderr.isatty():  # a terminal: say what the first half-minute is
        print(
            f"nrr: fitting {len(table)} experiments with {sampler}: compiling the model first"
            " (about half a minute), then sampling (progress below)",
            file=sys.stderr,
            flush=True,
        )
    result, stored = fit_and_store(
        table,
        target,
        sampler=sampler,
        draws=draws,
        chains=chains,
        seed=seed,
        progress=progress,
        tune=tune,
    )
    d = result.diagnostics
    print(
        f"fitted {len(table)} experiments ({len(result.posterior.seen['trials'])} groups) with "
        f"{sampler}: {d['chains']} chains x {d['draws']} draws in {result.timings['total_s']:.1f} s "
        f"(compile {result.timings['compile_s']:.1f} s)"
    )
    sample = result.posterior.meta.get("session_sample") or {}
    if sample.get("sessions_fitted", 0) < sample.get("sessions", 0):
        print(
            f"sampled {sample['sessions_fitted']} of {sample['sessions']} sessions by hash "
            f"({sample['experiments_fitted']} experiments); every session is answered from its "
            "own rows on the session grid"
        )
    print(
        f"diagnostics: max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
        f"min tail ESS {d['min_ess_tail']:.0f}, divergences {d['divergences']}"
    )
    print(f"stored: {stored}")
    if not result.passed:
        print(
            f"nrr: the fit failed its diagnostics ({'; '.join(d['failures'])}); it is stored marked "
            f"as failed and `nrr check` keeps the last good fit (or the conjugate form). Run "
            f"`nrr fit --draws {2 * draws} --tune {2 * (tune or max(draws, 500))}` to try again.",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_FIT_FAILED)
