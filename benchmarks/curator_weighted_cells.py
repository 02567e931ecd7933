"""Raw versus evidence-weighted cell table of the dev corpus, after offline curation.

Ingests every dev log into a throwaway bank, curates every failure with the rules, then prints
per (category, direction): experiments, keeps, raw and weighted failures, and the keep rate's
posterior mean with its 90% interval under a Beta(1, 1) prior, raw and weighted. The weighted
count is the power likelihood the hierarchy's fit uses (each failure counts `weight` times).

    python benchmarks/curator_weighted_cells.py [--weights FILE.toml] [--top 25]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from scipy.stats import beta

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.curator import apply_weights, curate, fetch_records, load_weights

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs" / "dev"


def rate(keeps: float, failures: float) -> str:
    a, b = keeps + 1.0, failures + 1.0
    low, high = beta.ppf([0.05, 0.95], a, b)
    return f"{a / (a + b):.3f} [{low:.3f}, {high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=Path,
        action="append",
        default=[],
        help="Another weight table to compare in the prequential check (repeatable).",
    )
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    logs = [p for p in sorted(DEV.glob("*.tsv")) if p.name != "MANIFEST.tsv"]
    with tempfile.TemporaryDirectory() as tmp:
        bank = open_bank(Path(tmp) / "bank.db")
        started = time.perf_counter()
        for path in logs:
            ingest_log(bank, path)
        ingested = time.perf_counter()
        summary = curate(bank, deep=True)
        curated = time.perf_counter()
        experiments = [e for e in bank.experiments() if e["status"] in ("keep", "discard", "crash")]
        records = fetch_records(bank, depth=1)
        alternatives = {}
        for path in args.weights:
            apply_weights(bank, load_weights(path))
            alternatives[path.name] = [
                e for e in bank.experiments() if e["status"] in ("keep", "discard", "crash")
            ]
    print(
        f"{len(logs)} dev logs, {len(experiments)} predicted-kind experiments; ingest {ingested - started:.1f} s,"
        f" offline curation {curated - ingested:.1f} s ({summary.written} depth-1 and {summary.deep_written}"
        f" depth-N records, {1000 * (curated - ingested) / max(1, summary.written + summary.deep_written):.2f} ms each)"
    )

    by_diagnosis: dict[str, list[float]] = defaultdict(list)
    for row in records:
        failure = row["record"]["failure"]
        by_diagnosis[f"{failure['layer']} / {failure['degree']}"].append(row["evidence_weight"])
    print("\nfailures by diagnosis: count, mean weight")
    for name, weights in sorted(by_diagnosis.items(), key=lambda kv: -len(kv[1])):
        print(f"  {name:<45} {len(weights):>5}  {sum(weights) / len(weights):.3f}")

    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for row in experiments:
        cell = cells[(row["category"], row["direction"])]
        cell["n"] += 1
        if row["status"] == "keep":
            cell["keep"] += 1
        else:
            cell["fail"] += 1
            cell["weighted"] += row["evidence_weight"]
    total = Counter()
    for cell in cells.values():
        total.update(cell)
    print(
        f"\nall cells: {total['n']} experiments, {total['keep']} keeps; failures raw {total['fail']},"
        f" weighted {total['weighted']:.1f} ({total['weighted'] / max(1, total['fail']):.2f} per failure)"
    )
    print(
        f"  keep rate raw {rate(total['keep'], total['fail'])}, weighted {rate(total['keep'], total['weighted'])}"
    )
    print(
        f"\ntop {args.top} cells by size: keep rate posterior mean [90% interval], Beta(1,1) prior"
    )
    print(
        f"{'category/direction':<32} {'n':>5} {'keep':>5} {'fail':>5} {'w.fail':>7}  {'raw':<24} {'weighted':<24}"
    )
    for (category, direction), cell in sorted(cells.items(), key=lambda kv: -kv[1]["n"])[
        : args.top
    ]:
        print(
            f"{category + '/' + direction:<32} {cell['n']:>5} {cell['keep']:>5} {cell['fail']:>5}"
            f" {cell['weighted']:>7.1f}  {rate(cell['keep'], cell['fail']):<24} {rate(cell['keep'], cell['weighted']):<24}"
        )

    print(
        "\nprequential check, per log in order (cell Beta posterior from earlier rows of the same log):"
    )
    runs = {"built-in table": experiments} | alternatives
    for label, rows in runs.items():
        for name, score in prequential(rows).items():
            if name != "weighted" and label != "built-in table":
                continue
            shown = f"weighted, {label}" if name == "weighted" else name
            print(
                f"  {shown:<34} log loss {score['log_loss']:.4f}  Brier {score['brier']:.4f}"
                f"  mean p {score['mean_p']:.3f} vs keep rate {score['keep_rate']:.3f}  (n={score['n']})"
            )


def prequential(
    experiments: list[dict], prior_strength: float = 4.0
) -> dict[str, dict[str, float]]:
    """Walk each log in order; predict keep per row from its cell's earlier rows in that log
    (Beta prior at the corpus keep rate), counting earlier failures raw or weighted; score both."""
    by_session: dict[int, list[dict]] = defaultdict(list)
    for row in experiments:
        by_session[row["session_id"]].append(row)
    base = sum(r["status"] == "keep" for r in experiments) / len(experiments)
    a0, b0 = prior_strength * base, prior_strength * (1 - base)
    scores: dict[str, list[tuple[float, int]]] = {"raw": [], "weighted": [], "running rate": []}
    for rows in by_session.values():
        rows.sort(key=lambda r: r["row_number"])
        keeps: Counter = Counter()
        fails: dict[str, Counter] = {"raw": Counter(), "weighted": Counter()}
        kept = 0
        for seen, row in enumerate(rows):
            cell = (row["category"], row["direction"])
            y = int(row["status"] == "keep")
            for name in ("raw", "weighted"):
                p = (keeps[cell] + a0) / (keeps[cell] + fails[name][cell] + a0 + b0)
                scores[name].append((p, y))
            scores["running rate"].append(((kept + 1) / (seen + 2), y))
            if y:
                keeps[cell] += 1
            else:
                fails["raw"][cell] += 1
                fails["weighted"][cell] += row["evidence_weight"]
            kept += y
    out = {}
    for name, pairs in scores.items():
        clipped = [(min(max(p, 1e-4), 1 - 1e-4), y) for p, y in pairs]
        out[name] = {
            "log_loss": -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in clipped)
            / len(clipped),
            "brier": sum((p - y) ** 2 for p, y in pairs) / len(pairs),
            "mean_p": sum(p for p, _ in pairs) / len(pairs),
            "keep_rate": sum(y for _, y in pairs) / len(pairs),
            "n": len(pairs),
        }
    return out


if __name__ == "__main__":
    main()
