"""Fit the shipped similarity-evidence model on all dev logs and write models/similarity_evidence.json.

    nice -n 10 python benchmarks/fit_similarity_evidence.py --kind full --features store [--draws 200]

First the penalised maximum of the prequential likelihood (scipy, as in the CV), then PyMC: the
same likelihood written in PyTensor as a pm.Potential, the ridge penalties as Normal priors
(cells sd CELL_SD, text weights sd TEXT_SD), flat priors on the transformed hyperparameters;
NUTS with small draws. The shipped point values are the posterior means of the hyperparameters
(the transformed-scale means mapped back), with 90% intervals in the card. The PyTensor
likelihood is checked against the numpy one at the MAP before sampling.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import similarity_evidence_cv as cv  # noqa: E402
from evidence_data import load_corpus  # noqa: E402

from nrr_stats.models import similarity_evidence as se  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "nrr_stats" / "models_data" / "similarity_evidence.json"


def pytensor_logp(stacked: cv.Stacked, form: cv.Form, x=None):
    """(logp(x) as a PyTensor graph, x) of the same model as Stacked.evaluate; x is a new
    vector variable unless given (the model's parameter vector)."""
    import pytensor.tensor as pt

    x = pt.vector("x") if x is None else x
    y = stacked.y
    n = y.shape[0]
    # pairs (t, i), i < t in the same log within the window: the discounted session sums
    ts, iis = [], []
    for a, b in zip(stacked.bounds[:-1], stacked.bounds[1:], strict=True):
        for t in range(a + 1, b):
            lo = max(a, t - se.WINDOW)
            ts.append(np.full(t - lo, t))
            iis.append(np.arange(lo, t))
    t_idx = np.concatenate(ts)
    i_idx = np.concatenate(iis)
    age = (t_idx - i_idx - 1).astype(float)
    g = pt.sigmoid(x[0])
    a0 = pt.exp(x[1])
    n0 = a0 + pt.exp(x[2])
    w = g**age
    keeps = pt.zeros(n)[t_idx].inc(w * y[i_idx])
    trials = pt.zeros(n)[t_idx].inc(w)
    m = (a0 + keeps) / (n0 + trials)
    design = form.linear_columns(stacked)
    lin = np.array(form.linear_index())
    shift = pt.dot(design, x[lin])
    centre = pt.sigmoid(pt.log(m) - pt.log1p(-m) + shift)
    if form.kernel:
        nb = stacked.nb[form.features]
        kappa, tau = pt.exp(x[6]), pt.exp(x[7])
        weights = pt.exp((np.minimum(nb.similarity, 1.0) - 1.0) / tau)
        if form.fit_h:
            weights = weights * pt.sigmoid(x[10]) ** nb.age
        weights = weights * nb.valid
        k_keep = (weights * nb.y).sum(axis=1)
        k_trial = weights.sum(axis=1)
        p = (kappa * centre + k_keep) / (kappa + k_trial)
    else:
        p = centre
    p = pt.clip(p, se.CLIP, 1 - se.CLIP)
    logp = pt.sum(y * pt.log(p) + (1 - y) * pt.log1p(-p))
    return logp, x


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="full")
    parser.add_argument("--features", default="store")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--no-pymc", action="store_true")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--cv", default=str(Path(__file__).with_name("similarity_evidence_cv.json"))
    )
    args = parser.parse_args()
    started = time.perf_counter()
    raw, note = load_corpus(progress=lambda m: print(m, file=sys.stderr))
    logs = cv.prepare(raw)
    cats = cv.categories(logs)
    stacked = cv.Stacked(logs, cats)
    form = cv.Form(args.kind, args.features, True, cats)
    params, x_map, fun = cv.fit(stacked, form)
    print(f"MAP: -logp+penalty {fun:.2f} in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    out = {
        "model": "similarity_evidence",
        "form": {"kind": args.kind, "features": args.features, "kernel_discount": "fitted"},
        "params": params.as_dict(),
        "map_params": params.as_dict(),
        "corpus": note,
        "window": se.WINDOW,
        "top_k": se.TOP_K,
        "fit": "penalised maximum of the prequential likelihood (no PyMC run)",
    }
    if not args.no_pymc:
        import pymc as pm
        import pytensor

        logp, xvar = pytensor_logp(stacked, form)
        check = pytensor.function([xvar], logp)(x_map)
        numpy_value = -cv.nll(stacked, params)
        assert abs(check - numpy_value) < 1e-6 * max(1.0, abs(numpy_value)), (check, numpy_value)
        sd = form.penalty_sd()
        ridged = np.isfinite(sd)
        with pm.Model():
            import pytensor.tensor as pt

            free = pm.Flat("x_free", shape=int((~ridged).sum()))
            full = pt.zeros(sd.shape[0])
            full = pt.set_subtensor(full[np.flatnonzero(~ridged)], free)
            start = {"x_free": x_map[~ridged]}
            if ridged.any():
                ridge = pm.Normal("x_ridge", 0.0, sd[ridged], shape=int(ridged.sum()))
                full = pt.set_subtensor(full[np.flatnonzero(ridged)], ridge)
                start["x_ridge"] = x_map[ridged]
            pm.Potential("prequential", pytensor_logp(stacked, form, full)[0])
            trace = pm.sample(
                draws=args.draws,
                tune=args.tune,
                chains=2,
                cores=1,
                initvals=start,
                progressbar=False,
                random_seed=12,
                compute_convergence_checks=False,
            )
        post = trace.posterior
        draws_free = post["x_free"].values.reshape(-1, int((~ridged).sum()))
        xs = np.zeros((draws_free.shape[0], sd.shape[0]))
        xs[:, ~ridged] = draws_free
        if ridged.any():
            xs[:, ridged] = post["x_ridge"].values.reshape(-1, int(ridged.sum()))
        mean_params = form.params(xs.mean(axis=0))
        summary = {}
        for name in (
            "discount",
            "prior_keeps",
            "prior_trials",
            "strength",
            "temperature",
            "kernel_discount",
            "plateau",
            "intercept",
            "position",
            "fail_similarity",
            "keep_similarity",
        ):
            values = np.array([getattr(form.params(x), name) for x in xs], dtype=float)
            summary[name] = {
                "mean": float(values.mean()),
                "interval_90": [float(np.quantile(values, 0.05)), float(np.quantile(values, 0.95))],
            }
        if form.cells:
            for c in cats:
                values = np.array([form.params(x).cells[c] for x in xs])
                summary[f"cell:{c}"] = {
                    "mean": float(values.mean()),
                    "interval_90": [
                        float(np.quantile(values, 0.05)),
                        float(np.quantile(values, 0.95)),
                    ],
                }
        import arviz as az

        rhat = az.rhat(trace)
        ess = az.ess(trace)
        out["params"] = mean_params.as_dict()
        out["posterior"] = summary
        names = ["x_free"] + (["x_ridge"] if ridged.any() else [])
        out["diagnostics"] = {
            "max_rhat": float(max(float(rhat[v].max()) for v in names)),
            "min_ess_bulk": float(min(float(ess[v].min()) for v in names)),
            "divergences": int(trace.sample_stats["diverging"].values.sum()),
            "chains": 2,
            "draws": args.draws,
            "tune": args.tune,
        }
        out["fit"] = (
            "PyMC NUTS on the prequential likelihood (pm.Potential); shipped values are the"
            " posterior means on the sampler's scale mapped back"
        )
        out["nll_at_shipped"] = cv.nll(stacked, mean_params)
        out["nll_at_map"] = cv.nll(stacked, params)
    out["wall_s"] = time.perf_counter() - started
    if Path(args.cv).is_file():
        cv_out = json.loads(Path(args.cv).read_text())
        out["cv_table"] = cv_out["table"]
        out["cv_intervals_90"] = cv_out["intervals_90"]
        # each fold's parameters, so `nrr backtest` walks a dev log with the fold that held it out
        out["folds"] = {str(c["fold"]): c["params"] for c in cv_out["chosen"][args.kind]}
        out["held_out"] = {log.file: cv.fold_of(log.file) for log in logs}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k not in ("params", "map_params")}, indent=1))


if __name__ == "__main__":
    main()
