"""Select and score the similarity-weighted evidence model by 5-fold CV grouped by log.

Run under nice:  nice -n 10 python benchmarks/similarity_evidence_cv.py [--out benchmarks/similarity_evidence_cv.json]

Models (each fitted per fold by maximising the prequential likelihood of the training logs):
  discounted   the discounted running rate of EVALUATION.md (no fit)
  blind        session dynamics only: g, a0, n0 and the plateau term (description-blind)
  cells        blind + a logit offset per category (ridge sd CELL_SD)
  similarity   blind + the kernel over earlier rows of the session
  full         blind + cells + kernel
The kernel's form (feature blocks: store / text / fields; age discount h fitted or 1) is chosen
inside each outer fold by an inner 4-fold CV over its training logs (nested). The verdict floor
is chosen per outer fold on the other folds' out-of-fold predictions. Figures carry 90%
intervals from 1000 bootstrap resamples of logs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evidence_data import load_corpus  # noqa: E402

from nrr_stats.backtest.metrics import expected_calibration_error  # noqa: E402
from nrr_stats.models import similarity_evidence as se  # noqa: E402

FOLDS = 5
CELL_SD = 0.3
TEXT_SD = 0.5
TEXT_DIM = 128
FORMS = [(f, True) for f in ("store", "text", "fields")]
FLOORS = np.round(np.arange(0.01, 0.301, 0.01), 3)
MIN_HISTORY = 3  # avoid never on a prior alone: at least this many earlier rows in the session
MAX_BLOCK = 0.03
BOOT = 1000


FULL_CHECK = se.EvidenceParams(
    discount=0.8,
    prior_keeps=0.6,
    prior_trials=1.5,
    strength=0.7,
    temperature=0.12,
    kernel_discount=0.98,
    plateau=0.1,
    cells={"learning_rate": -0.3, "data": -0.4},
    intercept=0.05,
    position=-0.1,
    fail_similarity=-0.4,
    keep_similarity=0.3,
)


def fold_of(file: str) -> int:
    return zlib.crc32(file.encode()) % FOLDS


@dataclass
class Prepared:
    """A log with its neighbours precomputed for each feature set (fits evaluate fast)."""

    file: str
    session: se.SessionRows
    nb: dict
    exact: np.ndarray
    near: np.ndarray


def prepare(logs) -> list[Prepared]:
    out = []
    for log in logs:
        nb = {f: se.session_neighbours(log.session, f) for f in ("store", "text", "fields")}
        out.append(Prepared(log.file, log.session, nb, log.exact, log.near))
    return out


def categories(logs: list[Prepared]) -> list[str]:
    return sorted({c for log in logs for c in log.session.categories})


class Form:
    """A model type + kernel form: maps an unconstrained vector to EvidenceParams."""

    def __init__(self, kind: str, features: str = "store", fit_h: bool = True, cats=()):
        self.kind, self.features, self.fit_h, self.cats = kind, features, fit_h, list(cats)
        self.kernel = kind in ("similarity", "full", "similarity_words")
        self.cells = kind in ("cells", "full")
        self.text = kind in ("words", "full", "similarity_words")

    def start(self) -> np.ndarray:
        x = [np.log(0.9 / 0.1), np.log(0.5), np.log(1.5), 0.0, 0.0, 0.0]
        if self.kernel:
            x += [np.log(2.0), np.log(0.1), 0.0, 0.0]
            if self.fit_h:
                x += [np.log(0.97 / 0.03)]
        if self.cells:
            x += [0.0] * len(self.cats)
        if self.text:
            x += [0.0] * TEXT_DIM
        return np.array(x, dtype=float)

    def nonlinear(self) -> list[int]:
        """Indices of x that enter non-linearly (numeric gradient); the rest shift the logit."""
        return [0, 1, 2] + ([6, 7] + ([10] if self.fit_h else []) if self.kernel else [])

    def linear_columns(self, stacked) -> np.ndarray:
        """(N, k) design of the linear logit-shift parameters, in x order after `nonlinear`."""
        nb = stacked.nb[self.features]
        cols = [
            np.log1p(stacked.since) - se.PLATEAU_CENTRE,
            np.ones_like(stacked.y),
            np.log1p(stacked.pos) - se.PHASE_CENTRE,
        ]
        if self.kernel:
            cols += [np.maximum(nb.max_fail, 0.0), np.maximum(nb.max_keep, 0.0)]
        design = [np.column_stack(cols)]
        if self.cells:
            onehot = np.zeros((stacked.y.shape[0], len(self.cats)))
            ok = stacked.cat >= 0
            onehot[np.flatnonzero(ok), stacked.cat[ok]] = 1.0
            design.append(onehot)
        if self.text:
            design.append(stacked.features)
        return np.hstack(design)

    def linear_index(self) -> list[int]:
        out = [3, 4, 5] + ([8, 9] if self.kernel else [])
        start = 6 + ((5 if self.fit_h else 4) if self.kernel else 0)
        extra = (len(self.cats) if self.cells else 0) + (TEXT_DIM if self.text else 0)
        return out + list(range(start, start + extra))

    def params(self, x: np.ndarray) -> se.EvidenceParams:
        g = 1 / (1 + np.exp(-x[0]))
        a0 = float(np.exp(x[1]))
        n0 = a0 + float(np.exp(x[2]))
        i = 6
        kw = dict(
            discount=float(g),
            prior_keeps=a0,
            prior_trials=n0,
            plateau=float(x[3]),
            intercept=float(x[4]),
            position=float(x[5]),
        )
        if self.kernel:
            kw.update(strength=float(np.exp(x[i])), temperature=float(np.exp(x[i + 1])))
            kw.update(fail_similarity=float(x[i + 2]), keep_similarity=float(x[i + 3]))
            kw["features"] = self.features
            i += 4
            if self.fit_h:
                kw["kernel_discount"] = float(1 / (1 + np.exp(-x[i])))
                i += 1
        if self.cells:
            kw["cells"] = {
                c: float(v) for c, v in zip(self.cats, x[i : i + len(self.cats)], strict=True)
            }
            i += len(self.cats)
        if self.text:
            kw["text_weights"] = tuple(float(v) for v in x[i : i + TEXT_DIM])
        return se.EvidenceParams(**kw)

    def penalty_sd(self) -> np.ndarray:
        """Ridge sd per x entry (inf: no penalty)."""
        sd = np.full(self.start().shape[0], np.inf)
        i = 6 + ((5 if self.fit_h else 4) if self.kernel else 0)
        if self.cells:
            sd[i : i + len(self.cats)] = CELL_SD
            i += len(self.cats)
        if self.text:
            sd[i : i + TEXT_DIM] = TEXT_SD
        return sd

    def penalty(self, x: np.ndarray) -> float:
        sd = self.penalty_sd()
        ok = np.isfinite(sd)
        return float(0.5 * np.sum((x[ok] / sd[ok]) ** 2))


def predictions(logs: list[Prepared], params: se.EvidenceParams) -> list[se.EvidencePrediction]:
    return [se.predict_session(log.session, params, log.nb[params.features]) for log in logs]


class Stacked:
    """A set of logs concatenated for fast likelihood evaluation (the same numbers as
    se.predict_session, checked in `check_against_model`)."""

    def __init__(self, logs: list[Prepared], cats: list[str]):
        self.logs = logs
        self.y = np.concatenate([log.session.y for log in logs])
        self.bounds = np.cumsum([0] + [len(log.session.y) for log in logs])
        self.since = np.concatenate([se.rows_since_keep(log.session.y) for log in logs])
        self.pos = np.concatenate([np.arange(len(log.session.y)) for log in logs])
        index = {c: i for i, c in enumerate(cats)}
        self.cat = np.concatenate(
            [[index.get(c, -1) for c in log.session.categories] for log in logs]
        ).astype(int)
        self.nb = {
            f: se.Neighbours(
                *(np.concatenate([getattr(log.nb[f], k) for log in logs]) for k in se._NB_FIELDS)
            )
            for f in ("store", "text", "fields")
        }
        self.cats = list(cats)
        self.features = np.concatenate(
            [np.asarray(log.session.proposal_features, dtype=np.float64) for log in logs]
        )

    def p_keep(self, params: se.EvidenceParams) -> np.ndarray:
        return self.evaluate(params)[0]

    def evaluate(self, params: se.EvidenceParams):
        """(p_keep, dp/dshift) at every row."""
        from scipy.signal import lfilter

        keeps = np.zeros_like(self.y)
        trials = np.zeros_like(self.y)
        for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            both = lfilter(
                [1.0], [1.0, -params.discount], np.vstack([self.y[a:b], np.ones(b - a)]), axis=1
            )
            keeps[a + 1 : b], trials[a + 1 : b] = both[0, :-1], both[1, :-1]
        m = (params.prior_keeps + keeps) / (params.prior_trials + trials)
        nb = self.nb[params.features]
        shift = np.full(self.y.shape[0], params.intercept)
        if params.cells:
            table = np.append(np.array([params.cells.get(c, 0.0) for c in self.cats]), 0.0)
            shift += table[self.cat]
        shift += params.plateau * (np.log1p(self.since) - se.PLATEAU_CENTRE)
        shift += params.position * (np.log1p(self.pos) - se.PHASE_CENTRE)
        shift += params.fail_similarity * np.maximum(nb.max_fail, 0.0)
        shift += params.keep_similarity * np.maximum(nb.max_keep, 0.0)
        if params.text_weights:
            shift += self.features @ np.asarray(params.text_weights)
        centre = 1.0 / (1.0 + np.exp(-(se._logit(m) + shift))) if np.any(shift) else m
        slope = centre * (1.0 - centre)
        if not np.isfinite(params.strength):
            return centre, slope
        k_keep, k_trial = se.kernel_sums(nb, params)
        weight = params.strength / (params.strength + k_trial)
        return (params.strength * centre + k_keep) / (params.strength + k_trial), weight * slope


def nll(logs, params) -> float:
    stacked = logs if isinstance(logs, Stacked) else Stacked(logs, sorted(params.cells))
    p = np.clip(stacked.p_keep(params), se.CLIP, 1 - se.CLIP)
    y = stacked.y
    return -float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))


def check_against_model(logs: list[Prepared], params: se.EvidenceParams, cats) -> None:
    """The fast path equals the model's own predict_session, row for row."""
    fast = Stacked(logs, cats).p_keep(params)
    slow = np.concatenate([se.predict_session(log.session, params).p_keep for log in logs])
    assert np.allclose(fast, slow, rtol=1e-9, atol=1e-12), float(np.max(np.abs(fast - slow)))


