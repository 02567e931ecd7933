"""`nrr doctor`: where the bank, the prior, the fit and the caches are, and whether each is usable."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _item(name: str, where: Any, usable: bool | None, detail: str) -> dict[str, Any]:
    """One line of the diagnosis; usable None means "absent, and that is fine"."""
    status = "ok" if usable else ("absent" if usable is None else "problem")
    return {"item": name, "where": str(where), "status": status, "detail": detail}


def diagnose(bank_url: str | None = None) -> list[dict[str, Any]]:
    """Check every file nrr-stats reads at run time (never creates or changes one)."""
    import nrr_stats
    from nrr_stats.bank import resolve_bank
    from nrr_stats.errors import NrrInputError

    items = [
        _item(
            "package", Path(nrr_stats.__file__).parent, True, f"nrr-stats {nrr_stats.__version__}"
        )
    ]
    items += _package_data()
    location = resolve_bank(bank_url)
    try:
        from nrr_stats.bank import open_bank

        with open_bank(bank_url, create=False) as bank:
            detail = (
                f"{location.backend}, schema v{bank.schema_version()}, "
                f"{bank.count_sessions()} sessions, {bank.count_experiments()} rows"
            )
            items.append(_item("bank", location.display, True, detail))
            items += _beside_bank(bank)
    except NrrInputError as error:
        items.append(_item("bank", location.display, False, error.one_line()))
    items.append(_cache_dir())
    return items


def _package_data() -> list[dict[str, Any]]:
    from importlib import resources

    from nrr_stats.models.population import load_prior, population_prior_path

    out = []
    for package, name in (
        ("nrr_stats.parser", "rules.toml"),
        ("nrr_stats.curator", "weights.toml"),
        ("nrr_stats", "data/seed_results.tsv"),
    ):
        target = resources.files(package).joinpath(name)
        out.append(_item(name.rsplit("/", 1)[-1], target, target.is_file(), "package data"))
    path = population_prior_path()
    override = " ($NRR_POPULATION_PRIOR)" if os.environ.get("NRR_POPULATION_PRIOR") else ""
    if path is None:
        out.append(
            _item(
                "population prior",
                os.environ.get("NRR_POPULATION_PRIOR") or "nrr_stats/models_data",
                False,
                "missing: answers fall back to the conjugate form" + override,
            )
        )
    else:
        try:
            prior = load_prior(path)
            draws = len(next(iter(prior.draws.values())))
            out.append(_item("population prior", path, True, f"{draws} draws{override}"))
        except Exception as error:  # any unreadable file is a diagnosis, not a crash
            out.append(_item("population prior", path, False, f"unreadable: {error}"))
    return out


def _beside_bank(bank: Any) -> list[dict[str, Any]]:
    from nrr_stats.bank.fits import fit_store

    out = _fits(fit_store(bank))
    for name, path, what in (
        ("evidence sums", bank.evidence_path, "saved sums of a large bank"),
        ("similarity store", bank.features_path, "feature rows of the similarity search"),
    ):
        exists = Path(path).exists()
        out.append(
            _item(
                name,
                path,
                (os.access(path, os.R_OK | os.W_OK) if exists else None),
                what if exists else f"absent ({what}: made when needed)",
            )
        )
    return out


def _fits(store: Any) -> list[dict[str, Any]]:
    """The fit checks answer from and a failed one stored after it (bank/fits.py). A bank's
    fit is described from its row, with whether this machine's cache holds it verified (doctor
    fetches nothing); a fit beside a SQLite bank is loaded, as a check would."""
    from nrr_stats.models.posterior import file_sha256

    out = []
    fit = store.newest_passing()
    if fit is None:
        out.append(
            _item(
                "fit",
                store.describe(),
                None,
                "none yet: checks use the population prior (`nrr fit`)",
            )
        )
    elif fit.sha256 is not None:
        cached = store.cache_dir / f"{fit.sha256}.npz"
        state = (
            "verified" if file_sha256(cached) == fit.sha256 else "absent: fetched by the next check"
        )
        out.append(
            _item(
                "fit",
                fit.where,
                True,
                f"fitted {fit.meta['created_at']} on {fit.meta['n_experiments']} experiments,"
                f" sha256 {fit.sha256}, {fit.meta['npz_bytes']} bytes; cached copy {state}"
                f" ({cached})",
            )
        )
    else:
        try:
            posterior = store.load(fit)
            out.append(
                _item(
                    "fit",
                    fit.where,
                    True,
                    f"fitted {posterior.meta.get('created_at', '?')} on"
                    f" {posterior.meta.get('n_experiments', '?')} experiments",
                )
            )
        except Exception as error:
            out.append(_item("fit", fit.where, False, f"unreadable, checks ignore it: {error}"))
    failed = store.newest_failed()
    if failed is not None:
        out.append(_item("failed fit", failed.where, None, "kept apart, never answers"))
    return out


def _cache_dir() -> dict[str, Any]:
    from nrr_stats.models.population import default_cache_dir

    path = default_cache_dir()
    if not path.exists():
        return _item(
            "cache", path, None, "absent (fold priors of `nrr backtest`: made when needed)"
        )
    return _item("cache", path, os.access(path, os.W_OK), "fold priors of `nrr backtest`")
