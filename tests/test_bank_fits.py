"""Issue 16 item 1, the fit in the bank: one FitStore on both backends (files beside a SQLite
bank; the bank's `fit_posteriors` table on PostgreSQL), the newest passing fit answers and a
failed one never does, and a bank's fit is read through a local cache named by its sha256
that is verified on every load (a torn or altered cached file is fetched again)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from core_helpers import SEED_LOG, publish_posterior, run_nrr
from test_models_posterior import draws_posterior

import nrr_stats.bank.fits as fits
from nrr_stats.bank import open_bank
from nrr_stats.bank.fits import BankFitStore, fit_store
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.check import Checker
from nrr_stats.errors import NrrInputError

PROPOSAL = "increase LR to 0.04"


@pytest.fixture
def seeded(bank_url, tmp_path, monkeypatch):
    """(bank URL, open bank) holding the seed log; this test's own fit cache."""
    monkeypatch.setenv("NRR_CACHE_DIR", str(tmp_path / "cache"))
    with open_bank(bank_url) as bank:
        ingest_log(bank, SEED_LOG)
        yield bank_url, bank


def _posterior(bank, seed: int):
    posterior = draws_posterior(bank.experiment_table(), seed=seed)
    posterior.meta.update(data_hash=f"seed{seed}")
    return posterior


def _answered_by(bank_url: str) -> dict:
    run = run_nrr("check", PROPOSAL, "--bank", bank_url, "--no-record")
    assert run.code in (0, 1, 2), run.err
    return json.loads(run.out)


def test_the_newest_passing_fit_answers_and_a_failed_one_never_does(seeded):
    bank_url, bank = seeded
    first = publish_posterior(bank, _posterior(bank, 1))
    store = fit_store(bank)
    newest = store.newest_passing()
    assert newest is not None and newest.key == first.key and store.newest_failed() is None
    answer = _answered_by(bank_url)
    assert answer["fit"]["source"] == "fit" and answer["fit"]["sha256"] == first.sha256
    loaded = store.load(newest)
    assert loaded.meta["data_hash"] == "seed1"

    failed = publish_posterior(bank, _posterior(bank, 2), passed=False)
    store = fit_store(bank)
    assert store.newest_passing().key == first.key  # the last good fit stays in use
    assert store.newest_failed().key == failed.key
    assert _answered_by(bank_url) == answer

    second = publish_posterior(bank, _posterior(bank, 3))
    store = fit_store(bank)
    assert store.newest_passing().key == second.key != first.key
    assert store.newest_failed() is None  # a failed fit older than a passing one is dropped
    assert store.load(store.newest_passing()).meta["data_hash"] == "seed3"
    moved = _answered_by(bank_url)
    assert moved["fit"]["fit_id"] == store.load(store.newest_passing()).meta["fit_id"]
    assert moved["base_rate"] != answer["base_rate"]  # other draws, another answer


def test_doctor_and_report_name_the_fit_the_checks_use(seeded, tmp_path):
    bank_url, bank = seeded
    stored = publish_posterior(bank, _posterior(bank, 1))
    doctor = run_nrr("doctor", "--bank", bank_url, "--json")
    assert doctor.code == 0, doctor.err
    items = [json.loads(line) for line in doctor.out.splitlines()]
    (item,) = [i for i in items if i["item"] == "fit"]
    assert item["status"] == "ok"
    if stored.sha256:
        assert stored.sha256 in item["detail"] and "cached copy verified" in item["detail"]
    report = run_nrr("report", "--bank", bank_url, "--html", str(tmp_path / "r.html"))
    assert report.code == 0, report.err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="fit-summary"' in page and "sigma_sess" in page


# -- a PostgreSQL bank's fits --------------------------------------------------------------------


@pytest.fixture
def pg_seeded(tmp_path, monkeypatch):
    from conftest import require_postgres

    from nrr_stats.bank import testing as bank_testing

    server = require_postgres()
    schema, url = bank_testing.create_schema(server)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NRR_CACHE_DIR", str(tmp_path / "cache"))
    try:
        with open_bank(url) as bank:
            ingest_log(bank, SEED_LOG)
            yield url, bank
    finally:
        bank_testing.drop_schema(server, schema)


