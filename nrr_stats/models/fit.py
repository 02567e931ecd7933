"""Fit the hierarchical Beta-Binomial (MODEL.md) with PyMC, diagnose it, and store it.

Heavy: imports PyMC, PyTensor and ArviZ inside functions. `nrr check` never imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nrr_stats.errors import NrrInputError
from nrr_stats.files import fsync_directory, locked, remove_stale
from nrr_stats.models.data import ExperimentTable, cell_counts, table_hash
from nrr_stats.models.posterior import (
    CRASH_DRAWS,
    CRASH_EFFECTS,
    KEEP_DRAWS,
    KEEP_EFFECTS,
    MODEL_VERSION,
    SEEN_COLUMNS,
    SEEN_COUNTS,
    StoredPosterior,
    file_sha256,
    netcdf_path_for,
    npz_path_for,
)
from nrr_stats.models.session_sample import MAX_FIT_LEAVES, MAX_FIT_SESSIONS, bounded_table

# Hyperpriors (the model card, MODEL.md, states and motivates them).
PRIOR_ALPHA = (-1.0, 1.5)  # Normal(mean, sd) of the global logit keep rate: centre 27%
PRIOR_CRASH_ALPHA = (-3.0, 1.5)  # Normal of the global logit crash rate: centre 5%
PRIOR_SIGMA = 1.0  # HalfNormal scale of every between-group sd on the logit scale
PRIOR_LOG_NU = (np.log(20.0), 1.0)  # Normal(mean, sd) of log leaf concentration
# Gamma(shape, rate) of the parameter-level sd (None: HalfNormal(PRIOR_SIGMA)). Zero-avoiding:
# parameter effects and leaf over-dispersion (nu) explain the same variation, and under a
# HalfNormal chains stuck in the sigma_param -> 0 neck (dev bank: R-hat 1.02, tail ESS 98).
PRIOR_SIGMA_PARAM: tuple[float, float] | None = (2.0, 2.0)
DEFAULT_DRAWS = 1500


def draw_sigma_param(rng: np.random.Generator) -> float:
    """One draw of the parameter-level sd from its prior (for simulations from the model)."""
    if PRIOR_SIGMA_PARAM is None:
        return float(abs(rng.normal(0.0, PRIOR_SIGMA)))
    shape, rate = PRIOR_SIGMA_PARAM
    return float(rng.gamma(shape, 1.0 / rate))


# Diagnostic thresholds of issue 3.
MAX_RHAT = 1.01
MIN_ESS = 400


@dataclass(frozen=True)
class ModelData:
    """Leaf-level sufficient statistics with integer codes for every level of the hierarchy."""

    categories: tuple[str, ...]
    cells: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str, str], ...]  # named parameters only
    sessions: tuple[str, ...]
    leaf_category: np.ndarray
    leaf_cell: np.ndarray
    leaf_param: np.ndarray  # index into parameters, or len(parameters) for "no parameter"
    leaf_session: np.ndarray
    keeps_w: np.ndarray
    trials_w: np.ndarray
    crash_category: np.ndarray  # crash leaves: (session, category) pairs
    crash_session: np.ndarray
    crashes_w: np.ndarray
    crash_trials_w: np.ndarray
    seen: dict[str, np.ndarray]
    n_experiments: int
    data_hash: str


def model_data(table: ExperimentTable) -> ModelData:
    """Sufficient statistics of a table, coded for the model: the fit's cost grows with leaves."""
    if len(table) == 0:
        raise NrrInputError("the bank holds no keep/discard/crash experiments to fit")
    leaves = cell_counts(table, "leaf")
    sess, cat, dirn, par = (leaves.keys[name].astype(str) for name in SEEN_COLUMNS)
    categories = tuple(sorted(set(cat.tolist())))
    cells = tuple(sorted(set(zip(cat.tolist(), dirn.tolist(), strict=True))))
    parameters = tuple(
        sorted(
            {
                (c, d, p)
                for c, d, p in zip(cat.tolist(), dirn.tolist(), par.tolist(), strict=True)
                if p
            }
        )
    )
    sessions = tuple(sorted(set(sess.tolist())))
    cat_code = {c: i for i, c in enumerate(categories)}
    cell_code = {c: i for i, c in enumerate(cells)}
    param_code = {p: i for i, p in enumerate(parameters)}
    sess_code = {s: i for i, s in enumerate(sessions)}
    pairs = cell_counts(table, "session_category")
    return ModelData(
        categories=categories,
        cells=cells,
        parameters=parameters,
        sessions=sessions,
        leaf_category=np.array([cat_code[c] for c in cat], dtype=np.int64),
        leaf_cell=np.array(
            [cell_code[(c, d)] for c, d in zip(cat, dirn, strict=True)], dtype=np.int64
        ),
        leaf_param=np.array(
            [
                param_code.get((c, d, p), len(parameters))
                for c, d, p in zip(cat, dirn, par, strict=True)
            ],
            dtype=np.int64,
        ),
        leaf_session=np.array([sess_code[s] for s in sess], dtype=np.int64),
        keeps_w=leaves.keeps_w,
        trials_w=leaves.trials_w,
        crash_category=np.array([cat_code[c] for c in pairs.keys["category"]], dtype=np.int64),
        crash_session=np.array([sess_code[s] for s in pairs.keys["session"]], dtype=np.int64),
        crashes_w=pairs.crashes_w,
        crash_trials_w=pairs.trials_w,
        seen={
            **{name: leaves.keys[name].astype(str) for name in SEEN_COLUMNS},
            **{name: getattr(leaves, name) for name in SEEN_COUNTS},
        },
        n_experiments=len(table),
        data_hash=table_hash(table),
    )


