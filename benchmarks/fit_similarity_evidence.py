"""Fit the shipped similarity-evidence model on all dev logs; sample its hyperparameters' posterior.

    nice -n 10 python benchmarks/fit_similarity_evidence.py [--kind neighbours] [--features auto]

First the penalised maximum of the prequential likelihood (scipy, as in the CV): the shipped
`params`. Then PyMC: the same likelihood in PyTensor as a pm.Potential, flat priors on the
transformed hyperparameters (the ridge penalties as Normal priors), sampled with nutpie when it
is installed (else pm.sample). The PyTensor log-density is checked against the numpy model
(`similarity_evidence.log_likelihood`, what `nrr check` evaluates) at the maximum and at random
points before sampling.

`--posterior-only` keeps every key of the shipped file and writes only `posterior` (natural-scale
summaries of each hyperparameter) and `diagnostics`; without it the file is rewritten from this
fit (params = the penalised maximum, folds from the CV output).

Everything that does not depend on the hyperparameters is precomputed into flat arrays
(`FlatData`): each row's top-k neighbour similarities, ages and outcomes, and a blocked form of
the discounted session sums, so the log-density and its gradient are a few vectorised ops.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nrr_stats.models import similarity_evidence as se  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "nrr_stats" / "models_data" / "similarity_evidence.json"
SUM_BLOCK = 32  # rows per block of the discounted sums (closed form inside, carried between)
HYPERPARAMETERS = (
    "discount",
    "prior_keeps",
    "prior_trials",
    "plateau",
    "intercept",
    "position",
    "strength",
    "temperature",
    "fail_similarity",
    "keep_similarity",
    "kernel_discount",
    "neighbour_weight",
)


@dataclass(frozen=True)
class FlatData:
    """The hyperparameter-free parts of the prequential likelihood, over all rows of all logs.

    The discounted sums sum_(i<t) g^(t-1-i) y_i are split into blocks of B = SUM_BLOCK rows per
    log: for row t = bB + j of a log, local[t] = sum_(a<j) g^a y_(t-1-a) and carry C_b =
    sum_(b'<b) (g^B)^(b-1-b') D_b', with D_b' = sum_k g^(B-1-k) y_(b'B+k); the sum is
    local + g^j C_b. Exact (no window), and every product is a small dense one.
    """

    y: np.ndarray  # (N,)
    design: np.ndarray  # (N, L) columns of the linear logit-shift parameters
    local_y: np.ndarray  # (N, B): y_(t-1-a) for a < j, else 0
    row_j: np.ndarray  # (N,) j, the row's offset in its block
    row_block: np.ndarray  # (N,) the row's block (global index)
    row_tau: np.ndarray  # (N,) the row's index in its log (trials in closed form)
    block_y: np.ndarray  # (nb, B): y_(b'B + B-1-k) (0 past the log's end)
    carry_index: np.ndarray  # (nb, M): global index of block b-1-d, or nb (a zero) when none
    sim: np.ndarray  # (N, K) min(s, 1) - 1 of the neighbour slots, 0 where empty
    age: np.ndarray  # (N, K) neighbour ages, 0 where empty
    nb_y: np.ndarray  # (N, K) neighbour outcomes
    valid: np.ndarray  # (N, K) 1.0 where a slot holds a neighbour
    nb_keeps: np.ndarray  # (N,) sum w y over the NEIGHBOUR_K nearest rows (se.neighbour_sums)
    nb_trials: np.ndarray  # (N,) sum w over the same


def flat_data(sessions, neighbours, design: np.ndarray, block: int = SUM_BLOCK) -> FlatData:
    """FlatData of sessions (SessionRows) with their se.Neighbours and the linear design."""
    local, row_j, row_block, row_tau, block_y, carry = [], [], [], [], [], []
    first_block = 0
    for session in sessions:
        y = np.asarray(session.y, dtype=float)
        n = y.shape[0]
        tau = np.arange(n)
        j = tau % block
        back = tau[:, None] - 1 - np.arange(block)[None, :]
        ok = np.arange(block)[None, :] < j[:, None]
        local.append(np.where(ok, y[np.clip(back, 0, None)], 0.0))
        row_j.append(j)
        row_tau.append(tau)
        row_block.append(first_block + tau // block)
        blocks = -(-n // block)
        padded = np.zeros(blocks * block)
        padded[:n] = y
        block_y.append(padded.reshape(blocks, block)[:, ::-1])
        carry.append((first_block, blocks))
        first_block += blocks
    total = first_block
    depth = max(blocks for _, blocks in carry)
    carry_index = np.full((total, depth), total, dtype=np.int64)
    for start, blocks in carry:
        for b in range(blocks):
            d = np.arange(b)
            carry_index[start + b, : d.shape[0]] = start + b - 1 - d
    sim = np.concatenate([nb.similarity for nb in neighbours])
    sums = [se.neighbour_sums(nb) for nb in neighbours]
    nb_keeps = np.concatenate([keeps for keeps, _ in sums])
    nb_trials = np.concatenate([trials for _, trials in sums])
    valid = np.concatenate([nb.valid for nb in neighbours]).astype(float)
    return FlatData(
        y=np.concatenate([np.asarray(s.y, dtype=float) for s in sessions]),
        design=np.asarray(design, dtype=float),
        local_y=np.concatenate(local),
        row_j=np.concatenate(row_j).astype(float),
        row_block=np.concatenate(row_block),
        row_tau=np.concatenate(row_tau).astype(float),
        block_y=np.concatenate(block_y),
        carry_index=carry_index,
        sim=np.where(valid > 0, np.minimum(sim, 1.0) - 1.0, 0.0),
        age=np.where(valid > 0, np.concatenate([nb.age for nb in neighbours]), 0.0),
        nb_y=np.concatenate([nb.y for nb in neighbours]).astype(float),
        valid=valid,
        nb_keeps=nb_keeps,
        nb_trials=nb_trials,
    )


def numpy_discounted_sums(data: FlatData, g: float) -> tuple[np.ndarray, np.ndarray]:
    """The blocked sums in numpy (the same arithmetic as the PyTensor graph)."""
    powers = g ** np.arange(data.local_y.shape[1])
    carry = np.append(data.block_y @ powers, 0.0)[data.carry_index]
    carry = carry @ (g ** data.local_y.shape[1]) ** np.arange(data.carry_index.shape[1])
    keeps = data.local_y @ powers + g**data.row_j * carry[data.row_block]
    trials = (1.0 - g**data.row_tau) / (1.0 - g)
    return keeps, trials


def stacked_flat(stacked, form) -> FlatData:
    """FlatData of a cv.Stacked for a model form (its neighbours and linear design)."""
    return flat_data(
        [log.session for log in stacked.logs],
        [log.nb[form.features] for log in stacked.logs],
        form.linear_columns(stacked),
    )


def pytensor_logp(data: FlatData, form, x=None):
    """(logp(x) as a PyTensor graph, x): the prequential log likelihood of the same model as
    se.log_likelihood, with x the form's unconstrained parameter vector (a new vector variable
    unless given)."""
    import pytensor.tensor as pt

    x = pt.vector("x") if x is None else x
    block = data.local_y.shape[1]
    g = pt.sigmoid(x[0])
    a0 = pt.exp(x[1])
    n0 = a0 + pt.exp(x[2])
    powers = g ** np.arange(block, dtype=float)
    ends = pt.concatenate([pt.dot(data.block_y, powers), pt.zeros(1)])
    carry = pt.dot(ends[data.carry_index], (g**block) ** np.arange(data.carry_index.shape[1]))
    keeps = pt.dot(data.local_y, powers) + g**data.row_j * carry[data.row_block]
    trials = (1.0 - g**data.row_tau) / (1.0 - g)
    m = (a0 + keeps) / (n0 + trials)
    shift = pt.dot(data.design, x[np.array(form.linear_index())])
    logit_m = pt.log(m) - pt.log1p(-m)
    if form.neighbour:
        q = (data.nb_keeps + m) / (data.nb_trials + 1.0)
        shift = shift + x[-1] * (pt.log(q) - pt.log1p(-q) - logit_m)
    centre = pt.sigmoid(logit_m + shift)
    if form.kernel:
        kappa, tau = pt.exp(x[6]), pt.exp(x[7])
        exponent = data.sim / tau
        if form.fit_h:
            exponent = exponent + data.age * pt.log(pt.sigmoid(x[10]))
        weights = pt.exp(exponent) * data.valid
        k_keep = (weights * data.nb_y).sum(axis=1)
        k_trial = weights.sum(axis=1)
        p = (kappa * centre + k_keep) / (kappa + k_trial)
    else:
        p = centre
    p = pt.clip(p, se.CLIP, 1 - se.CLIP)
    logp = pt.sum(data.y * pt.log(p) + (1 - data.y) * pt.log1p(-p))
    return logp, x


def check_logp(
    data: FlatData, form, sessions, points, rtol: float = 1e-9, mode: str | None = None
) -> list[dict]:
    """The PyTensor log-density against the numpy model's at each point (x vectors)."""
    import pytensor

    logp, x = pytensor_logp(data, form)
    f = pytensor.function([x], logp, mode=mode)
    out = []
    for point in points:
        graph = float(f(np.asarray(point, dtype=float)))
        model = se.log_likelihood(sessions, form.params(np.asarray(point, dtype=float)))
        assert abs(graph - model) <= rtol * max(1.0, abs(model)), (graph, model, list(point))
        out.append({"pytensor": graph, "numpy": model})
    return out


