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
    target_accept: float = typer.Option(
        0.9, "--target-accept", help="NUTS target acceptance; higher (0.95, 0.99) for divergences."
    ),
    retries: int = typer.Option(
        2, "--retries", help="Retries of a fit that fails its diagnostics, each with its remedy."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the sampler."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show sampling progress."),
) -> None:
    """Fit the hierarchical Beta-Binomial on the bank and store the posterior.

    A SQLite bank keeps the fit in files beside it; a PostgreSQL bank stores it in the bank
    (every machine's checks then use it). A fit that fails its diagnostics (R-hat <= 1.01,
    ESS >= 400, no divergences) is retried with more draws and warm-up, or a higher
    target_accept after divergences (at most --retries times, each said on stderr). Exits 1
    when the last try still fails: it is stored marked, its failing quantities and the
    remedy are said, and `nrr check` keeps the last good fit.

    Example: nrr fit --draws 1000 --chains 4
    """
    import warnings

    from nrr_stats.bank import open_bank
    from nrr_stats.bank.fits import fit_store
    from nrr_stats.models.fit import fit_and_store, remedy

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*BLAS.*")  # PyTensor's pip-install notice

    def say_retry(failed, following) -> None:
        print(
            f"nrr: the fit ({failed.settings()}) failed its diagnostics"
            f" ({'; '.join(failed.failures)}); retrying with {following.settings()}",
            file=sys.stderr,
            flush=True,
        )

    with open_bank(bank, create=False) as opened:
        with opened.snapshot():  # the table and the evidence state it is, read at one moment
            state = opened.evidence_state()
            table = opened.experiment_table()
        if progress and sys.stderr.isatty():  # a terminal: say what the first half-minute is
            print(
                f"nrr: fitting {len(table)} experiments with {sampler}: compiling the model first"
                " (about half a minute), then sampling (progress below)",
                file=sys.stderr,
                flush=True,
            )
        result, stored = fit_and_store(
            table,
            fit_store(opened),
            evidence_state=state,
            sampler=sampler,
            draws=draws,
            chains=chains,
            seed=seed,
            progress=progress,
            tune=tune,
            target_accept=target_accept,
            retries=retries,
            on_retry=say_retry,
        )
    d = result.diagnostics
    attempts = result.posterior.meta["attempts"]
    tries = f" (try {len(attempts)} of {retries + 1})" if len(attempts) > 1 else ""
    print(
        f"fitted {len(table)} experiments ({len(result.posterior.seen['trials'])} groups) with "
        f"{sampler}: {d['chains']} chains x {d['draws']} draws in {result.timings['total_s']:.1f} s "
        f"(compile {result.timings['compile_s']:.1f} s){tries}"
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
    print(f"stored: {stored.where}" + (f" (sha256 {stored.sha256})" if stored.sha256 else ""))
    if not result.passed:
        from nrr_stats.models.fit import Attempt

        last = Attempt(**{**attempts[-1], "failures": tuple(attempts[-1]["failures"])})
        print(
            f"nrr: the fit failed its diagnostics after {len(attempts)} tries (last:"
            f" {last.settings()}): {'; '.join(d['failures'])}. It is stored marked as failed and"
            " `nrr check` keeps the last good fit (or the population prior). Remedy: run"
            f" `{remedy(last, d)}`.",
            file=sys.stderr,
        )
        raise typer.Exit(EXIT_FIT_FAILED)