def fit(logs, form: Form) -> tuple[se.EvidenceParams, np.ndarray, float]:
    """Maximise the penalised prequential likelihood: analytic gradient for the logit-shift
    parameters, forward differences for the few non-linear ones."""
    stacked = logs if isinstance(logs, Stacked) else Stacked(logs, form.cats)
    design = form.linear_columns(stacked)
    lin, nonlin = np.array(form.linear_index()), form.nonlinear()
    sd = form.penalty_sd()
    ok = np.isfinite(sd)
    y = stacked.y

    def value(x):
        p, _ = stacked.evaluate(form.params(x))
        q = np.clip(p, se.CLIP, 1 - se.CLIP)
        return -float(np.sum(y * np.log(q) + (1 - y) * np.log1p(-q))) + form.penalty(x)

    def objective(x):
        with np.errstate(all="ignore"):
            p, dp = stacked.evaluate(form.params(x))
            q = np.clip(p, se.CLIP, 1 - se.CLIP)
            f = -float(np.sum(y * np.log(q) + (1 - y) * np.log1p(-q))) + form.penalty(x)
            if not np.isfinite(f):
                return 1e12, np.zeros_like(x)
            grad = np.zeros_like(x)
            dl = -(y / q - (1 - y) / (1 - q)) * dp
            grad[lin] = design.T @ dl
            grad[ok] += x[ok] / sd[ok] ** 2
            for j in nonlin:
                step = 1e-5 * max(1.0, abs(x[j]))
                bumped = x.copy()
                bumped[j] += step
                grad[j] = (value(bumped) - f) / step
        return f, grad

    x0 = form.start()
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return form.params(result.x), result.x, float(result.fun)


