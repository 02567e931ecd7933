"""Accuracy of the description parser on the hand-labelled dev descriptions.

Each labelled row is parsed the way ingest parses it: its log is walked in order with a
ConfigTracker, so a target-only change ("LR to 0.05") sees the configuration kept before it.
Prints category / direction / parameter accuracy (all high-confidence rows, and the two halves of
the labelled files: A was used for tuning, B is the held-out half), a confusion summary and misses.

Baseline in the same run: the majority answer (category "other", direction "increase").

Usage: python benchmarks/parser_accuracy.py [--labels TSV] [--logs DIR] [--all-confidence] [--quiet]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import sys
from collections import Counter
from pathlib import Path

from nrr_stats.parser import ConfigTracker, ParsedChange, parse_description
from nrr_stats.parser.tracker import KEPT_STATUSES

# --- a minimal log reader: descriptions and statuses in file order (ingest has the full one) ---
STATUS_COLUMNS = ("status", "decision", "verdict", "outcome", "kept", "keep", "result")
DESCRIPTION_COLUMNS = (
    "description",
    "desc",
    "change",
    "experiment_desc",
    "model_description",
    "mutation",
    "hypothesis",
    "note",
    "notes",
    "title",
)
KEEP_WORDS = {"keep", "kept", "accepted", "accept", "best", "improved", "yes", "true", "baseline"}


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header cells (lower-cased, stripped) and data rows of a TSV log, comment and blank lines dropped."""
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    lines = [
        line for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")
    ]
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter="\t", quoting=csv.QUOTE_NONE))
    header_at = 0
    for index, row in enumerate(rows[:5]):
        cells = {cell.strip().lower() for cell in row}
        if cells & set(STATUS_COLUMNS) or cells & set(DESCRIPTION_COLUMNS):
            header_at = index
            break
    header = [cell.strip().lower() for cell in rows[header_at]] if rows else []
    data = [[cell.strip() for cell in row] for row in rows[header_at + 1 :]]
    return header, data


def descriptions_and_statuses(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """Each row's description, status word (keep/other) and raw cells, in file order."""
    header, data = read_rows(path)
    description_at = next(
        (header.index(n) for n in DESCRIPTION_COLUMNS if n in header), len(header) - 1
    )
    status_at = next((header.index(n) for n in STATUS_COLUMNS if n in header), None)
    descriptions, statuses = [], []
    for row in data:
        descriptions.append(row[description_at] if description_at < len(row) else "")
        raw = row[status_at].lower() if status_at is not None and status_at < len(row) else ""
        statuses.append("keep" if raw in KEEP_WORDS else raw or "other")
    return descriptions, statuses, data


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LABELS = SHARED / "data" / "labels" / "dev-descriptions.tsv"
LOGS = SHARED / "data" / "autoresearch-logs" / "dev"


def half_of(file_name: str) -> str:
    """A stable split of labelled files into halves A (tuning) and B (held out)."""
    return "A" if hashlib.sha256(file_name.encode()).digest()[0] % 2 == 0 else "B"


def load_labels(path: Path, all_confidence: bool) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row for row in rows if all_confidence or row["confidence"] == "high"]


def parse_in_context(labels: list[dict[str, str]], logs: Path) -> list[ParsedChange]:
    """Parse each labelled description with the kept configuration of its log's earlier rows."""
    by_file: dict[str, list[int]] = {}
    for index, row in enumerate(labels):
        by_file.setdefault(row["file"], []).append(index)
    parsed: list[ParsedChange | None] = [None] * len(labels)
    for file_name, indices in by_file.items():
        log = logs / file_name
        if not log.exists():
            for index in indices:
                parsed[index] = parse_description(labels[index]["description"])
            continue
        descriptions, statuses, rows = descriptions_and_statuses(log)
        tracker = ConfigTracker()
        wanted = {labels[i]["description"]: i for i in indices}
        for text, status, cells in zip(descriptions, statuses, rows, strict=True):
            hit = next((cell for cell in cells if cell in wanted), None)
            if hit is not None and parsed[wanted[hit]] is None:
                parsed[wanted[hit]] = tracker.parse(hit)
            tracker.observe(tracker.parse(text), kept=status in KEPT_STATUSES)
        for index in indices:
            if parsed[index] is None:
                parsed[index] = parse_description(labels[index]["description"])
    return [p for p in parsed if p is not None]


def wilson(hits: int, n: int, z: float = 1.645) -> tuple[float, float]:
    """90% Wilson interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def line(name: str, hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    share = hits / n if n else float("nan")
    return f"  {name:<11} {share:6.1%}  ({hits}/{n}, 90% CI {low:.1%}-{high:.1%})"


def report(labels: list[dict[str, str]], parsed: list[ParsedChange], quiet: bool) -> None:
    fields = (("category", "category"), ("direction", "direction"), ("parameter", "parameter"))
    for subset_name, keep in (
        ("all labelled files", lambda r: True),
        ("half A (tuning)", lambda r: half_of(r["file"]) == "A"),
        ("half B (held out)", lambda r: half_of(r["file"]) == "B"),
    ):
        chosen = [(r, p) for r, p in zip(labels, parsed, strict=True) if keep(r)]
        print(f"{subset_name}: {len(chosen)} rows, {len({r['file'] for r, _ in chosen})} files")
        for name, attribute in fields:
            hits = sum(r[name] == getattr(p, attribute) for r, p in chosen)
            print(line(name, hits, len(chosen)))
        both = sum(r["category"] == p.category and r["direction"] == p.direction for r, p in chosen)
        print(line("cat+dir", both, len(chosen)))
        baseline_cat = sum(r["category"] == "other" for r, _ in chosen)
        baseline_dir = sum(r["direction"] == "increase" for r, _ in chosen)
        print(line("base cat", baseline_cat, len(chosen)) + "  <- majority answer 'other'")
        print(line("base dir", baseline_dir, len(chosen)) + "  <- majority answer 'increase'")
    print("\ncategory confusions (label -> parsed: count):")
    confusions = Counter(
        (r["category"], p.category)
        for r, p in zip(labels, parsed, strict=True)
        if r["category"] != p.category
    )
    for (label, got), count in confusions.most_common(12):
        print(f"  {label:>18} -> {got:<18} {count}")
    print("direction confusions:")
    confusions = Counter(
        (r["direction"], p.direction)
        for r, p in zip(labels, parsed, strict=True)
        if r["direction"] != p.direction
    )
    for (label, got), count in confusions.most_common(12):
        print(f"  {label:>9} -> {got:<9} {count}")
    if quiet:
        return
    print("\nmisses (label | parsed | description):")
    for r, p in zip(labels, parsed, strict=True):
        if r["category"] != p.category or r["direction"] != p.direction:
            print(
                f"  [{half_of(r['file'])}] {r['category']}/{r['direction']}/{r['parameter']} | "
                f"{p.category}/{p.direction}/{p.parameter}/{p.from_value}/{p.to_value} | "
                f"{r['description'][:110]}"
            )


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--labels", type=Path, default=LABELS)
    options.add_argument("--logs", type=Path, default=LOGS)
    options.add_argument(
        "--all-confidence", action="store_true", help="include low-confidence rows"
    )
    options.add_argument("--quiet", action="store_true", help="no list of misses")
    args = options.parse_args()
    if not args.labels.exists():
        print(f"no labels at {args.labels}", file=sys.stderr)
        return 1
    labels = load_labels(args.labels, args.all_confidence)
    parsed = parse_in_context(labels, args.logs)
    report(labels, parsed, args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
