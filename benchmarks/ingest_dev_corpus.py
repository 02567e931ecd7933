"""Read every dev log and compare with MANIFEST.tsv: columns, direction, status counts, bad rows.

Usage: python benchmarks/ingest_dev_corpus.py [DEV_DIR]   (default ../shared/data/autoresearch-logs/dev)
The reader never sees the manifest; this script only scores it.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import classify_outcomes, read_results_log

DEFAULT_DEV = Path(__file__).resolve().parents[1].parent / "shared/data/autoresearch-logs/dev"
STATUSES = ("keep", "discard", "crash", "other")


def main(dev: Path) -> int:
    manifest = list(csv.DictReader((dev / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
    totals = Counter()
    outcome_totals: Counter[str] = Counter()
    keys: dict[str, list[str]] = {}
    started = time.perf_counter()
    for entry in manifest:
        name = entry["file"]
        totals["files"] += 1
        try:
            log = read_results_log(dev / name)
        except NrrInputError as error:
            totals["errors"] += 1
            print(f"ERROR {name}: {error}")
            continue
        keys.setdefault(log.session_key, []).append(name)
        counts = Counter(row.status for row in log.rows)
        expected = {s: int(entry[f"n_{s}"]) for s in STATUSES}
        got = {s: counts.get(s, 0) for s in STATUSES}
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
        flag = "" if (metric_ok and direction_ok and counts_ok and not log.bad_rows) else "  <--"
        print(
            f"{name[:48]:48} id={log.columns['id']!s:14.14} metric={log.metric_name!s:16.16}"
            f"{'' if metric_ok else '(want ' + entry['metric_column'] + ')'} "
            f"desc={log.columns['description']!s:14.14} status={log.columns['status']!s:8.8} "
            f"dir={log.metric_direction}/{log.direction_source}"
            f"{'' if direction_ok else '(want ' + entry['metric_direction'] + ')'} "
            f"k/d/c/o={'/'.join(str(got[s]) for s in STATUSES)}"
            f"{'' if counts_ok else ' want ' + '/'.join(str(expected[s]) for s in STATUSES)}"
            f" bad={len(log.bad_rows)}{flag}"
        )
        for bad in log.bad_rows:
            print(f"    bad line {bad.line_number} (row {bad.row_number}): {bad.reason}")
    elapsed = time.perf_counter() - started
    n = totals["files"]
    print()
    print(f"files read without error: {n - totals['errors']}/{n}")
    print(f"metric column as manifest: {totals['metric_ok']}/{n}")
    print(f"direction as manifest:     {totals['direction_ok']}/{n}")
    print(f"status counts as manifest: {totals['counts_ok']}/{n}")
    print(
        f"rows read: {totals['rows']} of {totals['manifest_rows']} manifest rows; bad rows: {totals['bad_rows']}"
    )
    print(
        "status totals got/want: "
        + ", ".join(f"{s} {totals['got_' + s]}/{totals['want_' + s]}" for s in STATUSES)
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome_totals.items())))
    shared = [names for names in keys.values() if len(names) > 1]
    print(
        f"session keys: {len(keys)} distinct for {n - totals['errors']} logs; shared by: {shared}"
    )
    print(f"time: {elapsed:.2f} s for {n} logs")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DEV))
