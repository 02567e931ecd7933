"""The dev-corpus ablation of `nrr backtest`: writes benchmarks/ablation.md.

Usage: python benchmarks/backtest_ablation.py [DEV_DIR] [--processes N] [--out FILE] [--fresh]

Every engine row is predicted with a prior that never saw its log (5-fold priors, models/README.md).
The session-dynamics knob is chosen per fold by nested cross-validation: for the logs of fold f,
the candidate with the lowest log loss on the OTHER folds' logs is used, so no log's own outcome
picks its configuration. Same rows, same metrics, one table; wall times measured in this run.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from nrr_stats.backtest.ablation import (
    assemble,
    log_losses,
    nested_choice,
    run_config,
    verdict_rates,
)
from nrr_stats.backtest.curation import OfflineCuratorWeights
from nrr_stats.backtest.metrics import Scores
from nrr_stats.backtest.summary import log_loss_ratio_interval, markdown_table
from nrr_stats.backtest.walk import BacktestOptions, Dynamics
from nrr_stats.decide import DecisionRule
from nrr_stats.models.population import (
    default_cache_dir,
    fold_assignment,
    load_population_prior,
)

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared/data/autoresearch-logs/dev"
OUT = Path(__file__).resolve().parent / "ablation.md"
# Runs are cached between invocations (local only, never committed); --fresh ignores the cache.
RUN_CACHE = default_cache_dir() / "ablation-runs"

# Candidates set by reasoning, not searched finely: a kept change moves the configuration, so
# evidence from before it is worth a fraction of evidence under the current one.
# Phase and plateau terms centre the session offset's prior (logit scale, per log(1 + count)).
CANDIDATES = {
    "no dynamics": Dynamics(),
    "keep discount 0.85": Dynamics(keep_discount=0.85),
    "keep discount 0.7": Dynamics(keep_discount=0.7),
    "keep discount 0.5": Dynamics(keep_discount=0.5),
    "keep discount 0.7 + phase 0.3": Dynamics(keep_discount=0.7, phase=0.3),
    "keep discount 0.7 + plateau 0.3": Dynamics(keep_discount=0.7, plateau=0.3),
    "keep discount 0.7 + forgetting 0.97": Dynamics(keep_discount=0.7, forgetting=0.97),
}
# The verdict is "avoid when P(keep) < floor" (nrr_stats/decide.py); the cell engine's rows are
# scored over the same floors (the similarity-evidence model's own curve is in
# benchmarks/similarity_evidence_cv.py).
RULES = {
    f"P(keep)<{floor} n>={me}": DecisionRule(avoid_below=floor, min_history=me)
    for floor in (0.03, 0.04, 0.05, 0.06, 0.08)
    for me in (2.0, 3.0, 5.0)
}
MAX_KEEP_BLOCK = 0.05


def dev_logs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.tsv") if p.name != "MANIFEST.tsv")


def main(argv: list[str]) -> int:
    options_with_values = ("--processes", "--out")
    args = [
        a
        for i, a in enumerate(argv)
        if not a.startswith("--") and (i == 0 or argv[i - 1] not in options_with_values)
    ]
    processes = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 2
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else OUT
    directory = Path(args[0]) if args else DEFAULT_DEV
    paths = dev_logs(directory)
    shipped = load_population_prior()
    if not paths or shipped is None:
        print("needs the dev corpus and models/population_prior.npz", file=sys.stderr)
        return 3
    folds = fold_assignment([tuple(p) for p in shipped.meta["training_logs"]])
    fold_of_log = {p.name: folds[p.name] for p in paths}
    curator = OfflineCuratorWeights()
    base = BacktestOptions(curator_weights=curator)
    started = time.perf_counter()
    walls: dict[str, float] = {}

    def run(name: str, options: BacktestOptions, prior: str | None = "shipped"):
        key = hashlib.sha256(
            repr(
                (
                    name,
                    options.dynamics,
                    options.curator_weights is not None,
                    prior,
                    shipped.meta.get("created_at"),
                    [p.name for p in paths],
                )
            ).encode()
        ).hexdigest()[:16]
        cached = RUN_CACHE / f"{key}.pkl"
        if "--fresh" not in argv and cached.is_file():
            result = pickle.loads(cached.read_bytes())
        else:
            result = run_config(
                paths, options, prior=prior, corpus_dir=directory, processes=processes
            )
            RUN_CACHE.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps(result))
        walls[name] = result.wall_s
        print(f"{name}: {result.scores['engine']} ({result.wall_s:.0f} s)", flush=True)
        return result

    candidates = {name: run(name, replace(base, dynamics=dyn)) for name, dyn in CANDIDATES.items()}
    losses = {name: log_losses(result) for name, result in candidates.items()}
    chosen = nested_choice(losses, fold_of_log)
    full = assemble(candidates, chosen, fold_of_log)

    def per_fold(results_for: dict[str, object]) -> object:
        return assemble(results_for, chosen, fold_of_log)

    no_prior = per_fold(
        {
            name: run(f"no prior, {name}", replace(base, dynamics=CANDIDATES[name]), None)
            for name in set(chosen.values())
        }
    )
    if curator is not None:
        no_curator = per_fold(
            {
                name: run(
                    f"no curator, {name}",
                    replace(base, dynamics=CANDIDATES[name], curator_weights=None),
                )
                for name in set(chosen.values())
            }
        )
    else:
        no_curator = None
    no_dynamics = candidates["no dynamics"]

    named: dict[str, Scores] = {
        "full engine": full.scores["engine"],
        "without population prior": no_prior.scores["engine"],
        "without session dynamics": no_dynamics.scores["engine"],
    }
    if no_curator is not None:
        named["without curator weights"] = no_curator.scores["engine"]
    named["constant (dev keep rate)"] = full.scores["constant"]
    named["running Laplace"] = full.scores["running_laplace"]

    rows = full.rows()
    y = [r.y for r in rows]
    ratio = log_loss_ratio_interval(
        [r.p_keep for r in rows], [r.p_laplace for r in rows], y, [r.file for r in rows]
    )
    candidate_lines = [
        f"| {name} | {r.scores['engine'].log_loss:.4f} | {r.scores['engine'].ece:.4f} |"
        f" {r.scores['engine'].avoid_recall:.3f} | {r.scores['engine'].keep_block_rate:.3f} |"
        f" {walls[name]:.0f} |"
        for name, r in candidates.items()
    ]
    rule_lines, rule_choice = _rules_nested(rows, fold_of_log)
    concentration = _avoid_concentration(rows)
    engine = named["full engine"]
    laplace = named["running Laplace"]
    targets = [
        (
            "log loss <= 95% of running Laplace",
            f"{engine.log_loss / laplace.log_loss:.1%} (90% log-bootstrap {ratio[1]:.1%}..{ratio[2]:.1%})",
            engine.log_loss <= 0.95 * laplace.log_loss,
        ),
        ("ECE <= 0.03", f"{engine.ece:.4f}", engine.ece <= 0.03),
        (
            "keep-block <= 5% with avoid recall >= 20%",
            f"keep-block {engine.keep_block_rate:.3f}, avoid recall {engine.avoid_recall:.3f}",
            engine.keep_block_rate <= 0.05 and engine.avoid_recall >= 0.20,
        ),
    ]
    stale = sum(r.stale for r in rows)
    lines = [
        "# Backtest ablation on the dev corpus",
        "",
        f"Generated by `python benchmarks/backtest_ablation.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
        f" total wall time {time.perf_counter() - started:.0f} s ({processes} worker processes,"
        " 2 shared cores).",
        "",
        f"{len(paths)} dev logs, {engine.rows} predicted rows (EVALUATION.md protocol). Every engine"
        " row is predicted with a 5-fold prior that never saw its log (models/README.md). Session"
        " dynamics chosen per fold by nested cross-validation (below); curator weights from the"
        " offline rules curator"
        + ("" if curator is not None else " (unavailable: that row is omitted)")
        + ". Running Laplace = (keeps+1)/(n+2) over the log's predicted rows so far; constant ="
        f" the dev corpus's keep rate {full.constant_rate:.4f}.",
        "",
        markdown_table(named),
        "",
        f"Engine log loss / running Laplace: {ratio[0]:.3f}, 90% interval {ratio[1]:.3f}..{ratio[2]:.3f}"
        " (bootstrap over logs). Rows whose importance ESS share fell below 0.3 (stale):"
        f" {stale} of {engine.rows}.",
        "",
        *concentration,
        "",
        "## Targets (held-out priors)",
        "",
        "| target | figure | met |",
        "|---|---|---|",
        *[f"| {name} | {figure} | {'yes' if ok else 'no'} |" for name, figure, ok in targets],
        "",
        "## Session dynamics candidates (each over all rows; the full engine uses the nested choice)",
        "",
        "| candidate | log loss | ECE | avoid recall | keep-block | wall s |",
        "|---|---|---|---|---|---|",
        *candidate_lines,
        "",
        "Nested choice per fold: "
        + ", ".join(f"fold {f}: {name}" for f, name in sorted(chosen.items())),
        "",
        "## Decision rule (verdict thresholds), chosen across folds",
        "",
        "Per fold: among the rules below, the one with the highest avoid recall whose keep-block"
        f" rate stays <= {MAX_KEEP_BLOCK:.0%} on the other folds' rows; scored on the fold's own rows.",
        "",
        *rule_lines,
        "",
        "Nested choice per fold: "
        + ", ".join(f"fold {f}: {name}" for f, name in sorted(rule_choice.items())),
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out.read_text())
    return 0


def _avoid_concentration(rows) -> list[str]:
    """Which logs the avoid verdicts fall in, and the verdict rates without the busiest log."""
    from collections import Counter

    avoids = Counter(r.file for r in rows if r.verdict == "avoid")
    top, count = avoids.most_common(1)[0] if avoids else ("-", 0)
    rest = [r for r in rows if r.file != top]
    failed = [r for r in rest if r.y == 0]
    kept = [r for r in rest if r.y == 1]
    per_log = {}
    for r in rows:
        if r.y == 0:
            hit = per_log.setdefault(r.file, [0, 0])
            hit[0] += r.verdict == "avoid"
            hit[1] += 1
    macro = np.mean([a / n for a, n in per_log.values()])
    exact = sum(r.verdict == "avoid" and r.exact_repeat for r in rows)
    exact_kept = sum(r.verdict == "avoid" and r.exact_repeat and r.y == 1 for r in rows)
    return [
        f"Avoid verdicts are concentrated: {count} of {sum(avoids.values())} fall in one log"
        f" ({top}, {sum(r.file == top for r in rows)} rows). Without that log: avoid recall"
        f" {sum(r.verdict == 'avoid' for r in failed) / max(len(failed), 1):.3f},"
        f" keep-block {sum(r.verdict == 'avoid' for r in kept) / max(len(kept), 1):.3f}"
        f" ({len(rest)} rows). Mean over logs of the per-log avoid recall: {macro:.3f}."
        f" Exact repeats gave {exact} avoids, {exact_kept} of them on rows that were kept.",
    ]


def _rules_nested(rows, fold_of_log) -> tuple[list[str], dict[int, str]]:
    """Score each rule over all rows, and pick per fold on the other folds (recall, block <= 5%)."""
    table = [
        "| rule | avoid recall | keep-block | avoid precision | avoids |",
        "|---|---|---|---|---|",
    ]
    for name, rule in RULES.items():
        rates = verdict_rates(rows, rule)
        table.append(
            f"| {name} | {rates['avoid_recall']:.3f} | {rates['keep_block_rate']:.3f} |"
            f" {rates['avoid_precision'] or 0:.3f} | {rates['avoids']} |"
        )
    choice: dict[int, str] = {}
    held_out = []
    for fold in sorted(set(fold_of_log.values())):
        train = [r for r in rows if fold_of_log[r.file] != fold]
        test = [r for r in rows if fold_of_log[r.file] == fold]
        best, best_recall = "p>=0.95 ratio<=0.6 n>=3.0", -1.0
        for name, rule in RULES.items():
            rates = verdict_rates(train, rule)
            if rates["keep_block_rate"] <= MAX_KEEP_BLOCK and rates["avoid_recall"] > best_recall:
                best, best_recall = name, rates["avoid_recall"]
        choice[fold] = best
        held_out.extend((r, RULES[best]) for r in test)
    kept = [r for r, _ in held_out if r.y == 1]
    failed = [r for r, _ in held_out if r.y == 0]
    blocked = sum(verdict_rates([r], rule)["avoids"] for r, rule in held_out if r.y == 1)
    avoided = sum(verdict_rates([r], rule)["avoids"] for r, rule in held_out if r.y == 0)
    table.append(
        f"| nested choice (held out) | {avoided / max(len(failed), 1):.3f} |"
        f" {blocked / max(len(kept), 1):.3f} | {avoided / max(avoided + blocked, 1):.3f} |"
        f" {avoided + blocked} |"
    )
    return table, choice


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