def random_points(x_map: np.ndarray, rng, n: int, scale: float = 0.5) -> list[np.ndarray]:
    """The maximum and n points around it (independent normal steps of sd `scale`)."""
    return [x_map] + [x_map + scale * rng.standard_normal(x_map.shape[0]) for _ in range(n)]


def natural(form, xs: np.ndarray) -> dict[str, np.ndarray]:
    """Each hyperparameter's draws on the natural scale (HYPERPARAMETERS the form has)."""
    params = [form.params(x) for x in xs]
    names = [h for h in HYPERPARAMETERS if form.kernel or h not in _KERNEL_ONLY]
    if form.kernel and not form.fit_h:
        names.remove("kernel_discount")
    if form.similar and not form.kernel:
        names += ["fail_similarity", "keep_similarity"]
    if not form.neighbour:
        names.remove("neighbour_weight")
    out = {h: np.array([getattr(p, h) for p in params], dtype=float) for h in names}
    if form.cells:
        for c in form.cats:
            out[f"cell:{c}"] = np.array([p.cells[c] for p in params], dtype=float)
    return out


_KERNEL_ONLY = {"strength", "temperature", "fail_similarity", "keep_similarity", "kernel_discount"}


def summarise(draws: dict[str, np.ndarray], at_max: dict[str, float]) -> dict[str, dict]:
    """mean, sd, 5% / 95% quantiles per hyperparameter, and where the maximum falls."""
    out = {}
    for name, values in draws.items():
        q05, q95 = np.quantile(values, [0.05, 0.95])
        out[name] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)),
            "q05": float(q05),
            "q95": float(q95),
            "penalised_max": float(at_max[name]),
            "max_inside_90": bool(q05 <= at_max[name] <= q95),
        }
    return out


