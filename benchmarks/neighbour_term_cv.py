"""Forms of the neighbour term, each scored by 5-fold CV grouped by log against the shipped one.

Run under nice:  nice -n 10 python benchmarks/neighbour_term_cv.py [--out benchmarks/neighbour_term_cv.json]

The shipped model (models/README.md) shifts the discounted session rate m_t on the logit scale by
w (logit q_t - logit m_t), q_t = (sum_j c_j y_j + m_t) / (sum_j c_j + 1) over the NEIGHBOUR_K rows
of the session most like the proposal (c_j: word-set cosine). Each variant adds one continuous
parameter to that form, fitted with the others by maximum likelihood on the training logs of each
outer fold (no choice among forms is made, so no inner CV is needed):

  age        the weights decay with the neighbour's age: c_j h^age_j (h fitted)
  age_rerank the same, and the K neighbours are the K largest c_j h^age_j
  pseudo     q_t's pull toward m_t is c trials instead of one (c fitted)
  asym       separate weights for a shift up (similar keeps) and down (similar failures)
  mass       a logit term in log1p(sum of the window's cosines): how well trodden the idea is
  plateau_x  the neighbour shift times the plateau covariate (a stuck session trusts it more?)
  length     a logit term in log1p(the proposal's word count): the probe of issue 12 used it

Figures: log loss ratio against the discounted running rate on the same rows, and the paired
difference per row against the shipped form, each with a 90% bootstrap over logs; dev/ and dev2/
ratios apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evidence_data import load_corpus  # noqa: E402
from similarity_evidence_cv import FOLDS, fold_of  # noqa: E402

from nrr_stats.models import similarity_evidence as se  # noqa: E402

BOOT = 1000


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def prepared(logs) -> list[dict]:
    """Per log: outcomes, the words-view neighbours, and the covariates the forms read."""
    out = []
    for log in logs:
        s = log.session
        y = np.asarray(s.y, dtype=float)
        nb = se.session_neighbours(s, "words")
        cosines = np.where(nb.valid, np.maximum(nb.similarity, 0.0), 0.0)
        out.append(
            {
                "file": log.file,
                "corpus": log.corpus,
                "fold": fold_of(log.file),
                "y": y,
                "nb": nb,
                "plateau": np.log1p(se.rows_since_keep(y)) - se.PLATEAU_CENTRE,
                "phase": np.log1p(np.arange(y.shape[0])) - se.PHASE_CENTRE,
                "mass": np.log1p(cosines.sum(axis=1)) - 1.0,
                "length": np.log1p([len(words) for words in s.words]) - 2.0,
                "discounted": se.predict_session(s, se.BASELINE).p_keep,
            }
        )
    return out


def _neighbour_evidence(d: dict, h: float, rerank: bool) -> tuple[np.ndarray, np.ndarray]:
    nb, k = d["nb"], se.NEIGHBOUR_K
    weights = np.where(nb.valid, np.maximum(nb.similarity, 0.0), 0.0)
    if h != 1.0:
        weights = weights * h**nb.age
    y = nb.y
    if rerank:
        order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
        weights, y = np.take_along_axis(weights, order, 1), np.take_along_axis(y, order, 1)
    weights, y = weights[:, :k], y[:, :k]
    return (weights * y).sum(axis=1), weights.sum(axis=1)


def predict(d: dict, x: np.ndarray, variant: str) -> np.ndarray:
    """P(keep) of every row of one log under the shipped form plus `variant`'s term (x[7])."""
    g, a0 = _sigmoid(x[0]), np.exp(x[1])
    n0 = a0 + np.exp(x[2])
    keeps, trials = se.discounted_sums(d["y"], g)
    m = (a0 + keeps) / (n0 + trials)
    shift = x[4] + x[3] * d["plateau"] + x[5] * d["phase"]
    h = _sigmoid(x[7]) if variant in ("age", "age_rerank") else 1.0
    k_keep, k_trial = _neighbour_evidence(d, h, variant == "age_rerank")
    if variant == "pseudo":
        c = np.exp(x[7])
        toward = se._logit((k_keep + c * m) / (k_trial + c)) - se._logit(m)
    else:
        toward = se.neighbour_shift(m, k_keep, k_trial)
    if variant == "asym":
        shift = shift + x[6] * np.maximum(toward, 0.0) + x[7] * np.minimum(toward, 0.0)
    else:
        shift = shift + x[6] * toward
    if variant == "mass":
        shift = shift + x[7] * d["mass"]
    if variant == "length":
        shift = shift + x[7] * d["length"]
    if variant == "plateau_x":
        shift = shift + x[7] * toward * d["plateau"]
    return _sigmoid(se._logit(m) + shift)