def choose_form(train: list[Prepared], kind: str, cats) -> tuple[str, bool, dict]:
    """Inner 4-fold CV over the training logs: the kernel form with the lowest held-out loss."""
    inner = {log.file: zlib.crc32(("inner" + log.file).encode()) % 4 for log in train}
    losses = {}
    for features, fit_h in FORMS:
        total, rows = 0.0, 0
        for k in range(4):
            fit_on = Stacked([log for log in train if inner[log.file] != k], cats)
            held = Stacked([log for log in train if inner[log.file] == k], cats)
            params, _, _ = fit(fit_on, Form(kind, features, fit_h, cats))
            total += nll(held, params)
            rows += held.y.shape[0]
        losses[f"{features}/{'h' if fit_h else 'h=1'}"] = total / rows
    best = min(losses, key=losses.get)
    features, h = best.split("/")
    return features, h == "h", losses


def verdict_avoid(p: np.ndarray, history: np.ndarray, floor: float) -> np.ndarray:
    return (p < floor) & (history >= MIN_HISTORY)


def tradeoff(p, y, history) -> list[dict]:
    out = []
    for floor in FLOORS:
        avoid = verdict_avoid(p, history, floor)
        out.append(
            {
                "floor": float(floor),
                "avoid_recall": float(avoid[y == 0].mean()),
                "keep_block": float(avoid[y == 1].mean()),
            }
        )
    return out


