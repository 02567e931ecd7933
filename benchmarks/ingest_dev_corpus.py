"""Read every dev log and compare with its MANIFEST.tsv: columns, direction, status counts,
bad rows, and the share of outcome rows (keep, discard or crash) stored as such.

Usage: python benchmarks/ingest_dev_corpus.py [--part looked|held|all] [FOLDER ...]
(default folders: ../shared/data/autoresearch-logs/dev and dev2)

The reader never sees the manifest; this script only scores it. The ingest rules were written
looking only at the `looked` part of each folder; the `held` part (about 30% of the logs, chosen
by a hash of the file name, see `held_out`) is only scored, and its figure is printed apart.
Outcome recall of a log = sum over keep/discard/crash of min(stored, manifest) / manifest
outcome rows (the manifest gives counts, not per-row labels).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import classify_outcomes, read_results_log

LOGS = Path(__file__).resolve().parents[1].parent / "shared/data/autoresearch-logs"
DEFAULT_FOLDERS = (LOGS / "dev", LOGS / "dev2")
STATUSES = ("keep", "discard", "crash", "other")
OUTCOMES = ("keep", "discard", "crash")
TARGET = 0.97


def held_out(file_name: str) -> bool:
    """The fixed held-out part: sha256 of the file name, 3 of every 10 hash residues."""
    return int(hashlib.sha256(file_name.encode("utf-8")).hexdigest(), 16) % 10 < 3


def outcome_recall(got: dict[str, int], want: dict[str, int]) -> tuple[int, int]:
    """(outcome rows stored as their manifest status, manifest outcome rows), by counts."""
    return sum(min(got[s], want[s]) for s in OUTCOMES), sum(want[s] for s in OUTCOMES)


def score_folder(folder: Path, part: str) -> dict[str, tuple]:
    """Print one line per log of `part`; return {part: (stored, wanted, logs, logs >= 97%,
    [(stored, wanted) per log])}."""
    manifest = list(
        csv.DictReader((folder / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")
    )
    totals: Counter[str] = Counter()
    outcome_totals: Counter[str] = Counter()
    recall: dict[str, list] = {"looked": [0, 0, 0, 0, []], "held": [0, 0, 0, 0, []]}
    keys: dict[str, list[str]] = {}
    started = time.perf_counter()
    print(f"== {folder}")
    for entry in manifest:
        name = entry["file"]
        which = "held" if held_out(name) else "looked"
        if part != "all" and which != part:
            continue
        totals["files"] += 1
        expected = {s: int(entry[f"n_{s}"]) for s in STATUSES}
        try:
            log = read_results_log(folder / name)
        except NrrInputError as error:
            totals["errors"] += 1
            stored, wanted = 0, sum(expected[s] for s in OUTCOMES)
            recall[which][1] += wanted
            recall[which][2] += 1
            recall[which][4].append((0, wanted))
            print(f"ERROR [{which}] {name}: {error}  recall 0/{wanted}")
            continue
        keys.setdefault(log.session_key, []).append(name)
        counts = Counter(row.status for row in log.rows)
        got = {s: counts.get(s, 0) for s in STATUSES}
        stored, wanted = outcome_recall(got, expected)
        share = stored / wanted if wanted else 1.0
        for i, value in enumerate((stored, wanted, 1, share >= TARGET)):
            recall[which][i] += value
        recall[which][4].append((stored, wanted))
        metric_ok = log.metric_name == entry["metric_column"]
        direction_ok = log.metric_direction == entry["metric_direction"]
        counts_ok = got == expected
        totals["metric_ok"] += metric_ok
        totals["direction_ok"] += direction_ok
        totals["counts_ok"] += counts_ok
        totals["rows"] += len(log.rows)
        totals["bad_rows"] += len(log.bad_rows)
        totals["manifest_rows"] += int(entry["rows"])
        for s in STATUSES:
            totals[f"got_{s}"] += got[s]
            totals[f"want_{s}"] += expected[s]
        outcomes = classify_outcomes(
            [r.metric for r in log.rows],
            [r.status for r in log.rows],
            log.metric_direction,
            [r.description for r in log.rows],
        )
        outcome_totals.update(o for o in outcomes if o)
        fine = metric_ok and direction_ok and counts_ok and not log.bad_rows
        flag = "" if fine else ("  <--" if share >= TARGET else "  <-- RECALL")
        print(
            f"[{which:6}] {name[:46]:46} id={log.columns['id']!s:12.12} "
            f"metric={log.metric_name!s:14.14}"
            f"{'' if metric_ok else '(want ' + entry['metric_column'] + ')'} "
            f"desc={log.columns['description']!s:12.12} status={log.columns['status']!s:8.8} "
            f"dir={log.metric_direction}/{log.direction_source}"
            f"{'' if direction_ok else '(want ' + entry['metric_direction'] + ')'} "
            f"k/d/c/o={'/'.join(str(got[s]) for s in STATUSES)}"
            f"{'' if counts_ok else ' want ' + '/'.join(str(expected[s]) for s in STATUSES)}"
            f" recall={stored}/{wanted} bad={len(log.bad_rows)}{flag}"
        )
        for note in getattr(log, "repairs", ()):  # older readers had none
            print(f"    repair: {note}")
        for bad in log.bad_rows[:5]:
            print(f"    bad line {bad.line_number} (row {bad.row_number}): {bad.reason}")
        if len(log.bad_rows) > 5:
            print(f"    ... and {len(log.bad_rows) - 5} more bad rows")
    elapsed = time.perf_counter() - started
    n = totals["files"]
    print()
    print(f"files read without error: {n - totals['errors']}/{n}")
    print(f"metric column as manifest: {totals['metric_ok']}/{n}")
    print(f"direction as manifest:     {totals['direction_ok']}/{n}")
    print(f"status counts as manifest: {totals['counts_ok']}/{n}")
    print(
        f"rows read: {totals['rows']} of {totals['manifest_rows']} manifest rows; "
        f"bad rows: {totals['bad_rows']}"
    )
    print(
        "status totals got/want: "
        + ", ".join(f"{s} {totals['got_' + s]}/{totals['want_' + s]}" for s in STATUSES)
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome_totals.items())))
    shared = [names for names in keys.values() if len(names) > 1]
    print(f"session keys: {len(keys)} distinct; shared by: {shared}")
    print(f"time: {elapsed:.2f} s for {n} logs (disturbed by other load on the machine)")
    return {which: tuple(values) for which, values in recall.items() if values[2]}


def bootstrap_interval(per_log: list[tuple[int, int]], draws: int = 2000) -> tuple[float, float]:
    """95% interval of the pooled share, resampling logs (the unit a new user brings)."""
    data = np.array(per_log, dtype=float)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(data), size=(draws, len(data)))
    shares = data[picks, 0].sum(axis=1) / np.maximum(data[picks, 1].sum(axis=1), 1)
    low, high = np.quantile(shares, [0.025, 0.975])
    return float(low), float(high)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("looked", "held", "all"), default="all")
    parser.add_argument("folders", nargs="*", type=Path, default=list(DEFAULT_FOLDERS))
    args = parser.parse_args(argv)
    figures = {}
    for folder in args.folders:
        figures[folder.name] = score_folder(folder, args.part)
        print()
    print("outcome rows stored as such (pooled), logs at >= 97%:")
    for folder, parts in figures.items():
        for which, (stored, wanted, logs, passing, per_log) in sorted(parts.items()):
            share = stored / wanted if wanted else float("nan")
            low, high = bootstrap_interval(per_log)
            worst = min(s / w for s, w in per_log if w) if any(w for _, w in per_log) else 1.0
            print(
                f"  {folder:6} {which:6} {stored}/{wanted} = {share:.4f} "
                f"(95% log bootstrap {low:.4f}-{high:.4f}); {passing}/{logs} logs at >= "
                f"{TARGET:.0%}; worst log {worst:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
