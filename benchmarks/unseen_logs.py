"""The engine on public logs outside the dev folders: does ingest read them, and how does the
shipped model score on them by EVALUATION.md's protocol?

    python benchmarks/unseen_logs.py DIR

DIR holds the logs listed in benchmarks/unseen_logs.tsv (public results.tsv files of
repositories that are not in ../shared's dev folders, at the commits listed there; they are not
bundled, and no rule or parameter of the engine was chosen on them). Prints, per log, what
ingest read (rows by status, repairs) or the one line it refused the log with; then `nrr
backtest` over the logs with rows to predict: the shipped population prior and evidence model,
fitted on dev/ and dev2/ only, against the constant, running Laplace and discounted-rate
baselines scored in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from nrr_stats.cli import main as nrr
from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log

SOURCES = Path(__file__).with_name("unseen_logs.tsv")


def listed_logs(folder: Path) -> list[Path]:
    """The logs of SOURCES found in `folder` (named owner__repo.tsv), in the list's order."""
    names = []
    for line in SOURCES.read_text(encoding="utf-8").splitlines()[1:]:
        repo = line.split("\t")[0]
        names.append(repo.replace("/", "__") + ".tsv")
    return [folder / name for name in names if (folder / name).is_file()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the listed logs were saved")
    args = parser.parse_args(argv)
    logs = listed_logs(args.folder)
    if not logs:
        print(f"none of the logs of {SOURCES.name} is in {args.folder}", file=sys.stderr)
        return 3
    predicted, refused, totals = [], 0, Counter()
    for path in logs:
        try:
            log = read_results_log(path)
        except NrrInputError as error:
            refused += 1
            print(f"{path.name:60s} refused: {error.message}")
            continue
        counts = Counter(row.status for row in log.rows)
        totals.update(counts)
        shown = " ".join(f"{s} {counts[s]}" for s in ("keep", "discard", "crash", "other"))
        print(f"{path.name:60s} {shown}  bad rows {len(log.bad_rows)}  repairs {len(log.repairs)}")
        if counts["keep"] + counts["discard"] + counts["crash"] > 1:
            predicted.append(path)
    print(
        f"\n{len(logs)} logs: {refused} refused, {len(logs) - refused} read "
        f"(keep {totals['keep']}, discard {totals['discard']}, crash {totals['crash']}, "
        f"other {totals['other']}); {len(predicted)} with rows to predict\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        return nrr(["backtest", *map(str, predicted), "--jsonl", str(Path(tmp) / "rows.jsonl")])


if __name__ == "__main__":
    sys.exit(main())