def log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def start(variant: str) -> np.ndarray:
    shipped = se.load_params().params
    x = [
        np.log(shipped.discount / (1 - shipped.discount)),
        np.log(shipped.prior_keeps),
        np.log(shipped.prior_trials - shipped.prior_keeps),
        shipped.plateau,
        shipped.intercept,
        shipped.position,
        shipped.neighbour_weight,
    ]
    extra = {"age": [3.5], "age_rerank": [3.5], "asym": [shipped.neighbour_weight]}
    return np.array(x + ([] if variant == "shipped" else extra.get(variant, [0.0])))


def cross_validate(data: list[dict], variant: str) -> tuple[dict[str, np.ndarray], list]:
    """Out-of-fold log loss per log (and the discounted rate's), and each fold's extra term."""
    losses, extras = {}, []
    for fold in range(FOLDS):
        train = [d for d in data if d["fold"] != fold]

        def objective(x, train=train):
            return sum(log_loss(d["y"], predict(d, x, variant)).sum() for d in train)

        x = minimize(objective, start(variant), method="L-BFGS-B").x
        extras.append([round(float(v), 4) for v in x[7:]])
        for d in data:
            if d["fold"] == fold:
                losses[d["file"]] = log_loss(d["y"], predict(d, x, variant))
    return losses, extras


def summary(data, losses, shipped, rng, files=None) -> dict:
    keep = [d for d in data if files is None or d["file"] in files]
    mine = np.array([losses[d["file"]].sum() for d in keep])
    base = np.array([shipped[d["file"]].sum() for d in keep])
    disc = np.array([log_loss(d["y"], d["discounted"]).sum() for d in keep])
    rows = np.array([d["y"].shape[0] for d in keep], dtype=float)
    draws = [rng.integers(0, len(keep), len(keep)) for _ in range(BOOT)]
    ratio = [mine[i].sum() / disc[i].sum() for i in draws]
    paired = [(mine[i] - base[i]).sum() / rows[i].sum() for i in draws]
    return {
        "ratio": float(mine.sum() / disc.sum()),
        "ratio_90": np.percentile(ratio, [5, 95]).round(4).tolist(),
        "paired_per_row": float((mine - base).sum() / rows.sum()),
        "paired_90": np.percentile(paired, [5, 95]).round(5).tolist(),
        "logs_better_worse": [int((mine < base - 1e-9).sum()), int((mine > base + 1e-9).sum())],
    }


def main(argv: list[str] | None = None, progress: Callable = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    parser.add_argument(
        "--variants", default="age,age_rerank,pseudo,asym,mass,plateau_x,length", help="comma list"
    )
    args = parser.parse_args(argv)
    logs, note = load_corpus(progress=lambda *a: None)
    data = prepared(logs)
    shipped, _ = cross_validate(data, "shipped")
    out = {"corpus": note, "logs": len(data), "rows": int(sum(d["y"].shape[0] for d in data))}
    for variant in ["shipped", *filter(None, args.variants.split(","))]:
        losses, extras = (shipped, []) if variant == "shipped" else cross_validate(data, variant)
        rng = np.random.default_rng(7)  # the same resamples for every variant
        entry = {"extra_per_fold": extras, "all": summary(data, losses, shipped, rng)}
        for corpus in ("dev", "dev2"):
            files = {d["file"] for d in data if d["corpus"] == corpus}
            entry[corpus] = summary(data, losses, shipped, np.random.default_rng(7), files)
        out[variant] = entry
        a = entry["all"]
        progress(
            f"{variant:<11} ratio {a['ratio']:.4f} {a['ratio_90']}  paired {a['paired_per_row']:+.5f}"
            f" {a['paired_90']}  better/worse {a['logs_better_worse']}  dev {entry['dev']['ratio']:.4f}"
            f"  dev2 {entry['dev2']['ratio']:.4f}  extra {extras}"
        )
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