def counts_of(data: ModelData) -> dict[str, np.ndarray]:
    """The replaceable data of the model (pm.Data names to arrays)."""
    return {
        "keeps_w": data.keeps_w,
        "trials_w": data.trials_w,
        "crashes_w": data.crashes_w,
        "crash_trials_w": data.crash_trials_w,
    }


def build_model(data: ModelData) -> Any:
    """The PyMC model of MODEL.md: non-centred logit-normal levels, Beta-Binomial leaves."""
    import pymc as pm
    import pytensor.tensor as pt

    coords = {
        "category": list(data.categories),
        "cell": [f"{c}/{d}" for c, d in data.cells],
        # One unused slot when no parameter was named keeps every shape non-empty.
        "parameter": [f"{c}/{d}/{p}" for c, d, p in data.parameters] or ["(none)"],
        "session": list(data.sessions),
    }

    def betaln(x, y):
        return pt.gammaln(x) + pt.gammaln(y) - pt.gammaln(x + y)

    with pm.Model(coords=coords) as model:
        keeps_w = pm.Data("keeps_w", data.keeps_w)
        trials_w = pm.Data("trials_w", data.trials_w)
        crashes_w = pm.Data("crashes_w", data.crashes_w)
        crash_trials_w = pm.Data("crash_trials_w", data.crash_trials_w)

        alpha = pm.Normal("alpha", *PRIOR_ALPHA)
        sigma = {
            level: pm.HalfNormal(f"sigma_{level}", PRIOR_SIGMA) for level in ("cat", "cell", "sess")
        }
        if PRIOR_SIGMA_PARAM is None:
            sigma["param"] = pm.HalfNormal("sigma_param", PRIOR_SIGMA)
        else:
            sigma["param"] = pm.Gamma(
                "sigma_param", alpha=PRIOR_SIGMA_PARAM[0], beta=PRIOR_SIGMA_PARAM[1]
            )
        a_cat = pm.Deterministic(
            "a_cat", sigma["cat"] * pm.Normal("z_cat", 0.0, 1.0, dims="category"), dims="category"
        )
        b_cell = pm.Deterministic(
            "b_cell", sigma["cell"] * pm.Normal("z_cell", 0.0, 1.0, dims="cell"), dims="cell"
        )
        e_param = pm.Deterministic(
            "e_param",
            sigma["param"] * pm.Normal("z_param", 0.0, 1.0, dims="parameter"),
            dims="parameter",
        )
        u_sess = pm.Deterministic(
            "u_sess", sigma["sess"] * pm.Normal("z_sess", 0.0, 1.0, dims="session"), dims="session"
        )
        e_full = pt.concatenate([e_param[: len(data.parameters)], pt.zeros(1)])
        eta = (
            alpha
            + a_cat[data.leaf_category]
            + b_cell[data.leaf_cell]
            + e_full[data.leaf_param]
            + u_sess[data.leaf_session]
        )
        nu = pm.Deterministic("nu", pt.exp(pm.Normal("log_nu", *PRIOR_LOG_NU)))
        mean = pm.math.sigmoid(eta)
        a, b = mean * nu, (1.0 - mean) * nu
        pm.Potential(
            "keep_likelihood", pt.sum(betaln(a + keeps_w, b + trials_w - keeps_w) - betaln(a, b))
        )

        crash_alpha = pm.Normal("crash_alpha", *PRIOR_CRASH_ALPHA)
        crash_sigma_cat = pm.HalfNormal("crash_sigma_cat", PRIOR_SIGMA)
        crash_sigma_sess = pm.HalfNormal("crash_sigma_sess", PRIOR_SIGMA)
        crash_a_cat = pm.Deterministic(
            "crash_a_cat",
            crash_sigma_cat * pm.Normal("crash_z_cat", 0.0, 1.0, dims="category"),
            dims="category",
        )
        crash_u_sess = pm.Deterministic(
            "crash_u_sess",
            crash_sigma_sess * pm.Normal("crash_z_sess", 0.0, 1.0, dims="session"),
            dims="session",
        )
        crash_nu = pm.Deterministic("crash_nu", pt.exp(pm.Normal("crash_log_nu", *PRIOR_LOG_NU)))
        crash_mean = pm.math.sigmoid(
            crash_alpha + crash_a_cat[data.crash_category] + crash_u_sess[data.crash_session]
        )
        ca, cb = crash_mean * crash_nu, (1.0 - crash_mean) * crash_nu
        pm.Potential(
            "crash_likelihood",
            pt.sum(betaln(ca + crashes_w, cb + crash_trials_w - crashes_w) - betaln(ca, cb)),
        )
    return model