def best_floor(p, y, history) -> float:
    ok = [r for r in tradeoff(p, y, history) if r["keep_block"] <= MAX_BLOCK]
    return max(ok, key=lambda r: (r["avoid_recall"], -r["floor"]))["floor"] if ok else 0.0


def metrics(p, y, avoid=None) -> dict:
    q = np.clip(p, se.CLIP, 1 - se.CLIP)
    out = {
        "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q))),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(p, y),
    }
    if avoid is not None:
        out["avoid_recall"] = float(avoid[y == 0].mean())
        out["keep_block"] = float(avoid[y == 1].mean())
    return out


def bootstrap(per_log: list[dict], methods: list[str], rng) -> dict:
    """90% intervals over logs (resampled with replacement) for every figure and ratio."""
    n = len(per_log)
    draws = {
        m: {k: [] for k in ("log_loss", "ece", "brier", "ratio", "avoid_recall", "keep_block")}
        for m in methods
    }
    for _ in range(BOOT):
        pick = rng.integers(0, n, size=n)
        y = np.concatenate([per_log[i]["y"] for i in pick])
        base = None
        for m in methods:
            p = np.concatenate([per_log[i]["p"][m] for i in pick])
            avoid = np.concatenate([per_log[i]["avoid"][m] for i in pick])
            got = metrics(p, y, avoid)
            if m == "discounted":
                base = got["log_loss"]
            for k, v in got.items():
                draws[m][k].append(v)
        for m in methods:
            draws[m]["ratio"].append(draws[m]["log_loss"][-1] / base)
    return {
        m: {
            k: [float(np.quantile(v, 0.05)), float(np.quantile(v, 0.95))] for k, v in d.items() if v
        }
        for m, d in draws.items()
    }


LABELS = {
    "discounted": "discounted running rate (g = 0.9; verdict: avoid below 0.05)",
    "laplace": "running Laplace rate",
    "constant": "constant (training folds' keep rate)",
    "blind": "description-blind: session dynamics only",
    "cells": "cells only: dynamics + category offsets",
    "words": "dynamics + linear text effects (not shipped)",
    "similarity": "similarity only: dynamics + kernel (shipped)",
    "full": "full: dynamics + cells + text effects + kernel",
}