def _result(bank, seed: int, passed: bool = True):
    """The FitResult `publish_posterior` would publish, to publish at a chosen evidence state."""
    from dataclasses import replace

    import arviz as az

    from nrr_stats.models.fit import FitResult
    from nrr_stats.models.posterior import MODEL_VERSION

    posterior = _posterior(bank, seed)
    meta = {
        **posterior.meta,
        "model_version": MODEL_VERSION,
        "n_experiments": 20,
        "diagnostics": {},
        "passed_diagnostics": passed,
    }
    idata = az.from_dict(posterior={k: v[None, ...] for k, v in posterior.draws.items()})
    return FitResult(replace(posterior, meta=meta), idata, {}, passed)


def test_the_newest_fit_is_the_one_fitted_at_the_newest_evidence_and_old_ones_are_pruned(
    pg_seeded, tmp_path
):
    _, bank = pg_seeded
    store = BankFitStore(bank, tmp_path / "cache")
    late_data = store.publish(_result(bank, 1), (0, 50))
    store.publish(_result(bank, 2), (0, 10))  # finished later, fitted on older evidence
    assert BankFitStore(bank).newest_passing().key == late_data.key
    for seed in range(3, 3 + fits.KEPT_PASSING_FITS):
        newest = store.publish(_result(bank, seed), (1, seed))
    kept = bank.query("SELECT npz_sha256, passed FROM fit_posteriors ORDER BY id")
    assert len(kept) == fits.KEPT_PASSING_FITS and kept[-1]["npz_sha256"] == newest.sha256
    assert late_data.sha256 not in {row["npz_sha256"] for row in kept}
    row = bank.query(
        "SELECT evidence_revision, evidence_last_id, npz_bytes FROM fit_posteriors"
        " WHERE npz_sha256 = ?",
        (newest.sha256,),
    )[0]
    assert (row["evidence_revision"], row["evidence_last_id"]) == (1, 2 + fits.KEPT_PASSING_FITS)
    stored = _stored_bytes(bank, newest.sha256)
    assert row["npz_bytes"] == len(stored) and hashlib.sha256(stored).hexdigest() == newest.sha256
    chunks = bank.query("SELECT COUNT(DISTINCT posterior_id) AS n FROM fit_posterior_chunks")
    assert chunks[0]["n"] == fits.KEPT_PASSING_FITS  # a pruned fit's chunks go with it


def _stored_bytes(bank, sha: str, part: str = "npz") -> bytes:
    rows = bank.query(
        "SELECT c.data FROM fit_posterior_chunks c JOIN fit_posteriors f ON f.id = c.posterior_id"
        " WHERE f.npz_sha256 = ? AND c.part = ? ORDER BY c.seq",
        (sha, part),
    )
    return b"".join(bytes(row["data"]) for row in rows)