@dataclass
class FitResult:
    """A fitted posterior with its diagnostics; `passed` says whether it may be trusted."""

    posterior: StoredPosterior
    idata: Any
    diagnostics: dict
    passed: bool
    timings: dict = field(default_factory=dict)


FREE_VARIABLES = (
    "alpha",
    "sigma_cat",
    "sigma_cell",
    "sigma_param",
    "sigma_sess",
    "log_nu",
    "z_cat",
    "z_cell",
    "z_param",
    "z_sess",
    "crash_alpha",
    "crash_sigma_cat",
    "crash_sigma_sess",
    "crash_log_nu",
    "crash_z_cat",
    "crash_z_sess",
)


# How many failing quantities a fit's diagnostics name per criterion (worst first).
NAMED_FAILURES = 5


def diagnose(idata: Any) -> dict:
    """R-hat, bulk and tail ESS over every free variable, and the divergence count.

    `failing` names the worst elements past each threshold (e.g. `z_sess[s3]`, with its
    value), and `failures` says each failed criterion in a line a user can act on.
    """
    import arviz as az

    names = [n for n in FREE_VARIABLES if n in idata.posterior]
    rhat = az.rhat(idata, var_names=names)
    bulk = az.ess(idata, var_names=names, method="bulk")
    tail = az.ess(idata, var_names=names, method="tail")

    def extreme(dataset, reducer) -> tuple[float, str]:
        values = {n: float(reducer(np.asarray(dataset[n]))) for n in names}
        worst = reducer(list(values.values()))
        return float(worst), next(n for n, v in values.items() if v == worst)

    max_rhat, rhat_at = extreme(rhat, np.nanmax)
    min_bulk, bulk_at = extreme(bulk, np.nanmin)
    min_tail, tail_at = extreme(tail, np.nanmin)
    divergences = int(np.asarray(idata.sample_stats["diverging"]).sum())
    failing = {
        "r_hat": _elements(rhat, names, lambda v: not v <= MAX_RHAT, reverse=True),
        "ess_bulk": _elements(bulk, names, lambda v: not v >= MIN_ESS, reverse=False),
        "ess_tail": _elements(tail, names, lambda v: not v >= MIN_ESS, reverse=False),
    }
    failures = []
    if not max_rhat <= MAX_RHAT:
        failures.append(f"R-hat > {MAX_RHAT} at {_listed(failing['r_hat'], '.3f')}")
    if not min_bulk >= MIN_ESS:
        failures.append(f"bulk ESS < {MIN_ESS} at {_listed(failing['ess_bulk'], '.0f')}")
    if not min_tail >= MIN_ESS:
        failures.append(f"tail ESS < {MIN_ESS} at {_listed(failing['ess_tail'], '.0f')}")
    if divergences:
        failures.append(f"{divergences} divergent transitions")
    chains = int(idata.posterior.sizes["chain"])
    draws = int(idata.posterior.sizes["draw"])
    return {
        "max_rhat": max_rhat,
        "max_rhat_at": rhat_at,
        "min_ess_bulk": min_bulk,
        "min_ess_bulk_at": bulk_at,
        "min_ess_tail": min_tail,
        "min_ess_tail_at": tail_at,
        "divergences": divergences,
        "chains": chains,
        "draws": draws,
        "failing": failing,
        "failures": failures,
        "passed": not failures,
    }


