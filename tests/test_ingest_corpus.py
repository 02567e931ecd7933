"""Every dev log reads without error and matches MANIFEST.tsv (skipped without ../shared)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from nrr_stats.ingest import read_results_log

DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "autoresearch-logs" / "dev"
MANIFEST = DEV / "MANIFEST.tsv"


def _manifest() -> list[dict[str, str]]:
    if not MANIFEST.exists():
        return []
    with MANIFEST.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


ENTRIES = _manifest()
pytestmark = pytest.mark.skipif(not ENTRIES, reason="../shared dev corpus not present")


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_dev_log_matches_manifest(entry: dict[str, str]) -> None:
    log = read_results_log(DEV / entry["file"])
    counts = Counter(row.status for row in log.rows)
    got = {s: counts.get(s, 0) for s in ("keep", "discard", "crash", "other")}
    want = {s: int(entry[f"n_{s}"]) for s in ("keep", "discard", "crash", "other")}
    assert got == want
    assert log.metric_name == entry["metric_column"]
    assert log.metric_direction == entry["metric_direction"]
    assert len(log.rows) == int(entry["rows"])
    assert log.bad_rows == []
    assert [r.line_number for r in log.rows] == sorted(r.line_number for r in log.rows)