def markdown(out: dict, methods: list[str], args) -> str:
    """The ablation table: every method on the same rows, 90% log-bootstrap intervals."""
    t, iv = out["table"], out["intervals_90"]

    def cell(m, k, d=4):
        return f"{t[m][k]:.{d}f} [{iv[m][k][0]:.{d}f}, {iv[m][k][1]:.{d}f}]"

    lines = [
        "# Similarity-weighted evidence: ablation (5-fold CV grouped by log)",
        "",
        f"Generated by `benchmarks/similarity_evidence_cv.py` on dev/ + dev2/: {out['logs']} logs"
        f" with predicted rows, {out['rows']} rows; unreadable: {out['corpus']['logs_unreadable']}"
        f" logs, {out['corpus']['rows_unreadable_in_read_logs']} rows of read logs (left out)."
        f" Kernel form chosen nested for: {'none' if args.no_nested else args.nested_kinds}."
        " Verdicts: avoid when P(keep) < floor with >= 3 earlier rows; the floor is chosen per"
        " outer fold on the other folds' predictions (max recall at keep-block <= 0.03).",
        "Intervals: 90%, 1000 bootstrap resamples of logs. Ratio = log loss / discounted rate's.",
        "",
        "| method | log loss | ratio vs discounted | ECE | Brier | avoid recall | keep-block |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        lines.append(
            f"| {LABELS.get(m, m)} | {cell(m, 'log_loss')} |"
            f" {t[m]['ratio_vs_discounted']:.3f} [{iv[m]['ratio'][0]:.3f}, {iv[m]['ratio'][1]:.3f}] |"
            f" {cell(m, 'ece')} | {cell(m, 'brier')} | {cell(m, 'avoid_recall', 3)} |"
            f" {cell(m, 'keep_block', 3)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--out", default=str(Path(__file__).with_name("similarity_evidence_cv.json"))
    )
    parser.add_argument("--kinds", default="blind,cells,words,similarity,full")
    parser.add_argument("--no-nested", action="store_true", help="fix the form to store/h (fast)")
    parser.add_argument(
        "--nested-kinds", default="similarity", help="kinds whose kernel form is chosen nested"
    )
    parser.add_argument(
        "--markdown", default=str(Path(__file__).with_name("similarity_evidence_ablation.md"))
    )
    args = parser.parse_args()
    started = time.perf_counter()
    raw, note = load_corpus(progress=lambda m: print(m, file=sys.stderr))
    logs = prepare(raw)
    cats = categories(logs)
    check_against_model(logs[:20], FULL_CHECK, cats)
    kinds = args.kinds.split(",")
    methods = ["discounted", "laplace", "constant"] + kinds
    oof = {log.file: {"p": {}, "alpha": {}, "beta": {}} for log in logs}
    chosen = {}
    for fold in range(FOLDS):
        train = [log for log in logs if fold_of(log.file) != fold]
        test = [log for log in logs if fold_of(log.file) == fold]
        constant = float(np.mean(np.concatenate([log.session.y for log in train])))
        for log in test:
            y = log.session.y
            oof[log.file]["p"]["discounted"] = se.predict_session(log.session, se.BASELINE).p_keep
            cum = np.concatenate([[0.0], np.cumsum(y)[:-1]])
            oof[log.file]["p"]["laplace"] = (cum + 1) / (np.arange(len(y)) + 2)
            oof[log.file]["p"]["constant"] = np.full(len(y), constant)
        for kind in kinds:
            if kind in args.nested_kinds.split(",") and not args.no_nested:
                features, fit_h, inner = choose_form(train, kind, cats)
            else:
                features, fit_h, inner = "store", True, {}
            params, _, _ = fit(train, Form(kind, features, fit_h, cats))
            chosen.setdefault(kind, []).append(
                {
                    "fold": fold,
                    "form": f"{features}/{'h' if fit_h else 'h=1'}",
                    "inner": inner,
                    "params": params.as_dict(),
                }
            )
            for log, pred in zip(test, predictions(test, params), strict=True):
                oof[log.file]["p"][kind] = pred.p_keep
            print(
                f"fold {fold} {kind}: {features}/{fit_h} {time.perf_counter() - started:.0f}s",
                file=sys.stderr,
            )
    # verdicts: floor per outer fold from the other folds' out-of-fold predictions
    floors = {}
    for m in methods:
        for fold in range(FOLDS):
            others = [log for log in logs if fold_of(log.file) != fold]
            p = np.concatenate([oof[log.file]["p"][m] for log in others])
            y = np.concatenate([log.session.y for log in others])
            h = np.concatenate([np.arange(len(log.session.y)) for log in others])
            floors[(m, fold)] = 0.05 if m == "discounted" else best_floor(p, y, h)
    per_log = []
    for log in logs:
        fold = fold_of(log.file)
        h = np.arange(len(log.session.y))
        avoid = {}
        for m in methods:
            p = oof[log.file]["p"][m]
            if m == "discounted":
                avoid[m] = p < 0.05
            else:
                avoid[m] = verdict_avoid(p, h, floors[(m, fold)])
        per_log.append(
            {"file": log.file, "y": log.session.y, "p": oof[log.file]["p"], "avoid": avoid}
        )
    y = np.concatenate([r["y"] for r in per_log])
    table = {}
    for m in methods:
        p = np.concatenate([r["p"][m] for r in per_log])
        avoid = np.concatenate([r["avoid"][m] for r in per_log])
        table[m] = metrics(p, y, avoid)
    for m in methods:
        table[m]["ratio_vs_discounted"] = table[m]["log_loss"] / table["discounted"]["log_loss"]
    intervals = bootstrap(per_log, methods, np.random.default_rng(0))
    curves = {}
    for m in kinds:
        p = np.concatenate([r["p"][m] for r in per_log])
        h = np.concatenate([np.arange(len(r["y"])) for r in per_log])
        curves[m] = tradeoff(p, y, h)
    out = {
        "corpus": note,
        "rows": int(len(y)),
        "logs": len(logs),
        "table": table,
        "intervals_90": intervals,
        "floors_per_fold": {f"{m}/{f}": v for (m, f), v in floors.items()},
        "tradeoff_oof": curves,
        "chosen": chosen,
        "wall_s": time.perf_counter() - started,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    Path(args.markdown).write_text(markdown(out, methods, args))
    for m in methods:
        t, iv = table[m], intervals[m]
        print(
            f"{m:11s} LL {t['log_loss']:.4f} [{iv['log_loss'][0]:.4f},{iv['log_loss'][1]:.4f}]"
            f" ratio {t['ratio_vs_discounted']:.3f} [{iv['ratio'][0]:.3f},{iv['ratio'][1]:.3f}]"
            f" ECE {t['ece']:.4f} [{iv['ece'][0]:.4f},{iv['ece'][1]:.4f}]"
            f" recall {t['avoid_recall']:.3f} block {t['keep_block']:.3f}"
        )


if __name__ == "__main__":
    main()