def _elements(dataset: Any, names: list[str], fails, *, reverse: bool) -> dict:
    """The failing elements of `dataset`'s variables, worst first: {"count": how many fail,
    "worst": [[name, value], ...] at most NAMED_FAILURES}; a vector's elements are named by
    their coordinate (`z_sess[s3]`)."""
    found: list[tuple[str, float]] = []
    for name in names:
        values = dataset[name]
        array = np.asarray(values, dtype=float)
        if array.ndim == 0:
            if fails(float(array)):
                found.append((name, float(array)))
            continue
        labels = [np.asarray(values.coords[dim]).tolist() for dim in values.dims]
        for index, value in np.ndenumerate(array):
            if fails(float(value)):
                label = ",".join(str(labels[axis][i]) for axis, i in enumerate(index))
                found.append((f"{name}[{label}]", float(value)))
    nan_last = float("-inf") if reverse else float("inf")
    found.sort(key=lambda item: nan_last if np.isnan(item[1]) else item[1], reverse=reverse)
    return {"count": len(found), "worst": [[n, v] for n, v in found[:NAMED_FAILURES]]}


def _listed(failing: dict, spec: str) -> str:
    """`z_sess[s3] 1.031, sigma_sess 1.012 (+4 more)`: the worst failing elements, said."""
    shown = ", ".join(f"{name} {value:{spec}}" for name, value in failing["worst"])
    more = failing["count"] - len(failing["worst"])
    return shown + (f" (+{more} more)" if more > 0 else "")


def compile_model(model: Any) -> Any:
    """nutpie's compiled form of a PyMC model, with its data left replaceable (for SBC)."""
    import nutpie

    return nutpie.compile_pymc_model(model, freeze_model=False)


def sample(
    model: Any,
    *,
    sampler: str,
    draws: int,
    chains: int,
    seed: int,
    progress: bool,
    tune: int | None = None,
    compiled: Any = None,
    target_accept: float = 0.9,
) -> tuple[Any, dict]:
    """Draw from the model's posterior with nutpie or PyMC's NUTS; return idata and timings."""
    tune = tune if tune is not None else max(draws, 500)
    started = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        if compiled is None:
            compiled = compile_model(model)
        compiled_at = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress_bar=progress,
            save_warmup=False,
            target_accept=target_accept,
        )
    elif sampler == "pymc":
        import pymc as pm

        compiled_at = started
        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=min(chains, os.cpu_count() or 1),
                random_seed=seed,
                progressbar=progress,
                target_accept=target_accept,
                compute_convergence_checks=False,
            )
    else:
        raise NrrInputError(f"unknown sampler {sampler!r}; choose nutpie or pymc")
    finished = time.perf_counter()
    return idata, {
        "compile_s": compiled_at - started,
        "sample_s": finished - compiled_at,
        "total_s": finished - started,
    }


def _stacked(idata: Any, name: str) -> np.ndarray:
    values = np.asarray(idata.posterior[name])
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:]).astype(np.float64)


def posterior_from_idata(idata: Any, data: ModelData, meta: dict) -> StoredPosterior:
    """The numpy-path view of a fit: flattened draws, level coding and the counts it saw."""
    draws = {
        name: _stacked(idata, name)
        for name in KEEP_DRAWS + KEEP_EFFECTS + CRASH_DRAWS + CRASH_EFFECTS
    }
    draws["e_param"] = draws["e_param"][:, : len(data.parameters)]
    return stored_posterior(draws, data, meta)