def test_a_fit_larger_than_a_chunk_is_stored_and_read_back_in_chunks(
    pg_seeded, tmp_path, monkeypatch
):
    _, bank = pg_seeded
    monkeypatch.setattr(fits, "CHUNK_BYTES", 4096)
    stored = publish_posterior(bank, _posterior(bank, 1))
    (count,) = bank.query("SELECT COUNT(*) AS n FROM fit_posterior_chunks WHERE part = 'npz'")
    assert count["n"] == -(-stored.meta["npz_bytes"] // 4096) > 1
    reader = BankFitStore(bank, tmp_path / "elsewhere")
    loaded = reader.load(reader.newest_passing())
    assert reader.fetched == 1 and loaded.meta["data_hash"] == "seed1"
    netcdf = reader.local_netcdf(reader.newest_passing())
    assert hashlib.sha256(netcdf.read_bytes()).hexdigest() == stored.meta["netcdf_sha256"]


def test_a_fit_is_read_from_the_bank_once_and_a_damaged_cached_copy_is_fetched_again(
    pg_seeded, tmp_path
):
    _, bank = pg_seeded
    stored = publish_posterior(bank, _posterior(bank, 1))
    cache = tmp_path / "other-machine-cache"
    reader = BankFitStore(bank, cache)
    truth = reader.load(reader.newest_passing())
    assert reader.fetched == 1 and (cache / f"{stored.sha256}.npz").is_file()

    again = BankFitStore(bank, cache)
    assert np.array_equal(again.load(again.newest_passing()).draws["alpha"], truth.draws["alpha"])
    assert again.fetched == 0  # the verified cached copy

    cached = cache / f"{stored.sha256}.npz"
    for damage in ("torn", "another fit"):
        if damage == "torn":
            cached.write_bytes(cached.read_bytes()[:1000])
        else:  # a whole, valid npz of other draws under this fit's name: never trusted
            np.savez(cached, **_posterior(bank, 9).to_npz_arrays())
        store = BankFitStore(bank, cache)
        loaded = store.load(store.newest_passing())
        assert store.fetched == 1, damage
        assert np.array_equal(loaded.draws["alpha"], truth.draws["alpha"]), damage
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == stored.sha256

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache would go")
    store = BankFitStore(bank, blocked / "fits")
    loaded = store.load(store.newest_passing())  # no writable cache: read from the bank anyway
    assert np.array_equal(loaded.draws["alpha"], truth.draws["alpha"])


def test_bytes_altered_in_the_bank_are_refused_and_the_check_says_so(pg_seeded, tmp_path):
    url, bank = pg_seeded
    stored = publish_posterior(bank, _posterior(bank, 1))
    (tmp_path / "cache" / "fits" / f"{stored.sha256}.npz").unlink()
    with bank.transaction():
        bank.execute(
            "UPDATE fit_posterior_chunks SET data = ? WHERE part = 'npz' AND posterior_id ="
            " (SELECT id FROM fit_posteriors WHERE npz_sha256 = ?)",
            (b"not the bytes this fit was stored with", stored.sha256),
        )
    store = BankFitStore(bank)
    with pytest.raises(NrrInputError, match="do not match their sha256"):
        store.load(store.newest_passing())
    answer = _answered_by(url)
    assert answer["fit"]["source"] == "population-prior"
    assert any("sha256" in warning for warning in answer["warnings"])


def test_a_long_lived_checker_moves_to_a_new_fit_within_the_recheck_interval(
    pg_seeded, monkeypatch
):
    url, bank = pg_seeded
    first = publish_posterior(bank, _posterior(bank, 1))
    monkeypatch.setattr(fits, "FIT_RECHECK_SECONDS", 3600.0)
    with open_bank(url) as elsewhere, Checker(url) as checker:
        assert checker.check(PROPOSAL, record=False)["fit"]["sha256"] == first.sha256
        second = publish_posterior(elsewhere, _posterior(elsewhere, 2))
        # Within FIT_RECHECK_SECONDS of its last look the Checker keeps its fit.
        assert checker.check(PROPOSAL, record=False)["fit"]["sha256"] == first.sha256
        monkeypatch.setattr(fits, "FIT_RECHECK_SECONDS", 0.0)
        assert checker.check(PROPOSAL, record=False)["fit"]["sha256"] == second.sha256


def test_fetching_a_fit_evicts_cached_fits_unused_for_a_week_and_nothing_else(pg_seeded, tmp_path):
    import os
    import time

    _, bank = pg_seeded
    publish_posterior(bank, _posterior(bank, 1))
    cache = tmp_path / "elsewhere"
    cache.mkdir()
    stale, recent = cache / f"{'a' * 64}.npz", cache / f"{'b' * 64}.nc"
    foreign = cache / "notes.txt"
    for path in (stale, recent, foreign):
        path.write_bytes(b"x")
    month_ago = time.time() - 30 * 86400
    os.utime(stale, (month_ago, month_ago))
    os.utime(foreign, (month_ago, month_ago))
    store = BankFitStore(bank, cache)
    store.load(store.newest_passing())
    assert store.fetched == 1
    assert not stale.exists() and recent.exists() and foreign.exists()
