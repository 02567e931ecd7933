"""Accuracy of the description parser on the hand-labelled dev descriptions, held out by log.

Each labelled row is parsed the way ingest parses it: its log is read with the ingest reader and
walked in order with a ConfigTracker (observe after each row, kept = status keep), so a target-only
change ("LR to 0.05") sees the configuration kept before it.

The labelled logs (dev and dev2 label files) are split BY LOG into a part that may be read while
writing rules ("looked-at") and a part that is only scored ("held out"): a log is held out when a
hash of its name and the split seed falls below --held-out (0.35). Seed 0 is the development split:
its held-out rows are never printed (--misses prints looked-at misses only). Other seeds rotate the
split to show its spread; their held-out parts include logs seed 0 let a rule writer read, so the
clean figure is seed 0's, and "clean" shows each seed's held-out logs that seed 0 also held out.

Seed 0's held-out COUNTS guided earlier sessions' choices of rules, so issue 13's second pass also
split the looked-at logs BY REPOSITORY into two development folds (`development_fold`): rules were
written from one fold's misses and scored on the other (`--misses --fold K` lists one fold's), and
"held out, no sibling looked-at" scores the held-out logs none of whose sibling logs was read.

Issue 13's third pass (session 6) wrote its rules from seed 0's looked-at misses only (no other
seed's looked-at part, since those hold logs seed 0 keeps out) and checked each rule with phrasings
of its own (tests/test_parser_held_out_classes.py); a rotation's gain on logs seed 0 let a rule
writer read is not evidence that a rule generalises, so compare the "clean" lines.

Intervals: 90% percentile bootstrap over logs (the logs are resampled, rows stay with their log).
Baseline in the same run: the majority answer (category "other", direction "increase").

Usage: python benchmarks/parser_accuracy.py [--seeds 5] [--held-out 0.35] [--all-confidence]
       [--rules FILE] [--misses] [--json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nrr_stats.errors import NrrInputError
from nrr_stats.ingest.reader import read_results_log
from nrr_stats.parser import ConfigTracker, ParsedChange, Rules, load_rules, parse_description

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
LABEL_SETS = {
    "dev": (
        SHARED / "data" / "labels" / "dev-descriptions.tsv",
        SHARED / "data" / "autoresearch-logs" / "dev",
    ),
    "dev2": (
        SHARED / "data" / "labels" / "dev2-descriptions.tsv",
        SHARED / "data" / "autoresearch-logs" / "dev2",
    ),
}
# The old names, for callers that read the dev set alone.
LABELS, LOGS = LABEL_SETS["dev"]
HELD_OUT_SHARE = 0.35
DEVELOPMENT_SEED = 0
BOOTSTRAP_DRAWS = 2000


def is_held_out(
    file_name: str, seed: int = DEVELOPMENT_SEED, share: float = HELD_OUT_SHARE
) -> bool:
    """A stable split of labelled logs: True for the logs only scored, never read."""
    digest = hashlib.sha256(f"nrr-parser-split:{seed}:{file_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def development_fold(file_name: str, folds: int = 2) -> int:
    """Fold (0..folds-1) of a looked-at log, by a hash of its repository (siblings stay together).

    Issue 13's second pass (session 13d) wrote rules from one fold's misses only and scored the
    other fold, because seed 0's held-out counts had already guided earlier rule choices."""
    digest = hashlib.sha256(f"nrr-parser-fold-13d:{repository(file_name)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


def repository(file_name: str) -> str:
    """owner__repo of a log file name (sibling logs of one repository share it)."""
    return "__".join(file_name.removesuffix(".tsv").split("__")[:2])


def load_labels(path: Path, all_confidence: bool = False, logs: Path | None = None) -> list[dict]:
    """Label rows of one file (high confidence unless all_confidence), each with its logs folder."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    folder = logs if logs is not None else path.parent
    return [
        {**row, "logs": str(folder), "set": path.stem.split("-")[0]}
        for row in rows
        if all_confidence or row["confidence"] == "high"
    ]


def load_all_labels(all_confidence: bool = False) -> list[dict]:
    """Both label files, in file order."""
    labels: list[dict] = []
    for path, logs in LABEL_SETS.values():
        if path.exists():
            labels += load_labels(path, all_confidence, logs)
    return labels


# --- when the ingest reader refuses a log (a dialect it cannot read yet): a minimal TSV walk ---
STATUS_COLUMNS = ("status", "decision", "verdict", "outcome", "kept", "keep", "result")
DESCRIPTION_COLUMNS = ("description", "desc", "change", "hypothesis", "note", "notes", "title")
KEEP_WORDS = {"keep", "kept", "accepted", "accept", "best", "improved", "yes", "true"}


def _fallback_rows(path: Path) -> list[tuple[str, bool]]:
    text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    lines = [x for x in text.split("\n") if x.strip() and not x.lstrip().startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    at = next((header.index(n) for n in DESCRIPTION_COLUMNS if n in header), len(header) - 1)
    status_at = next((header.index(n) for n in STATUS_COLUMNS if n in header), None)
    out = []
    for row in rows[1:]:
        status = (
            row[status_at].strip().lower() if status_at is not None and status_at < len(row) else ""
        )
        out.append((row[at].strip() if at < len(row) else "", status in KEEP_WORDS))
    return out


def log_rows(path: Path) -> tuple[list[tuple[str, bool]], bool]:
    """(description, kept) per row as ingest reads the log; False when the fallback reader was used."""
    try:
        log = read_results_log(path)
    except NrrInputError:
        return _fallback_rows(path), False
    return [(row.description, row.status == "keep") for row in log.rows], True


def parse_in_context(
    labels: Sequence[dict], logs: Path | None = None, rules: Rules | None = None
) -> list[ParsedChange]:
    """Parse each labelled description with the kept configuration of its log's earlier rows.

    A label whose text is a row's description cut short (a long description was labelled by its
    opening) is matched to the first row that opens with it. A label whose text is not a row's
    description as ingest reads it is parsed without context (and counted by `unmatched`).
    """
    rules = rules or load_rules()
    by_log: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(labels):
        folder = str(logs) if logs is not None else row["logs"]
        by_log.setdefault((folder, row["file"]), []).append(index)
    parsed: list[ParsedChange | None] = [None] * len(labels)
    for (folder, file_name), indices in by_log.items():
        path = Path(folder) / file_name
        rows, _ = log_rows(path) if path.exists() else ([], False)
        pending: dict[str, list[int]] = {}
        for i in indices:
            pending.setdefault(labels[i]["description"].strip(), []).append(i)
        tracker = ConfigTracker(rules)
        for text, kept in rows:
            result = tracker.parse(text)
            waiting = pending.get(text.strip()) or _truncated_label(pending, text.strip())
            if waiting:
                parsed[waiting.pop(0)] = result
            tracker.observe(result, kept=kept)
        for i in indices:
            if parsed[i] is None:
                labels[i]["unmatched"] = "yes"
                parsed[i] = parse_description(labels[i]["description"], rules=rules)
    return [p for p in parsed if p is not None]


TRUNCATED_LABEL_CHARS = 40  # a shorter label text is matched exactly only


def _truncated_label(pending: dict[str, list[int]], text: str) -> list[int] | None:
    """The waiting labels whose text is the opening of this row's (longer) description."""
    for label_text, waiting in pending.items():
        if waiting and len(label_text) >= TRUNCATED_LABEL_CHARS and text.startswith(label_text):
            return waiting
    return None


