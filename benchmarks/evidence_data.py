"""The dev corpus (dev/ + dev2/) as similarity-evidence sessions, cached per log in a temp dir.

Shared by benchmarks/similarity_evidence_cv.py and benchmarks/fit_similarity_evidence.py.
Logs the ingest cannot read, and unreadable rows of readable logs, are left out and counted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nrr_stats.models.similarity_evidence import SessionRows

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs"
CACHE = Path(tempfile.gettempdir()) / "nrr-evidence-cache"
CACHE_VERSION = "4"


@dataclass
class CorpusLog:
    file: str
    corpus: str
    session: SessionRows
    rows: np.ndarray
    exact: np.ndarray
    near: np.ndarray
    bad_rows: int
    changes: tuple[tuple[str, str], ...] = ()  # each row's parsed (parameter, direction)


@functools.cache
def _code_digest() -> str:
    """A hash of the package's source and rule files: a parser or reader change is a new cache."""
    import nrr_stats

    package = Path(nrr_stats.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*")):
        if source.suffix in (".py", ".toml") and source.is_file():
            digest.update(str(source.relative_to(package)).encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:12]


def _key(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{path.stem}-{digest}-{CACHE_VERSION}-{_code_digest()}"


def _build(path: Path) -> dict:
    from nrr_stats.backtest.evidence_rows import evidence_rows
    from nrr_stats.backtest.walk import PREDICTED, walk_items
    from nrr_stats.ingest import read_results_log
    from nrr_stats.similarity.repeats import repeat_flags

    log = read_results_log(path)
    items = walk_items(log)
    rows = evidence_rows(items)
    history: list = []
    exact, near = [], []
    for item in items:
        if item.status in PREDICTED:
            e, k = repeat_flags(item.proposal, item.description, item.config_before, history)
            exact.append(e)
            near.append(k)
            history.append(item.record)
    s = rows.session
    chosen = [item for item in items if item.status in PREDICTED]
    return {
        "y": s.y,
        "categories": np.array(s.categories, dtype=object),
        "proposal": s.proposal_features,
        "history": s.history_features,
        "words": np.array([" ".join(sorted(w)) for w in s.words], dtype=object),
        "rows": np.array(rows.rows),
        "exact": np.array(exact, dtype=bool),
        "near": np.array(near, dtype=int),
        "bad_rows": len(log.bad_rows),
        "parameters": np.array([i.proposal.parameter or "" for i in chosen], dtype=object),
        "directions": np.array([i.proposal.direction or "" for i in chosen], dtype=object),
    }


def load_corpus(corpora=("dev", "dev2"), progress=print) -> tuple[list[CorpusLog], dict]:
    """Every readable log of the corpora, and a note of what was left out."""
    CACHE.mkdir(exist_ok=True)
    logs, unreadable, bad_rows = [], [], 0
    for corpus in corpora:
        for path in sorted((SHARED / corpus).glob("*.tsv")):
            if path.name == "MANIFEST.tsv":
                continue
            target = CACHE / (_key(path) + ".npz")
            if target.is_file():
                data = dict(np.load(target, allow_pickle=True))
            else:
                try:
                    data = _build(path)
                except Exception as error:  # noqa: BLE001 - counted, never guessed
                    unreadable.append(f"{corpus}/{path.name}: {type(error).__name__}")
                    (CACHE / (_key(path) + ".err")).write_text(str(error))
                    continue
                np.savez(target, **data)
                progress(f"built {corpus}/{path.name}: {len(data['y'])} rows")
            bad_rows += int(data["bad_rows"])
            if len(data["y"]) == 0:
                continue
            logs.append(
                CorpusLog(
                    file=path.name,
                    corpus=corpus,
                    session=SessionRows(
                        y=np.asarray(data["y"], dtype=float),
                        categories=tuple(str(c) for c in data["categories"]),
                        proposal_features=np.asarray(data["proposal"], dtype=np.float32),
                        history_features=np.asarray(data["history"], dtype=np.float32),
                        words=tuple(frozenset(str(w).split()) for w in data["words"]),
                    ),
                    rows=np.asarray(data["rows"]),
                    exact=np.asarray(data["exact"], dtype=bool),
                    near=np.asarray(data["near"], dtype=int),
                    bad_rows=int(data["bad_rows"]),
                    changes=tuple(
                        (str(a), str(b))
                        for a, b in zip(data["parameters"], data["directions"], strict=True)
                    ),
                )
            )
    note = {
        "logs_read": len(logs),
        "logs_unreadable": unreadable,
        "rows_unreadable_in_read_logs": bad_rows,
        "rows_predicted": int(sum(len(log.session.y) for log in logs)),
    }
    return logs, note


if __name__ == "__main__":
    logs, note = load_corpus()
    print(json.dumps(note, indent=2))
