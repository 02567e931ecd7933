"""How far the mixture-size rule (models/rate.py) reads a cell's numbers from the whole mixture.

For each dev log (../shared, dev/ and dev2/), its session is replayed on the population prior's
grid at a few cut points (no rows, 3, 15, half, all); at each, the rate of its first cells and
of other/other is read three ways: from the whole grid (the reference: every component but the
lightest, which hold 1e-5 of the weight), by the earlier rule (the heaviest 499 components, the
rest one moment-matched Beta) and by the shipped rule (the heaviest, the rest merged by group,
no more components in all). With --fitted, the same on the grids of check_latency.py's fitted
banks (benchmarks/out/, built by that benchmark): some sessions' first rows under each bank's
own fit. Printed: the largest and the 90th-percentile absolute error of the interval's ends and
of P(rate < base) against the reference, the median share of the weight the kept components
hold, and each rule's time for those numbers as a share of the reference's (same process, same
answers).

    python benchmarks/mixture_size_rule.py            # every log of dev/ and dev2/
    python benchmarks/mixture_size_rule.py --every 3  # every third log
    python benchmarks/mixture_size_rule.py --fitted   # and the fitted benchmark banks
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import experiment_rows
from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log
from nrr_stats.models import rate
from nrr_stats.models.engine import SessionEngine
from nrr_stats.models.population import load_population_prior

LOGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs"
RULES = {
    "whole mixture (reference)": (10**9, 1, 1),
    "earlier: heaviest 499, rest one Beta": (500, 1, 1),
    "shipped": (rate.MAX_COMPONENTS, rate.REST_BASE_BINS, rate.REST_SPREAD_BINS),
}


def session_rows(path: Path) -> list[dict]:
    """A log's rows as a bank stores them (the one log-to-rows function of ingest)."""
    return experiment_rows(read_results_log(path))


def read_cells(prior, sessions, rule) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean, low, high, P(below base)) per answer, the kept weight share, and seconds."""
    rate.MAX_COMPONENTS, rate.REST_BASE_BINS, rate.REST_SPREAD_BINS = rule
    answers, held, seconds = [], [], 0.0
    for rows in sessions:
        cells = sorted({(r["category"], r["direction"]) for r in rows})[:5] + [("other", "other")]
        for cut in sorted({0, 3, 15, len(rows) // 2, len(rows)}):
            engine = SessionEngine(prior, "s")
            engine.update(rows[:cut])
            grid = engine.grid
            weights = np.sort(grid.posterior_weights()[0].ravel())[::-1]
            most = rule[0] - rule[1] * rule[2]  # as rate.heaviest_components keeps
            held.append(weights[: min(most, weights.size)].sum())
            for category, direction in cells:
                started = time.perf_counter()
                mixture = grid.rate(category, direction, "")
                low, high = mixture.interval(0.9)
                below = mixture.prob_below_base()
                seconds += time.perf_counter() - started
                answers.append((mixture.mean(), low, high, below))
    return np.array(answers), np.array(held), seconds


def fitted_banks(sessions_per_bank: int = 12, rows: int = 120) -> list[tuple[str, object, list]]:
    """(label, the bank's fit, some sessions' first rows) for each fitted benchmark bank."""
    from nrr_stats.check import Checker

    out = []
    for path in sorted((Path(__file__).resolve().parent / "out").glob("bank-*.db")):
        with open_bank(path, create=False) as bank, Checker(bank) as checker:
            prior = checker.prior()
            if checker.fit is None:
                continue
            ids = [row["id"] for row in bank.query("SELECT id FROM sessions ORDER BY id", [])]
            step = max(len(ids) // sessions_per_bank, 1)
            chosen = ids[::step][:sessions_per_bank]
            out.append(
                (f"{path.stem}, its fit", prior, [bank.experiments(i)[:rows] for i in chosen])
            )
    return out


def report(label: str, prior, sessions: list) -> None:
    saved = (rate.MAX_COMPONENTS, rate.REST_BASE_BINS, rate.REST_SPREAD_BINS)
    try:
        results = {name: read_cells(prior, sessions, rule) for name, rule in RULES.items()}
    finally:
        rate.MAX_COMPONENTS, rate.REST_BASE_BINS, rate.REST_SPREAD_BINS = saved
    reference, _, reference_seconds = results["whole mixture (reference)"]
    print(f"\n{label}: {len(sessions)} sessions, {len(reference)} cell answers")
    print(
        "| rule | interval ends: max / p90 error | P(below base): max / p90 | "
        "weight kept as is (median) | time vs the whole |"
    )
    print("|---|---|---|---|---|")
    for name, (answers, held, seconds) in results.items():
        error = np.abs(answers - reference)
        ends = np.maximum(error[:, 1], error[:, 2])
        print(
            f"| {name} | {ends.max():.4f} / {np.percentile(ends, 90):.4f} | "
            f"{error[:, 3].max():.4f} / {np.percentile(error[:, 3], 90):.4f} | "
            f"{np.median(held):.2f} | {seconds / reference_seconds:.3f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="read every k-th log")
    parser.add_argument("--fitted", action="store_true", help="also the fitted benchmark banks")
    args = parser.parse_args(argv)
    if not LOGS.exists():
        print(f"no dev logs at {LOGS}", file=sys.stderr)
        return 2
    sessions = []
    for path in sorted(LOGS.glob("dev*/*.tsv"))[:: args.every]:
        try:
            sessions.append(session_rows(path))
        except NrrInputError:
            continue  # not a readable log: nothing to replay
    report("dev logs' sessions, population prior", load_population_prior(), sessions)
    if args.fitted:
        for label, prior, bank_sessions in fitted_banks():
            report(label, prior, bank_sessions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
