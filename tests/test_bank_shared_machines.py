"""Issue 16, a bank that outgrows one machine: two machines (two working directories, two
caches) sharing one PostgreSQL bank. The fit made on one answers the other's checks; the
similarity store of each is derived from the bank alone and follows what the other changes.

"Machine B" runs in a subprocess with its own working directory and `$NRR_CACHE_DIR`, so
nothing of machine A's process (or files) can reach it but the bank.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_postgres
from core_helpers import SEED_LOG, run_nrr

from nrr_stats.bank import open_bank
from nrr_stats.bank import testing as bank_testing

pytestmark = pytest.mark.postgres
NRR = str(Path(sys.executable).parent / "nrr")  # the installed command, run by this Python

# What machine B runs: its feature snapshot against every bank row's features computed now in
# the snapshot's own feature space (rows appended to a store keep the idf it was built with).
SIMILARITY_PROBE = """
import json, sys, numpy as np
from nrr_stats.bank import open_bank
from nrr_stats.notices import collecting
from nrr_stats.similarity.store import FeatureStore, bank_features
with open_bank(sys.argv[1], create=False) as bank, collecting() as said:
    snapshot = bank_features(bank)
    rows = bank.feature_rows()
    truth = FeatureStore._features(snapshot.space, rows)
    ids = np.array([row["id"] for row in rows])
    print(json.dumps({
        "rows": int(snapshot.ids.size),
        "equal": bool(np.array_equal(snapshot.ids, ids) and np.allclose(snapshot.matrix, truth)),
        "path": str(bank.features_path.resolve()),
        "inode": bank.features_path.stat().st_ino,
        "warnings": [str(w) for w in said],
    }))
"""


@pytest.fixture
def shared_bank(tmp_path: Path):
    """(URL of a throwaway PostgreSQL bank, machine A's directory, machine B's directory);
    this process works in A's."""
    server = require_postgres()
    schema, url = bank_testing.create_schema(server)
    machines = tmp_path / "a", tmp_path / "b"
    for directory in machines:
        (directory / "cache").mkdir(parents=True)
    patch = pytest.MonkeyPatch()
    patch.chdir(machines[0])
    patch.setenv("NRR_CACHE_DIR", str(machines[0] / "cache"))
    try:
        yield url, *machines
    finally:
        patch.undo()
        bank_testing.drop_schema(server, schema)