# log a0 ~ Normal(0, LOG_A0_SD). With a flat prior the posterior is improper: as a0 -> inf with
# n0 - a0 fixed, logit m_t -> log a0 - log(n0 - a0 + discounted failures), the intercept
# absorbs log a0, and the likelihood tends to a limit a few nats below its maximum (a flat-prior
# run drifted to a0 ~ 1e10, R-hat 1.13). Every other hyperparameter keeps its flat prior.
LOG_A0_SD = 2.0


def log_density(data: FlatData, form, x):
    """The sampled log-density of x: the prequential likelihood, flat priors on the
    unconstrained hyperparameters but log a0 (LOG_A0_SD), the ridge penalties as Normal(0, sd)."""
    import pytensor.tensor as pt

    sd = form.penalty_sd()
    ridged = np.flatnonzero(np.isfinite(sd))
    logp = pytensor_logp(data, form, x)[0] - 0.5 * (x[1] / LOG_A0_SD) ** 2
    if ridged.shape[0]:
        logp = logp - 0.5 * pt.sum((x[ridged] / sd[ridged]) ** 2)
    return logp


def laplace_whitening(data: FlatData, form, x_max: np.ndarray) -> np.ndarray:
    """L with L L' = the inverse Hessian of -log density at the maximum (a Cholesky factor):
    NUTS samples z in x = x_max + L z, whose Laplace approximation is the identity. A linear
    map has a constant Jacobian, so flat priors on x stay flat priors on z."""
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x")
    logp = log_density(data, form, x)
    hessian = pytensor.function([x], pt.hessian(-logp, x), mode="NUMBA")(x_max)
    hessian = 0.5 * (hessian + hessian.T)
    try:
        return np.linalg.cholesky(np.linalg.inv(hessian))
    except np.linalg.LinAlgError:  # not positive definite: fall back to the diagonal
        return np.diag(1.0 / np.sqrt(np.maximum(np.abs(np.diag(hessian)), 1e-8)))