def stored_posterior(draws: dict[str, np.ndarray], data: ModelData, meta: dict) -> StoredPosterior:
    """Draws (flattened over chains) with the level coding and seen counts of `data`."""
    return StoredPosterior(
        draws=draws,
        categories=data.categories,
        cells=data.cells,
        parameters=data.parameters,
        sessions=data.sessions,
        seen=dict(data.seen),
        meta=meta,
    )


def fit_hierarchy(
    table: ExperimentTable,
    *,
    sampler: str = "nutpie",
    draws: int = DEFAULT_DRAWS,
    chains: int = 4,
    seed: int = 0,
    progress: bool = True,
    tune: int | None = None,
    compiled: Any = None,
    target_accept: float = 0.9,
    max_sessions: int | None = MAX_FIT_SESSIONS,
    max_leaves: int | None = MAX_FIT_LEAVES,
) -> FitResult:
    """Fit the keep and crash hierarchies on a table's sufficient statistics and diagnose the fit.

    The fit sees at most `max_sessions` sessions holding at most `max_leaves` leaves
    (`session_sample.bounded_table`: taken in the order of a hash of their keys, recorded in the
    meta's `session_sample`), so its cost is bounded however many sessions the bank holds;
    None lifts a bound. Sessions outside the sample are
    answered like any session the fit never saw (their offset integrated on the session grid).
    `compiled` (nutpie only) reuses a model compiled for a table with the same groups; only
    the counts are replaced.
    """
    sampled, sample = bounded_table(table, max_sessions, max_leaves)
    return fit_model_data(
        model_data(sampled),
        sampler=sampler,
        draws=draws,
        chains=chains,
        seed=seed,
        progress=progress,
        tune=tune,
        compiled=compiled,
        target_accept=target_accept,
        session_sample=sample,
    )


def fit_model_data(
    data: ModelData,
    *,
    sampler: str = "nutpie",
    draws: int = DEFAULT_DRAWS,
    chains: int = 4,
    seed: int = 0,
    progress: bool = True,
    tune: int | None = None,
    compiled: Any = None,
    target_accept: float = 0.9,
    session_sample: dict | None = None,
) -> FitResult:
    """`fit_hierarchy` on sufficient statistics already coded for the model (`session_sample`:
    the sample they were drawn from, stored in the meta)."""
    model = None
    if compiled is not None and sampler == "nutpie":
        compiled = compiled.with_data(**counts_of(data))
    else:
        compiled = None
        model = build_model(data)
    idata, timings = sample(
        model,
        sampler=sampler,
        draws=draws,
        chains=chains,
        seed=seed,
        progress=progress,
        tune=tune,
        compiled=compiled,
        target_accept=target_accept,
    )
    diagnostics = diagnose(idata)
    meta = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_version": MODEL_VERSION,
        "n_experiments": data.n_experiments,
        "data_hash": data.data_hash,
        "passed_diagnostics": diagnostics["passed"],
        "diagnostics": diagnostics,
        "sampler": sampler,
        "seed": seed,
        "target_accept": target_accept,
        "timings": timings,
    }
    if session_sample is not None:
        meta["session_sample"] = session_sample
    return FitResult(
        posterior=posterior_from_idata(idata, data, meta),
        idata=idata,
        diagnostics=diagnostics,
        passed=diagnostics["passed"],
        timings=timings,
    )


def save_fit(result: FitResult, path: str | Path) -> Path:
    """Publish the fit at `path` (`x.posterior.nc`) as one unit; return its netCDF's path.

    The ArviZ netCDF goes to `x.posterior.<fit id>.nc` (attrs: metadata and level coding) and
    the compact `.npz` the fast path reads to `x.posterior.npz`, naming that netCDF with its
    sha256. Both are written in a private staging directory (flocked while written); the
    netCDF is moved to its new name (replacing nothing), then the npz is renamed into place:
    that one rename publishes the fit, so a kill at any moment leaves the last fit whole and
    paired. The next save removes a killed fit's staging and every netCDF no fit names.
    """
    npz = npz_path_for(Path(path))
    with _staging_directory(npz) as staging:
        staged_npz, staged_nc = write_fit_files(result, staging, npz.name)
        netcdf = npz.with_name(staged_nc.name)
        with locked(npz.with_name(npz.name + ".lock")):
            os.rename(staged_nc, netcdf)
            os.replace(staged_npz, npz)  # the fit is published here, whole
            fsync_directory(npz.parent)
            remove_unnamed_netcdf(npz)
    return netcdf


