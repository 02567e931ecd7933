"""Dev-corpus experiments: run engine configurations over many logs in parallel, and choose a
configuration per fold by cross-validation (nested: a log's configuration is chosen on the
other folds' logs only), so dynamics knobs are never tuned on the log being scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from nrr_stats.backtest.metrics import CLIP
from nrr_stats.backtest.walk import (
    BacktestOptions,
    BacktestResult,
    LogWalk,
    backtest_logs,
    score_result,
)


def _one_log(args: tuple) -> tuple[LogWalk, float | None]:
    path, prior, options, corpus_dir = args
    result = backtest_logs([path], prior=prior, options=options, corpus_dir=corpus_dir)
    return result.logs[0], result.constant_rate


def run_config(
    paths: Sequence[str | Path],
    options: BacktestOptions,
    *,
    prior: str | None = "shipped",
    corpus_dir: str | Path | None = None,
    processes: int = 2,
) -> BacktestResult:
    """`backtest_logs` with logs spread over worker processes (same rows, same order)."""
    import time

    started = time.perf_counter()
    jobs = [(str(p), prior, options, corpus_dir) for p in paths]
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            done = list(pool.map(_one_log, jobs))
    else:
        done = [_one_log(job) for job in jobs]
    result = BacktestResult(
        logs=[walk for walk, _ in done],
        scores={},
        constant_rate=done[0][1] if done else None,
        wall_s=0.0,
        prior_note="population prior, held-out fold priors" if prior else "no population prior",
    )
    result.scores = score_result(result)
    result.wall_s = time.perf_counter() - started
    return result


def log_losses(result: BacktestResult) -> dict[str, tuple[float, int]]:
    """Per log: (summed log loss of the engine, predicted rows)."""
    out = {}
    for log in result.logs:
        p = np.clip(np.array([r.p_keep for r in log.rows]), CLIP, 1 - CLIP)
        y = np.array([r.y for r in log.rows])
        out[log.file] = (float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).sum()), len(y))
    return out


def nested_choice(
    losses: Mapping[str, Mapping[str, tuple[float, int]]], fold_of_log: Mapping[str, int]
) -> dict[int, str]:
    """Per fold, the configuration with the lowest mean log loss over the OTHER folds' rows."""
    folds = sorted(set(fold_of_log.values()))
    chosen = {}
    for fold in folds:
        best, best_loss = None, np.inf
        for name, per_log in losses.items():
            total = sum(v[0] for f, v in per_log.items() if fold_of_log[f] != fold)
            rows = sum(v[1] for f, v in per_log.items() if fold_of_log[f] != fold)
            mean = total / max(rows, 1)
            if mean < best_loss:
                best, best_loss = name, mean
        chosen[fold] = best
    return chosen


def assemble(
    results: Mapping[str, BacktestResult], chosen: Mapping[int, str], fold_of_log: Mapping[str, int]
) -> BacktestResult:
    """One result whose log f comes from the configuration chosen for f's fold."""
    any_result = next(iter(results.values()))
    logs = []
    for log in any_result.logs:
        name = chosen[fold_of_log[log.file]]
        picked = next(w for w in results[name].logs if w.file == log.file)
        logs.append(replace(picked, prior=f"{picked.prior}; dynamics {name}"))
    result = BacktestResult(
        logs=logs,
        scores={},
        constant_rate=any_result.constant_rate,
        wall_s=sum(r.wall_s for r in results.values()),
        prior_note="nested cross-validated dynamics",
    )
    result.scores = score_result(result)
    return result


def verdict_rates(rows: Sequence, rule) -> dict[str, float | None]:
    """Avoid recall, keep-block rate and avoid precision of `rule` on stored row evidence."""
    from types import SimpleNamespace

    from nrr_stats.decide import decide

    avoid = np.array(
        [
            decide(
                SimpleNamespace(
                    p_keep=r.p_keep,
                    prob_below_base=r.prob_below_base,
                    base_rate=r.base_rate,
                    p_crash=r.p_crash,
                    n_weighted=r.n_weighted,
                ),
                exact_repeat=r.exact_repeat,
                near_repeats=r.near_repeats,
                rule=rule,
            )[0]
            == "avoid"
            for r in rows
        ]
    )
    kept = np.array([r.y == 1 for r in rows])

    def share(num, den):
        return float((num & den).sum() / den.sum()) if den.sum() else None

    return {
        "avoid_recall": share(avoid, ~kept),
        "keep_block_rate": share(avoid, kept),
        "avoid_precision": share(~kept, avoid),
        "avoids": int(avoid.sum()),
    }