def on_machine(directory: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python args...` as another machine would: its own directory and cache."""
    env = {**os.environ, "NRR_CACHE_DIR": str(directory / "cache")}
    return subprocess.run(
        [sys.executable, *args], cwd=directory, env=env, capture_output=True, text=True, timeout=300
    )


def probe_similarity(directory: Path, url: str) -> dict:
    run = on_machine(directory, "-c", SIMILARITY_PROBE, url)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_each_machine_derives_its_similarity_store_from_the_bank_and_follows_the_others_changes(
    shared_bank,
):
    url, machine_a, machine_b = shared_bank
    assert run_nrr("ingest", str(SEED_LOG), "--bank", url).code == 0
    first = probe_similarity(machine_b, url)
    # Built on first use on B, from the bank alone, in B's own directory.
    assert first["equal"] and first["rows"] == 21
    assert Path(first["path"]).is_relative_to(machine_b)
    assert Path(first["path"]).is_file()

    # Machine A changes stored parses (as `nrr reparse` does); no row is added.
    with open_bank(url) as bank, bank.transaction():
        rows = bank.experiments()
        session_id = rows[0]["session_id"]
        moved = [
            {
                "ordinal": row["ordinal"],
                "category": "architecture",
                "direction": "replace",
                "parameter": "",
                "from_value": "",
                "to_value": "",
                "config_before": row["config_before"],
            }
            for row in rows[:5]
        ]
        bank.update_parsed(session_id, moved)
    followed = probe_similarity(machine_b, url)
    assert followed["equal"], "B's store still holds the rows as they were before A's change"
    assert followed["inode"] == first["inode"]  # those rows recomputed in place, not rebuilt

    # Machine A ingests more rows: B's store grows by them, in place.
    more = [
        "m1\t0.700000\t1.1\tdiscard\tIncrease learning rate from 0.01 to 0.02 with SGD",
        "m2\t0.690000\t1.1\tdiscard\tReduce learning rate to 0.004 with SGD and cosine",
        "m3\t0.710000\t1.1\tkeep\tSwitch optimizer from SGD to AdamW with cosine annealing",
    ]
    grown_log = machine_a / "grown.tsv"
    grown_log.write_text(SEED_LOG.read_text(encoding="utf-8") + "\n".join(more) + "\n")
    assert run_nrr("ingest", str(grown_log), "--bank", url).code == 0
    grown = probe_similarity(machine_b, url)
    assert grown["equal"] and grown["rows"] == 2 * 21 + len(more), grown  # a new session
    assert grown["inode"] == first["inode"]

    # A torn local copy is rebuilt from the bank, never trusted; so is a missing one.
    features = Path(first["path"])
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
    torn = probe_similarity(machine_b, url)
    assert torn["equal"] and torn["rows"] == grown["rows"]
    assert any("rebuilt" in w for w in torn["warnings"]), torn["warnings"]
    for path in features.parent.glob(features.name.removesuffix(".npy") + "*"):
        path.unlink()
    missing = probe_similarity(machine_b, url)
    assert missing["equal"] and missing["rows"] == grown["rows"]


@pytest.mark.slow
def test_a_second_machine_answers_from_the_fit_made_on_the_first(shared_bank):
    """Issue 16's "done when": `nrr fit` on machine A (a real, small PyMC fit) stores the fit
    in the PostgreSQL bank; machine B, with another directory and another cache, answers
    `nrr check` from it: the same numbers as A, naming the fit's hash, its bytes read once."""
    url, machine_a, machine_b = shared_bank
    assert run_nrr("ingest", str(SEED_LOG), "--bank", url).code == 0
    fitted = run_nrr(
        "fit", "--bank", url, "--draws", "1000", "--chains", "2", "--seed", "3", "--no-progress"
    )
    assert fitted.code == 0, fitted.err
    with open_bank(url) as bank:
        (row,) = bank.query("SELECT npz_sha256, passed, evidence_last_id FROM fit_posteriors")
        assert row["passed"] == 1 and row["evidence_last_id"] == bank.evidence_state()[1]
    sha = row["npz_sha256"]
    assert sha in fitted.out
    assert not list(machine_a.glob(".nrr/*posterior*"))  # nothing beside the bank on A

    proposals = ["increase LR to 0.04", "switch optimizer to AdamW", "add dropout 0.1"]
    on_a = [json.loads(run_nrr("check", p, "--bank", url, "--no-record").out) for p in proposals]
    cached = machine_b / "cache" / "fits" / f"{sha}.npz"
    assert not cached.exists()
    for attempt in range(2):
        for proposal, answer_a in zip(proposals, on_a, strict=True):
            run = on_machine(machine_b, NRR, "check", proposal, "--bank", url)
            assert run.returncode in (0, 1, 2), run.stderr
            answer_b = json.loads(run.stdout)
            assert answer_b["fit"]["source"] == "fit" and answer_b["fit"]["sha256"] == sha
            for key in ("p_keep", "interval", "p_crash", "base_rate", "verdict"):
                assert answer_b[key] == answer_a[key], key
        if attempt == 0:
            first_copy = cached.stat()
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    # Read once: the later checks used the cached copy (the same file, not fetched again: a
    # fetch publishes a new file by rename, a new inode; a use only touches its mtime, which
    # the cache's eviction reads).
    assert cached.stat().st_ino == first_copy.st_ino
    assert cached.stat().st_mtime_ns >= first_copy.st_mtime_ns
    assert not list(machine_b.glob(".nrr/*posterior*"))
