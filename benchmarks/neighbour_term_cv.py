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
  scale      the whole logit times exp(x7): a temperature (a model over- or under-confident on
             new logs); with the intercept already in the form, a recalibration fitted jointly
  betacal    beta calibration of the whole prediction, fitted jointly: logit P = exp(x7) log p
             - exp(x8) log(1 - p) + x9 (the identity at 0, 0, 0); unlike a temperature it can
             sharpen the top of the scale and not the bottom

Figures (the bootstrap and paired difference of similarity_evidence_cv.py): log loss ratio
against the discounted running rate on the same rows, ECE, and the paired difference per row
against the shipped form, each with a 90% bootstrap over logs; dev/ and dev2/ apart.
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
from similarity_evidence_cv import FOLDS, bootstrap, fold_of, metrics, paired  # noqa: E402

from nrr_stats.models import similarity_evidence as se  # noqa: E402
from nrr_stats.models.special import logit  # noqa: E402


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
                "mass": np.log1p(cosines.sum(axis=1)) - 1.0,
                "length": np.log1p([len(words) for words in s.words]) - 2.0,
                "discounted": se.predict_session(s, se.BASELINE).p_keep,
            }
        )
    return out


def _neighbour_evidence(d: dict, h: float, rerank: bool) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour rate's (sum w y, sum w): the model's own with h = 1, else with the
    cosines discounted by h^age (and the K neighbours re-ranked by them with `rerank`)."""
    nb, k = d["nb"], se.NEIGHBOUR_K
    if h == 1.0 and not rerank:
        return se.neighbour_sums(nb)
    weights = np.where(nb.valid, np.maximum(nb.similarity, 0.0), 0.0) * h**nb.age
    y = nb.y
    if rerank:
        order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
        weights, y = np.take_along_axis(weights, order, 1), np.take_along_axis(y, order, 1)
    weights, y = weights[:, :k], y[:, :k]
    return (weights * y).sum(axis=1), weights.sum(axis=1)


# The variants whose neighbour term is the model's own.
SYMMETRIC = ("shipped", "age", "age_rerank", "mass", "length", "scale", "betacal")


def predict(d: dict, x: np.ndarray, variant: str) -> np.ndarray:
    """P(keep) of every row of one log: the model's session_centre with x's parameters, plus
    `variant`'s term (x[7]) on the logit scale."""
    symmetric = variant in SYMMETRIC
    params = se.EvidenceParams(
        discount=float(_sigmoid(x[0])),
        prior_keeps=float(np.exp(x[1])),
        prior_trials=float(np.exp(x[1]) + np.exp(x[2])),
        plateau=float(x[3]),
        intercept=float(x[4]),
        position=float(x[5]),
        features="words",
        neighbour_weight=float(x[6]) if symmetric else 0.0,
    )
    h = _sigmoid(x[7]) if variant in ("age", "age_rerank") else 1.0
    evidence = _neighbour_evidence(d, h, variant == "age_rerank")
    centre, m, _ = se.session_centre(d["y"], (), params, neighbour=evidence)
    if variant in ("shipped", "age", "age_rerank"):
        return centre
    if variant == "scale":
        return _sigmoid(np.exp(x[7]) * logit(centre))
    if variant == "betacal":
        p = np.clip(centre, se.CLIP, 1 - se.CLIP)
        return _sigmoid(np.exp(x[7]) * np.log(p) - np.exp(x[8]) * np.log1p(-p) + x[9])
    k_keep, k_trial = evidence
    if variant == "pseudo":
        c = np.exp(x[7])
        extra = x[6] * (logit((k_keep + c * m) / (k_trial + c)) - logit(m))
    elif variant in ("asym", "plateau_x"):
        toward = se.neighbour_shift(m, k_keep, k_trial)
        if variant == "asym":
            extra = x[6] * np.maximum(toward, 0.0) + x[7] * np.minimum(toward, 0.0)
        else:
            extra = (x[6] + x[7] * d["plateau"]) * toward
    else:  # mass, length: one more covariate
        extra = x[7] * d[variant]
    return _sigmoid(logit(centre) + extra)


def log_loss(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, se.CLIP, 1 - se.CLIP)
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
    extra = {
        "age": [3.5],
        "age_rerank": [3.5],
        "asym": [shipped.neighbour_weight],
        "betacal": [0.0, 0.0, 0.0],
    }
    return np.array(x + ([] if variant == "shipped" else extra.get(variant, [0.0])))


def cross_validate(data: list[dict], variant: str) -> tuple[dict[str, np.ndarray], list]:
    """Out-of-fold P(keep) per log, and each fold's fitted extra term."""
    oof, extras = {}, []
    for fold in range(FOLDS):
        train = [d for d in data if d["fold"] != fold]

        def objective(x, train=train):
            return sum(log_loss(d["y"], predict(d, x, variant)).sum() for d in train)

        x = minimize(objective, start(variant), method="L-BFGS-B").x
        extras.append([round(float(v), 4) for v in x[7:]])
        for d in data:
            if d["fold"] == fold:
                oof[d["file"]] = predict(d, x, variant)
    return oof, extras


def summary(per_log: list[dict], variant: str) -> dict:
    """Ratio to the discounted rate and ECE (similarity_evidence_cv.bootstrap), and the paired
    difference to the shipped form (similarity_evidence_cv.paired), 90% over logs."""
    methods = list(dict.fromkeys(["discounted", "shipped", variant]))
    y = np.concatenate([r["y"] for r in per_log])
    got = {m: metrics(np.concatenate([r["p"][m] for r in per_log]), y) for m in methods}
    intervals = bootstrap(per_log, methods, np.random.default_rng(7))[variant]
    pair = paired(per_log, "shipped", variant, np.random.default_rng(8))
    return {
        "ratio": got[variant]["log_loss"] / got["discounted"]["log_loss"],
        "ratio_90": intervals["ratio"],
        "ece": got[variant]["ece"],
        "paired_per_row": pair["difference_per_row"],
        "paired_90": pair["interval_90"],
        "logs_better_worse": [pair["logs_better"], pair["logs_worse"]],
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
        oof, extras = (shipped, []) if variant == "shipped" else cross_validate(data, variant)
        per_log = [
            {
                "y": d["y"],
                "corpus": d["corpus"],
                "p": {
                    "discounted": d["discounted"],
                    "shipped": shipped[d["file"]],
                    variant: oof[d["file"]],
                },
                "avoid": {
                    m: np.zeros(d["y"].shape[0], dtype=bool)
                    for m in ("discounted", "shipped", variant)
                },
            }
            for d in data
        ]
        entry = {"extra_per_fold": extras, "all": summary(per_log, variant)}
        for corpus in ("dev", "dev2"):
            entry[corpus] = summary([r for r in per_log if r["corpus"] == corpus], variant)
        out[variant] = entry
        a = entry["all"]
        progress(
            f"{variant:<11} ratio {a['ratio']:.4f} {np.round(a['ratio_90'], 4).tolist()}"
            f"  ECE {a['ece']:.4f}  paired {a['paired_per_row']:+.5f}"
            f" {np.round(a['paired_90'], 5).tolist()}  better/worse {a['logs_better_worse']}"
            f"  dev {entry['dev']['ratio']:.4f}  dev2 {entry['dev2']['ratio']:.4f}  extra {extras}"
        )
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