def write_fit_files(result: FitResult, directory: Path, npz_name: str) -> tuple[Path, Path]:
    """Write a fit's two files into `directory`, fsynced: the `.npz` a check reads (named
    `npz_name`; its meta names the netCDF, with the netCDF's sha256 and the fit's id) and the
    ArviZ netCDF `<stem>.<fit id>.nc`. Return (npz, netCDF)."""
    posterior = result.posterior
    meta = dict(posterior.meta)
    attrs = {
        "created_at": meta["created_at"],
        "model_version": meta["model_version"],
        "n_experiments": int(meta["n_experiments"]),
        "data_hash": meta["data_hash"],
        "passed_diagnostics": int(bool(meta["passed_diagnostics"])),
        "diagnostics": json.dumps(meta["diagnostics"]),
        "categories": json.dumps(list(posterior.categories)),
        "cells": json.dumps([list(c) for c in posterior.cells]),
        "parameters": json.dumps([list(p) for p in posterior.parameters]),
        "sessions": json.dumps(list(posterior.sessions)),
    }
    idata = result.idata
    idata.posterior.attrs.update(attrs)
    fit_id = secrets.token_hex(8)
    staged_nc = directory / (npz_name.removesuffix(".npz") + f".{fit_id}.nc")
    idata.to_netcdf(str(staged_nc), engine="h5netcdf")
    _fsync_file(staged_nc)
    arrays = posterior.to_npz_arrays()
    arrays["meta"] = np.array(
        json.dumps(
            {
                **meta,
                "fit_id": fit_id,
                "netcdf": staged_nc.name,
                "netcdf_sha256": file_sha256(staged_nc),
            }
        )
    )
    staged_npz = directory / npz_name
    with open(staged_npz, "xb") as handle:
        np.savez(handle, **arrays)
        handle.flush()
        os.fsync(handle.fileno())
    return staged_npz, staged_nc


def remove_unnamed_netcdf(npz: Path) -> None:
    """Remove the netCDFs of `npz`'s stem that its fit does not name (older fits, a fit killed
    before it was published, and the unversioned file of an older nrr-stats)."""
    try:
        named = netcdf_path_for(npz, verify=False) if npz.exists() else None
    except (NrrInputError, ValueError):
        named = None
    stem = npz.name.removesuffix(".npz")
    pattern = re.compile(re.escape(stem) + r"(\.[0-9a-f]{16})?\.nc$")
    for candidate in npz.parent.glob(f"{stem}*.nc"):
        if pattern.fullmatch(candidate.name) and candidate != named:
            candidate.unlink(missing_ok=True)


