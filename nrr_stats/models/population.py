"""The population prior: the hierarchy fitted on many autoresearch logs, shipped as package data.

A new bank starts from it. Only the hyperparameters and the category, cell and parameter effects
are shipped; the training sessions' own offsets are dropped (a new session draws its offset from
Normal(0, sigma_sess)), and their keys are listed in the metadata so a backtest can tell whether
a log was seen. K-fold priors (folds by a hash of the file name) serve the dev backtest.
Fitting imports PyMC inside functions; loading needs numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrr_stats.models.data import ExperimentTable
from nrr_stats.models.posterior import (
    SEEN_COLUMNS,
    SEEN_COUNTS,
    StoredPosterior,
    load_posterior,
)
from nrr_stats.package_data import package_file

PRIOR_FILE = "population_prior.npz"
PRIOR_VERSION = "population-1"
SHIPPED_DRAWS = 1000
DEFAULT_FOLDS = 5
SESSION_EFFECTS = ("u_sess", "crash_u_sess")


@functools.lru_cache(maxsize=1)
def repo_models_dir() -> Path:
    """The shipped model files: package data `nrr_stats/models_data` (so an installed wheel
    has them; the checkout's `models/` links here). Found once per process (every check asks)."""
    return package_file("nrr_stats", "models_data")


def default_cache_dir() -> Path:
    """Where fold priors are cached (never committed): $NRR_CACHE_DIR or ~/.cache/nrr-stats."""
    root = os.environ.get("NRR_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "nrr-stats"


@dataclass(frozen=True)
class TrainingLog:
    """One log of the training corpus: its file name, session key and counts."""

    file: str
    session_key: str
    rows: int
    keeps: int
    discards: int
    crashes: int


def read_training_logs(
    paths: Sequence[str | Path],
) -> tuple[ExperimentTable, list[TrainingLog]]:
    """Read logs into one ExperimentTable (session = the log's session key) and per-log counts."""
    from nrr_stats.bank.ingest import experiment_rows
    from nrr_stats.ingest import read_results_log

    records: list[dict] = []
    logs: list[TrainingLog] = []
    for path in paths:
        log = read_results_log(path)
        rows = experiment_rows(log)
        statuses = [r["status"] for r in rows]
        logs.append(
            TrainingLog(
                file=Path(path).name,
                session_key=log.session_key,
                rows=sum(s in ("keep", "discard", "crash") for s in statuses),
                keeps=statuses.count("keep"),
                discards=statuses.count("discard"),
                crashes=statuses.count("crash"),
            )
        )
        records.extend(
            {
                "session": log.session_key,
                "category": r["category"],
                "direction": r["direction"],
                "parameter": r["parameter"],
                "status": r["status"],
                "weight": r.get("evidence_weight", 1.0),
            }
            for r in rows
        )
    return ExperimentTable.from_records(records), logs


def shipped_form(
    posterior: StoredPosterior, logs: Sequence[TrainingLog], *, draws: int = SHIPPED_DRAWS
) -> StoredPosterior:
    """The prior as shipped: thinned float32 draws without the training sessions' offsets.

    `seen` is empty (a bank's own rows are all new evidence for the prior), and the metadata
    holds the training session keys and files, the corpus counts and its overall keep rate.
    """
    total = posterior.n_draws
    keep = np.linspace(0, total - 1, min(draws, total)).round().astype(int)
    thinned = {
        name: np.asarray(values)[keep].astype(np.float32)
        for name, values in posterior.draws.items()
        if name not in SESSION_EFFECTS
    }
    for name in SESSION_EFFECTS:
        thinned[name] = np.zeros((len(keep), 0), dtype=np.float32)
    rows = sum(log.rows for log in logs)
    keeps = sum(log.keeps for log in logs)
    meta = {
        **{k: v for k, v in posterior.meta.items() if k != "timings"},
        "prior_version": PRIOR_VERSION,
        "kind": "population_prior",
        "n_draws_shipped": int(len(keep)),
        "n_draws_fitted": int(total),
        "training_files": [log.file for log in logs],
        "training_logs": [[log.file, log.session_key] for log in logs],
        "training_session_keys": sorted({log.session_key for log in logs}),
        "n_logs": len(logs),
        "n_rows": rows,
        "n_keeps": keeps,
        "n_crashes": sum(log.crashes for log in logs),
        "constant_keep_rate": keeps / rows if rows else None,
        "model_fingerprint": model_fingerprint(),
    }
    empty_seen = {
        **{name: np.array([], dtype="<U1") for name in SEEN_COLUMNS},
        **{name: np.zeros(0) for name in SEEN_COUNTS},
    }
    # No training session is a session of a bank it will answer for: none is named.
    return dataclasses.replace(
        posterior, draws=thinned, sessions=(), seen=empty_seen, meta=meta, path=None
    )


def save_prior(prior: StoredPosterior, path: str | Path) -> Path:
    """Write the prior as one pickle-free `.npz`, whole, then moved into place. Stored, not
    compressed: float draws barely compress (10%), and inflating them was ~10 ms of every cold
    `nrr check`."""
    path = Path(path)
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        with open(temporary, "wb") as out:
            np.savez(out, **prior.to_npz_arrays())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_prior(path: str | Path) -> StoredPosterior:
    """Read a prior file (draws cast back to float64 for the numpy path)."""
    stored = load_posterior(path)
    draws = {name: np.asarray(v, dtype=np.float64) for name, v in stored.draws.items()}
    return dataclasses.replace(stored, draws=draws)


def population_prior_path(models_dir: str | Path | None = None) -> Path | None:
    """The shipped population prior's file (or the one $NRR_POPULATION_PRIOR names), if present."""
    override = os.environ.get("NRR_POPULATION_PRIOR")
    if models_dir is None and override:
        models_dir = override
    path = Path(models_dir) if models_dir is not None else repo_models_dir()
    path = path / PRIOR_FILE if path.is_dir() or path.suffix != ".npz" else path
    return path if path.is_file() else None


def load_population_prior(models_dir: str | Path | None = None) -> StoredPosterior | None:
    """The shipped population prior (or the file $NRR_POPULATION_PRIOR names), None when absent."""
    path = population_prior_path(models_dir)
    return load_prior(path) if path is not None else None


def fit_population_prior(
    paths: Sequence[str | Path],
    *,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    progress: bool = False,
    tune: int | None = None,
    shipped_draws: int = SHIPPED_DRAWS,
) -> tuple[StoredPosterior, dict]:
    """Fit the hierarchy (PyMC, nutpie) on the logs and return the shipped form and diagnostics."""
    from nrr_stats.models.fit import fit_hierarchy

    table, logs = read_training_logs(paths)
    result = fit_hierarchy(
        table, draws=draws, chains=chains, seed=seed, progress=progress, tune=tune
    )
    prior = shipped_form(result.posterior, logs, draws=shipped_draws)
    prior.meta["timings"] = result.timings
    return prior, result.diagnostics


def fold_of(file_name: str, folds: int = DEFAULT_FOLDS) -> int:
    """The fold of a log: a stable hash of its file name, modulo the number of folds."""
    import hashlib  # on first use: a cold check usually hashes nothing (~2 ms)

    digest = hashlib.sha256(Path(file_name).name.encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % folds


def fold_assignment(logs: Sequence[tuple[str, str]], folds: int = DEFAULT_FOLDS) -> dict[str, int]:
    """Fold per log file from (file, session key) pairs: logs sharing a session key (a fork and
    its parent share their first rows) go together, to the fold of the group's first file name."""
    groups: dict[str, list[str]] = {}
    for file, key in logs:
        groups.setdefault(key, []).append(Path(file).name)
    return {file: fold_of(min(files), folds) for files in groups.values() for file in files}


def fit_settings(*, draws: int, chains: int, seed: int) -> str:
    """What else a fold prior depends on: its sampler settings and the bounded session sample's
    limits (the same logs fitted with other settings are another prior)."""
    from nrr_stats.models.session_sample import MAX_FIT_LEAVES, MAX_FIT_SESSIONS

    return repr(
        {
            "draws": draws,
            "chains": chains,
            "seed": seed,
            "shipped_draws": SHIPPED_DRAWS,
            "max_sessions": MAX_FIT_SESSIONS,
            "max_leaves": MAX_FIT_LEAVES,
        }
    )


def model_fingerprint() -> str:
    """The model's version and hyperpriors: a cached fold prior is reused only for the same model."""
    from nrr_stats.models import fit

    names = sorted(n for n in dir(fit) if n.startswith("PRIOR_"))
    return repr([fit.MODEL_VERSION] + [(n, getattr(fit, n)) for n in names])


def _corpus_hash(paths: Sequence[Path], settings: str = "") -> str:
    """The cache key of a fold prior: model, fit settings and the training logs' bytes."""
    import hashlib

    digest = hashlib.sha256(PRIOR_VERSION.encode())
    digest.update(model_fingerprint().encode())
    digest.update(settings.encode())
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def fold_prior(
    training_paths: Sequence[str | Path],
    fold: int,
    *,
    folds: int = DEFAULT_FOLDS,
    assignment: dict[str, int] | None = None,
    cache_dir: str | Path | None = None,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
) -> StoredPosterior:
    """The prior fitted on the training logs outside `fold` (by `assignment`, file name -> fold;
    default `fold_of`), fitted once and cached by the content of its training logs."""
    paths = [Path(p) for p in training_paths]
    assignment = assignment or {}
    kept = [p for p in paths if assignment.get(p.name, fold_of(p.name, folds)) != fold]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    settings = fit_settings(draws=draws, chains=chains, seed=seed)
    target = cache / f"fold-prior-{_corpus_hash(kept, settings)}-k{folds}-f{fold}.npz"
    if target.is_file():
        return load_prior(target)
    prior, _ = fit_population_prior(kept, draws=draws, chains=chains, seed=seed)
    prior.meta["fold"] = {"fold": fold, "folds": folds}
    save_prior(prior, target)
    return load_prior(target)


def write_model_card_facts(prior: StoredPosterior, diagnostics: dict) -> str:
    """The facts of the model card (counts, version, diagnostics, date) as a JSON string."""
    meta = prior.meta
    return json.dumps(
        {
            "prior_version": meta.get("prior_version"),
            "model_version": meta.get("model_version"),
            "created_at": meta.get("created_at"),
            "n_logs": meta.get("n_logs"),
            "n_rows": meta.get("n_rows"),
            "n_keeps": meta.get("n_keeps"),
            "constant_keep_rate": meta.get("constant_keep_rate"),
            "diagnostics": diagnostics,
        },
        indent=2,
    )