def sample(data: FlatData, form, x_start: np.ndarray, args) -> tuple[np.ndarray, dict]:
    """Posterior draws of x (chains, draws, dim) and the sampler's diagnostics."""
    import arviz as az
    import pymc as pm
    import pytensor.tensor as pt

    started, cpu = time.perf_counter(), time.process_time()
    whiten = laplace_whitening(data, form, x_start)
    dim = x_start.shape[0]
    with pm.Model() as model:
        z = pm.Flat("z", shape=dim, initval=np.zeros(dim))
        x = pt.as_tensor_variable(x_start) + pt.dot(whiten, z)
        pm.Potential("prequential", log_density(data, form, x))
    if args.sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        compile_s = time.perf_counter() - started
        trace = nutpie.sample(
            compiled,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            cores=args.cores,
            seed=args.seed,
            progress_bar=False,
            target_accept=args.target_accept,
        )
    else:
        compile_s = time.perf_counter() - started
        with model:
            trace = pm.sample(
                draws=args.draws,
                tune=args.tune,
                chains=args.chains,
                cores=1,
                random_seed=args.seed,
                target_accept=args.target_accept,
                progressbar=False,
                compute_convergence_checks=False,
            )
    wall, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    zs = trace.posterior["z"].values
    xs = x_start + zs @ whiten.T
    import xarray as xr

    draws = xr.Dataset(
        {"x": (("chain", "draw", "x_dim"), xs)},
        coords={"chain": np.arange(xs.shape[0]), "draw": np.arange(xs.shape[1])},
    )
    rhat = float(az.rhat(draws)["x"].max())
    bulk = float(az.ess(draws, method="bulk")["x"].min())
    tail = float(az.ess(draws, method="tail")["x"].min())
    stats = trace.sample_stats
    depth = next((stats[k] for k in ("depth", "tree_depth") if k in stats), None)
    diagnostics = {
        "max_rhat": rhat,
        "min_ess_bulk": bulk,
        "min_ess_tail": tail,
        "divergences": int(stats["diverging"].values.sum()),
        "chains": int(args.chains),
        "draws": int(args.draws),
        "tune": int(args.tune),
        "target_accept": float(args.target_accept),
        "mean_tree_depth": None if depth is None else float(depth.values.mean()),
        "sampler": f"nutpie {_version('nutpie')} (numba)"
        if args.sampler == "nutpie"
        else f"pymc {_version('pymc')} NUTS",
        "parameterisation": "x = x_max + L z, L L' = inverse Hessian at the maximum",
        "seed": int(args.seed),
        "compile_s": round(compile_s, 1),
        "sampling_wall_s": round(wall - compile_s, 1),
        "compile_and_sampling_cpu_s": round(cpu_s, 1),
    }
    return xs, diagnostics


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _cpu_s() -> float:
    """CPU time of this process and its finished children (compilers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _point_summary(form, x: np.ndarray) -> dict[str, float]:
    return {k: float(v[0]) for k, v in natural(form, x[None, :]).items()}


def time_logp_grad(data: FlatData, form, x: np.ndarray, repeats: int = 20) -> dict:
    """CPU ms per call of the compiled log-density + gradient, C and numba backends."""
    import pytensor
    import pytensor.tensor as pt

    logp, xvar = pytensor_logp(data, form)
    out = {}
    for mode in ("FAST_RUN", "NUMBA"):
        fn = pytensor.function([xvar], [logp, pt.grad(logp, xvar)], mode=mode)
        fn(x)
        started = time.process_time()
        for _ in range(repeats):
            fn(x)
        name = "c" if mode == "FAST_RUN" else "numba"
        out[f"logp_grad_ms_{name}"] = round(1000 * (time.process_time() - started) / repeats, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="neighbours")
    parser.add_argument(
        "--features", default="auto", help="store / text / fields, or auto: the inner CV's choice"
    )
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--target-accept", type=float, default=0.8)
    parser.add_argument("--sampler", choices=("auto", "nutpie", "pymc"), default="auto")
    parser.add_argument("--check-points", type=int, default=5)
    parser.add_argument("--no-pymc", action="store_true")
    parser.add_argument(
        "--posterior-only",
        action="store_true",
        help="keep every key of --out; write only `posterior` and `diagnostics`",
    )
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--cv", default=str(Path(__file__).with_name("similarity_evidence_cv.json"))
    )
    args = parser.parse_args()
    if args.sampler == "auto":
        try:
            import nutpie  # noqa: F401

            args.sampler = "nutpie"
        except ImportError:
            args.sampler = "pymc"
    import similarity_evidence_cv as cv
    from evidence_data import load_corpus

    started, load_before = time.perf_counter(), os.getloadavg()
    raw, note = load_corpus(progress=lambda m: print(m, file=sys.stderr))
    logs = cv.prepare(raw)
    cats = cv.categories(logs)
    stacked = cv.Stacked(logs, cats)
    inner = {}
    if args.features == "auto":  # the CV's rule on all logs: 4-fold CV grouped by log
        args.features, _, inner = cv.choose_form(logs, args.kind, cats)
        print(f"features {args.features} by 4-fold CV: {inner}", file=sys.stderr)
    form = cv.Form(args.kind, args.features, True, cats)
    params, x_map, fun = cv.fit(stacked, form)
    print(f"max: -logp+penalty {fun:.2f} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    out = {
        "model": "similarity_evidence",
        "form": {
            "kind": args.kind,
            "features": args.features,
            "features_cv": inner,
            "kernel_discount": "fitted" if form.kernel else "none (no kernel)",
            "neighbour_k": se.NEIGHBOUR_K if form.neighbour else None,
        },
        "params": params.as_dict(),
        "map_params": params.as_dict(),
        "corpus": note,
        "window": se.WINDOW,
        "top_k": se.TOP_K,
        "fit": "penalised maximum of the prequential likelihood",
    }
    if args.posterior_only:
        out = json.loads(Path(args.out).read_text())
    if not args.no_pymc:
        data = stacked_flat(stacked, form)
        sessions = [log.session for log in logs]
        points = random_points(x_map, np.random.default_rng(args.seed), args.check_points)
        checked = check_logp(data, form, sessions, points)
        gap = max(abs(c["pytensor"] - c["numpy"]) for c in checked)
        print(f"PyTensor = numpy at {len(points)} points (max |diff| {gap:.2e})", file=sys.stderr)
        speed = time_logp_grad(data, form, x_map)
        print(f"log-density + gradient: {speed}", file=sys.stderr)
        xs, diagnostics = sample(data, form, x_map, args)
        flat_xs = xs.reshape(-1, xs.shape[-1])
        shipped = se.EvidenceParams.from_dict(out["params"])
        summary = summarise(natural(form, flat_xs), _point_summary(form, x_map))
        for name, row in summary.items():
            value = (
                shipped.cells.get(name[5:]) if name.startswith("cell:") else getattr(shipped, name)
            )
            row["shipped"] = float(value)
            row["shipped_inside_90"] = bool(row["q05"] <= value <= row["q95"])
        out["posterior"] = summary
        diagnostics.update(
            {
                "prior": f"log a0 ~ Normal(0, {LOG_A0_SD}); flat on logit g, log(n0 - a0), "
                + ("log kappa, log tau, logit h, " if form.kernel else "")
                + "the linear logit-shift weights"
                + (" and the neighbour weight" if form.neighbour else ""),
                "rows": int(data.y.shape[0]),
                "logs": len(logs),
                "corpus": note,
                "logp_checked_points": len(points),
                "logp_max_abs_diff": gap,
                **speed,
                "nll_at_shipped": cv.nll(stacked, shipped),
                "nll_at_max_this_corpus": cv.nll(stacked, params),
                "wall_s": round(time.perf_counter() - started, 1),
                "cpu_s": round(_cpu_s(), 1),
                "load_average_start": [round(v, 2) for v in load_before],
                "load_average_end": [round(v, 2) for v in os.getloadavg()],
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        out["diagnostics"] = diagnostics
    if not args.posterior_only:
        out["wall_s"] = time.perf_counter() - started
        if Path(args.cv).is_file():
            cv_out = json.loads(Path(args.cv).read_text())
            out["cv_table"] = cv_out["table"]
            out["cv_intervals_90"] = cv_out["intervals_90"]
            # each fold's parameters: `nrr backtest` walks a dev log with the fold that held it out
            out["folds"] = {str(c["fold"]): c["params"] for c in cv_out["chosen"][args.kind]}
            out["held_out"] = {log.file: cv.fold_of(log.file) for log in logs}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    shown = ("posterior", "diagnostics") if args.posterior_only else tuple(out)
    print(json.dumps({k: out[k] for k in shown if k not in ("params", "map_params")}, indent=1))


if __name__ == "__main__":
    main()
