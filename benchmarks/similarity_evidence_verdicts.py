"""The shipped verdict rule on the CV's out-of-fold predictions: avoid on an exact repeat of a
failure, or when P(keep) < floor with >= 3 earlier rows; the floor chosen per outer fold on the
other folds (max avoid recall at keep-block <= 0.03). Reads benchmarks/similarity_evidence_cv.json
(each fold's fitted parameters), so run that first.

    nice -n 10 python benchmarks/similarity_evidence_verdicts.py [--kind neighbours]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import similarity_evidence_cv as cv  # noqa: E402
from evidence_data import load_corpus  # noqa: E402

from nrr_stats.models import similarity_evidence as se  # noqa: E402


def rates(avoid, y):
    return float(avoid[y == 0].mean()), float(avoid[y == 1].mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="neighbours")
    parser.add_argument(
        "--cv", default=str(Path(__file__).with_name("similarity_evidence_cv.json"))
    )
    args = parser.parse_args()
    out = json.loads(Path(args.cv).read_text())
    folds = {c["fold"]: se.EvidenceParams.from_dict(c["params"]) for c in out["chosen"][args.kind]}
    raw, _ = load_corpus(progress=lambda m: None)
    per = []
    for log in raw:
        f = cv.fold_of(log.file)
        p = se.predict_session(log.session, folds[f]).p_keep
        per.append((f, log.session.y, p, np.arange(len(p)), log.exact))
    result = {}
    for with_exact in (False, True):
        avoid_all, y_all, floors = [], [], {}
        for fold in range(cv.FOLDS):
            others = [r for r in per if r[0] != fold]
            y = np.concatenate([r[1] for r in others])
            p = np.concatenate([r[2] for r in others])
            h = np.concatenate([r[3] for r in others])
            ex = np.concatenate([r[4] for r in others]) if with_exact else np.zeros_like(y, bool)
            best = 0.0
            for floor in cv.FLOORS:
                recall, block = rates(ex | cv.verdict_avoid(p, h, floor), y)
                if block <= cv.MAX_BLOCK:
                    best = floor
            floors[fold] = float(best)
        for f, y, p, h, ex in per:
            extra = ex if with_exact else np.zeros_like(y, bool)
            avoid_all.append(extra | cv.verdict_avoid(p, h, floors[f]))
            y_all.append(y)
        avoid, y = np.concatenate(avoid_all), np.concatenate(y_all)
        recall, block = rates(avoid, y)
        # 90% interval over logs
        rng = np.random.default_rng(0)
        draws = []
        for _ in range(1000):
            pick = rng.integers(0, len(per), len(per))
            draws.append(
                rates(
                    np.concatenate([avoid_all[i] for i in pick]),
                    np.concatenate([y_all[i] for i in pick]),
                )
            )
        draws = np.array(draws)
        key = "exact repeats + floor" if with_exact else "floor only"
        result[key] = {
            "floors_per_fold": floors,
            "avoid_recall": recall,
            "keep_block": block,
            "avoid_recall_90": np.quantile(draws[:, 0], [0.05, 0.95]).tolist(),
            "keep_block_90": np.quantile(draws[:, 1], [0.05, 0.95]).tolist(),
        }
        print(key, json.dumps(result[key]))
    Path(args.cv).with_name("similarity_evidence_verdicts.json").write_text(
        json.dumps(result, indent=1)
    )


if __name__ == "__main__":
    main()
