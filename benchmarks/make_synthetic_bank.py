"""Synthetic experiments for the scale benchmarks: the dev corpus's real descriptions with
perturbed values, as bank rows, a feature matrix, or a whole SQLite bank.

    python benchmarks/make_synthetic_bank.py --rows 100000 --features /tmp/f.npy
    python benchmarks/make_synthetic_bank.py --rows 100000 --bank /tmp/bank100k.db

Descriptions come from ../shared/data/autoresearch-logs/dev/*.tsv (the last column of each
row; exact parsing does not matter here); each template is parsed once with the project's
parser, then every synthetic row scales each number in it by exp(N(0, 0.5)), rounded to two
significant figures, and applies the same change to its parsed from / to values.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEV_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs" / "dev"
)
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+|\d+)(?![\w.])")
STATUS_WEIGHTS = {"keep": 0.2, "discard": 0.7, "crash": 0.1}
OUTCOME_OF = {
    "keep": ["improvement"],
    "discard": ["marginal", "no_improvement", "regression"],
    "crash": ["crash_code", "crash_infra"],
}
SESSION_ROWS = 200


def dev_descriptions(dev_dir: Path = DEV_DIR, max_chars: int = 300) -> list[str]:
    """Distinct descriptions of the dev logs: the last cell of each data row."""
    if not dev_dir.is_dir():
        raise SystemExit(f"no dev corpus at {dev_dir}")
    seen: dict[str, None] = {}
    for path in sorted(dev_dir.glob("*.tsv")):
        if path.name == "MANIFEST.tsv":
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        lines = [line for line in lines if line.strip() and not line.startswith("#")]
        for line in lines[1:]:
            text = line.split("\t")[-1].strip()
            if 3 <= len(text) <= max_chars:
                seen[text] = None
    return list(seen)


def parsed_templates(descriptions: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """(description, parsed fields) per template, parsed once."""
    from nrr_stats.parser import parse_description

    templates = []
    for text in descriptions:
        change = parse_description(text)
        fields = {
            "category": change.category,
            "direction": change.direction,
            "parameter": change.parameter,
            "from_value": change.from_value,
            "to_value": change.to_value,
        }
        templates.append((text, fields))
    return templates


def _perturb(token: str, rng: random.Random) -> str:
    value = float(token) * math.exp(rng.gauss(0.0, 0.5))
    if "." not in token:
        return str(max(1, round(value)))
    return f"{value:.2g}"


def synthetic_rows(
    n: int, templates: Sequence[tuple[str, dict[str, str]]], *, seed: int = 0
) -> list[dict[str, Any]]:
    """n experiment rows (id, session_id, description, fields, status, outcome) from templates."""
    rng = random.Random(seed)
    statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
    rows = []
    for number in range(1, n + 1):
        text, fields = templates[rng.randrange(len(templates))]
        mapping: dict[str, str] = {}

        def swap(match: re.Match[str], mapping: dict[str, str] = mapping) -> str:
            token = match.group(0)
            mapping.setdefault(token, _perturb(token, rng))
            return mapping[token]

        description = NUMBER.sub(swap, text)
        status = rng.choices(statuses, weights)[0]
        rows.append(
            {
                "id": number,
                "session_id": 1 + (number - 1) // SESSION_ROWS,
                "row_number": 1 + (number - 1) % SESSION_ROWS,
                "description": description,
                "category": fields["category"],
                "direction": fields["direction"],
                "parameter": fields["parameter"],
                "from_value": mapping.get(fields["from_value"], fields["from_value"]),
                "to_value": mapping.get(fields["to_value"], fields["to_value"]),
                "status": status,
                "outcome": rng.choice(OUTCOME_OF[status]),
                "config_before": "{}",
            }
        )
    return rows


def feature_matrix(rows: Sequence[dict[str, Any]]):
    """(space, float32 matrix) for rows, idf fitted on the rows themselves."""
    from nrr_stats.similarity import FeatureSpace
    from nrr_stats.similarity.store import row_fields

    descriptions = [row["description"] for row in rows]
    space = FeatureSpace.fit_idf(descriptions)
    return space, space.transform(descriptions, [row_fields(row) for row in rows])


def write_bank(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """A SQLite bank holding the rows (one session per SESSION_ROWS), features synced beside it."""
    from nrr_stats.bank import open_bank
    from nrr_stats.bank.store import utc_now
    from nrr_stats.bank.testing import synthetic_session
    from nrr_stats.similarity import sync_bank_features

    bank = open_bank(path)
    now = utc_now()
    try:
        with bank.transaction():
            session_ids: dict[int, int] = {}
            for row in rows:
                if row["session_id"] not in session_ids:
                    session_ids[row["session_id"]], _ = bank.upsert_session(
                        synthetic_session(f"synthetic-{row['session_id']:06d}")
                    )
            bank.insert_experiments(
                [
                    {
                        **row,
                        "session_id": session_ids[row["session_id"]],
                        "ordinal": row["row_number"] - 1,
                        "line_number": row["row_number"] + 1,
                        "experiment_id": f"x{row['id']:07x}",
                        "metric": None if row["status"] == "crash" else 1.0,
                        "raw_status": row["status"],
                        "delta": None if row["status"] == "crash" else -0.01,
                        "evidence_weight": 1.0,
                        "fields_json": "{}",
                        "ingested_at": now,
                    }
                    for row in rows
                ]
            )
        sync_bank_features(bank)
    finally:
        bank.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", type=Path, help="write the feature matrix (.npy) here")
    parser.add_argument(
        "--bank", type=Path, help="write a SQLite bank (with its feature store) here"
    )
    args = parser.parse_args(argv)
    if args.features is None and args.bank is None:
        parser.error("give --features and/or --bank")
    started = time.perf_counter()
    rows = synthetic_rows(args.rows, parsed_templates(dev_descriptions()), seed=args.seed)
    print(f"{len(rows)} rows generated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.features is not None:
        _, matrix = feature_matrix(rows)
        np.save(args.features, matrix)
        print(f"features {matrix.shape} -> {args.features}", file=sys.stderr)
    if args.bank is not None:
        write_bank(args.bank, rows)
        print(f"bank -> {args.bank}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