@contextlib.contextmanager
def _staging_directory(target: Path):
    """A private directory beside `target` for a fit's files, flocked while they are written;
    stale ones (a killed fit's: their flock is free) and older staging files are removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for name in (target, target.with_suffix(".nc")):
        remove_stale(name)
    staging = Path(
        tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".staging")
    )
    fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# `nrr fit` retries a fit that fails its diagnostics at most this many times, each with the
# remedy its failures call for (`retry_settings`), so its cost is bounded: with the default
# two, at most 1 + 2 + 4 = 7 times the first fit's sampling (ESS short by a lot: up to 4x a step).
DEFAULT_RETRIES = 2
MAX_DRAW_FACTOR = 4.0
TARGET_ACCEPT_STEPS = (0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Attempt:
    """The settings of one try of a fit, and what its diagnostics said."""

    draws: int
    tune: int
    target_accept: float
    seed: int
    failures: tuple[str, ...] = ()
    seconds: float = 0.0

    def settings(self) -> str:
        return f"{self.draws} draws, {self.tune} warm-up, target_accept {self.target_accept:g}"


def retry_settings(attempt: Attempt, diagnostics: dict) -> Attempt:
    """The next try after a failed one: more draws and warm-up when R-hat or ESS fell short
    (ESS grows about linearly with draws: enough for MIN_ESS with 20% margin, at least 2x and
    at most MAX_DRAW_FACTOR x), a higher target_accept when transitions diverged."""
    factor = 1.0
    min_ess = min(diagnostics["min_ess_bulk"], diagnostics["min_ess_tail"])
    if not min_ess >= MIN_ESS:
        ratio = 1.2 * MIN_ESS / min_ess if min_ess > 0 else MAX_DRAW_FACTOR
        factor = min(max(ratio, 2.0), MAX_DRAW_FACTOR)
    elif not diagnostics["max_rhat"] <= MAX_RHAT:
        factor = 2.0
    target_accept = attempt.target_accept
    if diagnostics["divergences"]:
        target_accept = next(
            (step for step in TARGET_ACCEPT_STEPS if step > attempt.target_accept), 0.99
        )
        factor = max(factor, 1.5)  # smaller steps mix more slowly
    return Attempt(
        draws=int(np.ceil(attempt.draws * factor)),
        tune=int(np.ceil(attempt.tune * factor)),
        target_accept=max(target_accept, attempt.target_accept),
        seed=attempt.seed + 1,
    )


def remedy(attempt: Attempt, diagnostics: dict) -> str:
    """What to run next for a fit that still fails, as a command line."""
    following = retry_settings(attempt, diagnostics)
    command = f"nrr fit --draws {following.draws} --tune {following.tune}"
    if following.target_accept > attempt.target_accept:
        command += f" --target-accept {following.target_accept:g}"
    return command


def fit_and_store(
    table: ExperimentTable,
    store: Any,
    *,
    evidence_state: tuple[int, int] = (0, 0),
    sampler: str = "nutpie",
    draws: int = DEFAULT_DRAWS,
    chains: int = 4,
    seed: int = 0,
    progress: bool = True,
    tune: int | None = None,
    target_accept: float = 0.9,
    retries: int = DEFAULT_RETRIES,
    compiled: Any = None,
    on_retry: Any = None,
) -> tuple[FitResult, Any]:
    """Fit, retrying a fit that fails its diagnostics (at most `retries` times, each with the
    remedy `retry_settings` picks), and store the last try: a fit that passes becomes the one
    checks answer from; one that still fails is stored marked, and the last good fit stays in use.

    `store` is a FitStore (bank/fits.py; `fit_store(bank)`) or a `.posterior.nc` path (files).
    `on_retry(failed_attempt, next_attempt)` is told before each retry. Every try's settings
    and failures are in the stored fit's `meta["attempts"]`. Returns (result, StoredFit).
    """
    from nrr_stats.bank.fits import FileFitStore, FitStore

    if sampler not in ("nutpie", "pymc"):
        raise NrrInputError(f"unknown sampler {sampler!r}; choose nutpie or pymc")
    if draws < 1 or chains < 1:
        raise NrrInputError("--draws and --chains must be at least 1")
    if not 0.5 <= target_accept < 1.0:
        raise NrrInputError(f"--target-accept must be in [0.5, 1), not {target_accept:g}")
    if retries < 0:
        raise NrrInputError(f"--retries must be 0 or more, not {retries}")
    if not isinstance(store, FitStore):
        store = FileFitStore(store)
    attempt = Attempt(draws, tune if tune is not None else max(draws, 500), target_accept, seed)
    attempts: list[Attempt] = []
    while True:
        started = time.perf_counter()
        result = fit_hierarchy(
            table,
            sampler=sampler,
            draws=attempt.draws,
            chains=chains,
            seed=attempt.seed,
            progress=progress,
            tune=attempt.tune,
            compiled=compiled,
            target_accept=attempt.target_accept,
        )
        done = Attempt(
            attempt.draws,
            attempt.tune,
            attempt.target_accept,
            attempt.seed,
            tuple(result.diagnostics.get("failures", ())),
            time.perf_counter() - started,
        )
        attempts.append(done)
        if result.passed or len(attempts) > retries:
            break
        attempt = retry_settings(done, result.diagnostics)
        if on_retry is not None:
            on_retry(done, attempt)
    tried = [{**dataclasses.asdict(a), "failures": list(a.failures)} for a in attempts]
    meta = {**result.posterior.meta, "attempts": tried}
    result = dataclasses.replace(result, posterior=dataclasses.replace(result.posterior, meta=meta))
    stored = store.publish(result, evidence_state)
    return result, stored