# --- scores ---------------------------------------------------------------------------------------
def row_scores(label: dict, parsed: ParsedChange) -> dict[str, float | None]:
    """1/0 per measure for one row; None where the measure does not apply to the row."""
    named = bool(label["parameter"])
    return {
        "category": float(label["category"] == parsed.category),
        "direction": float(label["direction"] == parsed.direction),
        "cat+dir": float(
            label["category"] == parsed.category and label["direction"] == parsed.direction
        ),
        "param named": float(bool(parsed.parameter)) if named else None,
        "param exact": float(parsed.parameter == label["parameter"]) if named else None,
        "base cat": float(label["category"] == "other"),
        "base dir": float(label["direction"] == "increase"),
    }


MEASURES = (
    "category",
    "direction",
    "cat+dir",
    "param named",
    "param exact",
    "base cat",
    "base dir",
)


def bootstrap(
    logs: list[str], scores: list[dict], measure: str, rng: np.random.Generator
) -> tuple[float, float, float, int]:
    """Share, 90% bootstrap interval over logs, and the row count of one measure."""
    per_log: dict[str, list[float]] = {}
    for log, score in zip(logs, scores, strict=True):
        if score[measure] is not None:
            per_log.setdefault(log, []).append(score[measure])
    if not per_log:
        return (float("nan"), float("nan"), float("nan"), 0)
    hits = np.array([sum(v) for v in per_log.values()])
    counts = np.array([len(v) for v in per_log.values()])
    draws = rng.integers(0, len(hits), size=(BOOTSTRAP_DRAWS, len(hits)))
    shares = hits[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.quantile(shares, [0.05, 0.95])
    return (hits.sum() / counts.sum(), float(low), float(high), int(counts.sum()))


def summary(labels: list[dict], parsed: list[ParsedChange], keep: Callable[[dict], bool]) -> dict:
    chosen = [(r, p) for r, p in zip(labels, parsed, strict=True) if keep(r)]
    logs = [f"{r['set']}/{r['file']}" for r, _ in chosen]
    scores = [row_scores(r, p) for r, p in chosen]
    rng = np.random.default_rng(20261201)
    return {
        "rows": len(chosen),
        "logs": len(set(logs)),
        **{m: bootstrap(logs, scores, m, rng) for m in MEASURES},
    }


def print_summary(name: str, result: dict, measures: Sequence[str] = MEASURES) -> None:
    print(f"{name}: {result['rows']} rows, {result['logs']} logs")
    for measure in measures:
        share, low, high, n = result[measure]
        print(f"  {measure:<12} {share:6.1%}  [{low:.1%}, {high:.1%}]  n={n}")


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--seeds", type=int, default=5, help="splits to rotate (seed 0 first)")
    options.add_argument("--held-out", type=float, default=HELD_OUT_SHARE)
    options.add_argument(
        "--all-confidence", action="store_true", help="include low-confidence rows"
    )
    options.add_argument("--rules", type=Path, default=None, help="a user rules file to add")
    options.add_argument("--misses", action="store_true", help="list LOOKED-AT misses of seed 0")
    options.add_argument(
        "--fold", type=int, default=None, help="with --misses: only this development fold's misses"
    )
    options.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    args = options.parse_args()
    labels = load_all_labels(args.all_confidence)
    if not labels:
        print(f"no labels under {SHARED / 'data' / 'labels'}", file=sys.stderr)
        return 1
    parsed = parse_in_context(labels, rules=load_rules(args.rules))
    share = args.held_out

    def held(seed: int) -> Callable[[dict], bool]:
        return lambda r: is_held_out(r["file"], seed, share)

    dev_held = held(DEVELOPMENT_SEED)
    results: dict[str, dict] = {}
    for set_name in ("all", "dev", "dev2"):
        in_set = (lambda r: True) if set_name == "all" else (lambda r, s=set_name: r["set"] == s)
        results[f"{set_name} looked-at"] = summary(
            labels, parsed, lambda r, f=in_set: f(r) and not dev_held(r)
        )
        results[f"{set_name} held out"] = summary(
            labels, parsed, lambda r, f=in_set: f(r) and dev_held(r)
        )
    # Sibling logs of one repository (owner__repo__run-a, owner__repo__run-b) share a style: the
    # held-out logs none of whose siblings could be read are the strictest test.
    looked_repos = {repository(r["file"]) for r in labels if not dev_held(r)}
    results["all held out, no sibling looked-at"] = summary(
        labels, parsed, lambda r: dev_held(r) and repository(r["file"]) not in looked_repos
    )
    for fold in range(2):
        results[f"all looked-at fold {fold}"] = summary(
            labels,
            parsed,
            lambda r, k=fold: not dev_held(r) and development_fold(r["file"]) == k,
        )
    rotation = []
    for seed in range(args.seeds):
        part = summary(labels, parsed, held(seed))
        clean = summary(labels, parsed, lambda r, s=seed: held(s)(r) and dev_held(r))
        rotation.append((seed, part, clean))
    unmatched = sum(1 for r in labels if r.get("unmatched"))
    if args.json:
        print(json.dumps({"parts": results, "rotation": [(s, p, c) for s, p, c in rotation]}))
        return 0
    print(
        f"{len(labels)} labelled rows ({'all' if args.all_confidence else 'high'} confidence), "
        f"{unmatched} not found as a row of their log (parsed without context); "
        f"held-out share {share:.0%} of logs, split seed {DEVELOPMENT_SEED}; "
        "90% bootstrap intervals over logs\n"
    )
    for name, result in results.items():
        print_summary(name, result)
    print("\nrotation (held-out part of each seed; 'clean' = its logs that seed 0 also held out):")
    for seed, part, clean in rotation:
        row = "  ".join(
            f"{m} {part[m][0]:.3f} [{part[m][1]:.2f},{part[m][2]:.2f}]"
            for m in ("category", "direction", "param named")
        )
        print(f"  seed {seed}: {part['rows']:>3} rows {part['logs']:>2} logs  {row}")
        clean_row = "  ".join(
            f"{m} {clean[m][0]:.3f}" for m in ("category", "direction", "param named")
        )
        print(f"          clean {clean['rows']:>3} rows {clean['logs']:>2} logs  {clean_row}")
    print("\ndirection confusion (label -> parsed: rows), misses only:")
    for part, keep in (
        ("looked-at", lambda r: not dev_held(r)),
        ("held out", dev_held),
    ):
        pairs: dict[tuple[str, str], int] = {}
        for r, p in zip(labels, parsed, strict=True):
            if keep(r) and r["direction"] != p.direction:
                pairs[(r["direction"], p.direction)] = (
                    pairs.get((r["direction"], p.direction), 0) + 1
                )
        ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        print(f"  {part}: " + ", ".join(f"{a}->{b} {n}" for (a, b), n in ranked))
    if args.misses:
        print("\nlooked-at misses of seed 0 (label | parsed | description):")
        for r, p in zip(labels, parsed, strict=True):
            if dev_held(r):
                continue  # held-out texts are never shown
            if args.fold is not None and development_fold(r["file"]) != args.fold:
                continue
            wrong_param = bool(r["parameter"]) and not p.parameter
            if r["category"] != p.category or r["direction"] != p.direction or wrong_param:
                print(
                    f"  {r['set']}/{r['file'][:28]} {r['category']}/{r['direction']}/{r['parameter']}"
                    f"/{r['from']}/{r['to']} | {p.category}/{p.direction}/{p.parameter}/"
                    f"{p.from_value}/{p.to_value} | {r['description'][:120]}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
