"""Issue 17, files beside the bank: never written through a planted symlink (6), verified on
load and rebuilt or ignored with a warning when they do not verify (8), stale staging cleaned
and a fit published as one unit (9), modes from the umask (14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from core_helpers import GOOD_ROWS, run_nrr, write_log

import nrr_stats.bank.evidence_file as evidence_file
from nrr_stats.bank import open_bank

VICTIM_TEXT = "precious: must never be overwritten\n"
MORE = [f"m{i}\t{0.99 - i * 1e-3:.4f}\t44.0\tdiscard\tincrease LR to 0.0{i + 2}" for i in range(6)]


def _bank(tmp_path: Path) -> Path:
    bank = tmp_path / "bank.db"
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    assert run_nrr("ingest", str(log), "--bank", str(bank)).code == 0
    return bank


def _plant(link: Path, victim: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(victim)


# -- symlinks (6) ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "bank.features.npy.tmp",
        "bank.features.keys.npy.tmp",
        "bank.features.state.npz.tmp",
        "bank.features.lock",
    ],
)
def test_a_symlink_planted_beside_the_bank_is_never_written_through(tmp_path: Path, name: str):
    bank = _bank(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    _plant(tmp_path / name, victim)
    # Damage the store so the next sync rebuilds it through every staging file.
    (tmp_path / "bank.features.state.npz").unlink()
    more = write_log(tmp_path / "more.tsv", MORE)
    result = run_nrr("ingest", str(more), "--bank", str(bank))
    assert result.code == 0, result.err
    check = run_nrr("check", "increase LR to 0.2", "--bank", str(bank))
    assert check.code in (0, 1, 2), check.err
    assert victim.read_text() == VICTIM_TEXT
    assert os.stat(victim).st_nlink == 1


def test_a_dangling_symlink_at_the_lock_creates_nothing_where_it_points(tmp_path: Path):
    """Opening a lock through a link would create any file the user may write (O_CREAT)."""
    bank = _bank(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "created-by-nrr"
    _plant(tmp_path / "bank.features.lock", target)
    (tmp_path / "bank.features.state.npz").unlink()
    result = run_nrr("ingest", str(write_log(tmp_path / "more.tsv", MORE)), "--bank", str(bank))
    assert result.code == 0, result.err
    assert not target.exists()


def test_a_symlinked_lock_file_is_refused_and_the_check_still_answers(tmp_path: Path):
    bank = _bank(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    (tmp_path / "bank.features.state.npz").unlink()
    _plant(tmp_path / "bank.features.lock", victim)
    result = run_nrr("check", "increase LR to 0.2", "--bank", str(bank))
    assert result.code in (0, 1, 2), result.err
    answer = json.loads(result.out)
    assert any("symlink" in w for w in answer["warnings"])
    assert victim.read_text() == VICTIM_TEXT


def test_the_saved_evidence_sums_are_never_written_through_a_symlink(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(evidence_file, "MIN_LEAVES", 0)
    bank = _bank(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    for name in ("bank.evidence.npz.tmp", ".bank.evidence.npz.0000000000000000.tmp"):
        _plant(tmp_path / name, victim)
    assert run_nrr("check", "increase LR to 0.2", "--bank", str(bank)).code in (0, 1, 2)
    assert (tmp_path / "bank.evidence.npz").is_file()
    assert not (tmp_path / "bank.evidence.npz").is_symlink()
    assert victim.read_text() == VICTIM_TEXT


# -- derived files verified on load (8) ----------------------------------------------------------


def _answer(bank: Path, proposal: str = "increase LR to 0.2") -> dict:
    result = run_nrr("check", proposal, "--bank", str(bank))
    assert result.code in (0, 1, 2), result.err
    return json.loads(result.out)


def _answer_in_a_new_process(bank: Path, proposal: str) -> dict:
    nrr = Path(sys.executable).parent / "nrr"
    done = subprocess.run(
        [str(nrr), "check", proposal, "--bank", str(bank)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def _without_warnings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("warnings", "decision_id")}


def test_corrupted_feature_rows_under_an_intact_header_are_rebuilt(tmp_path: Path):
    bank = _bank(tmp_path)
    proposal = "switch to GeLU activation"
    truth = _answer_in_a_new_process(bank, proposal)
    rows = tmp_path / "bank.features.npy"
    data = bytearray(rows.read_bytes())
    header = 128
    data[header : header + 4 * 128 * 3] = np.full(128 * 3, 0.5, np.float32).tobytes()
    rows.write_bytes(bytes(data))
    again = _answer_in_a_new_process(bank, proposal)
    assert any("checksum" in w for w in again.get("warnings", [])), again
    assert _without_warnings(again) == _without_warnings(truth)
    assert _answer_in_a_new_process(bank, proposal)["warnings"] == []  # rebuilt once


@pytest.mark.parametrize("fault", ["truncated", "bad-crc", "huge-shape", "not-a-zip"])
@pytest.mark.parametrize("which", ["state", "evidence", "posterior"])
def test_a_damaged_npz_beside_the_bank_never_fails_the_check(tmp_path, monkeypatch, fault, which):
    monkeypatch.setattr(evidence_file, "MIN_LEAVES", 0)
    bank = _bank(tmp_path)
    if which == "posterior":
        _store_posterior(bank)
    truth = _answer(bank)
    target = (
        tmp_path
        / {
            "state": "bank.features.state.npz",
            "evidence": "bank.evidence.npz",
            "posterior": "bank.posterior.npz",
        }[which]
    )
    assert target.is_file()
    _damage(target, fault)
    answer = _answer(bank)
    assert answer["warnings"], "a file that does not verify is said"
    if which == "posterior":
        # Never silently the prior: the answer says the posterior could not be read.
        assert any("posterior" in w for w in answer["warnings"])
        assert truth["fit"]["source"] == "fit" != answer["fit"]["source"]
    else:
        assert _without_warnings(answer) == _without_warnings(truth)


def _store_posterior(bank: Path) -> None:
    from test_models_posterior import draws_posterior

    from nrr_stats.models.posterior import npz_path_for

    with open_bank(bank) as opened:
        fitted = draws_posterior(opened.experiment_table())
        np.savez(npz_path_for(opened.posterior_path), **fitted.to_npz_arrays())


def _damage(path: Path, fault: str) -> None:
    data = path.read_bytes()
    if fault == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif fault == "not-a-zip":
        path.write_bytes(b"\x00" * len(data))
    elif fault == "bad-crc":
        with zipfile.ZipFile(path) as archive:
            info = max(archive.infolist(), key=lambda i: i.file_size)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 200
        start = min(start, info.header_offset + 30 + len(info.filename) + info.compress_size - 1)
        mutable = bytearray(data)
        mutable[start] ^= 0xFF
        path.write_bytes(bytes(mutable))
    elif fault == "huge-shape":
        with zipfile.ZipFile(path) as archive:
            members = {i.filename: archive.read(i) for i in archive.infolist()}
        name = max(members, key=lambda n: len(members[n]))
        body = members[name]
        text = body[10 : 10 + int.from_bytes(body[8:10], "little")].decode("latin1")
        shape = text[text.index("(") : text.index(")") + 1]
        huge = text.replace(shape, "(1000000000000, 1000)")
        huge = huge.ljust(len(text))[: len(text)] if len(huge) <= len(text) else huge
        header = len(huge).to_bytes(2, "little")
        members[name] = body[:8] + header + huge.encode("latin1") + body[10 + len(text) :]
        with zipfile.ZipFile(path, "w") as archive:
            for member, content in members.items():
                archive.writestr(member, content)


# -- a fit published as one unit, its staging cleaned (9) ----------------------------------------


def _fake_fit(seed: int = 0):
    """A FitResult without sampling: prior draws and an InferenceData built from them."""
    import arviz as az
    from test_models_fit import tiny_table as table
    from test_models_posterior import draws_posterior

    from nrr_stats.models.fit import FitResult

    posterior = draws_posterior(table(), seed=seed)
    meta = {
        **posterior.meta,
        "model_version": "hier-bb-1",
        "n_experiments": 9,
        "data_hash": f"hash{seed}",
        "diagnostics": {"divergences": 0},
    }
    from dataclasses import replace

    posterior = replace(posterior, meta=meta)
    idata = az.from_dict(posterior={k: v[None, ...] for k, v in posterior.draws.items()})
    return FitResult(posterior=posterior, idata=idata, diagnostics={}, passed=True)


def test_a_fit_is_published_whole_and_names_its_netcdf(tmp_path: Path):
    from nrr_stats.models.fit import save_fit
    from nrr_stats.models.posterior import load_posterior, netcdf_path_for, npz_path_for

    logical = tmp_path / "bank.posterior.nc"
    first = save_fit(_fake_fit(0), logical)
    second = save_fit(_fake_fit(1), logical)
    assert first != second and not first.exists() and second.is_file()
    assert netcdf_path_for(logical) == second
    assert load_posterior(logical).meta["data_hash"] == "hash1"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [npz_path_for(logical).name, second.name, "bank.posterior.npz.lock"]
    )


def test_a_fit_killed_between_its_renames_leaves_the_last_fit_paired(tmp_path, monkeypatch):
    import nrr_stats.models.fit as fit_module
    from nrr_stats.models.fit import save_fit
    from nrr_stats.models.posterior import load_posterior, netcdf_path_for

    logical = tmp_path / "bank.posterior.nc"
    good = save_fit(_fake_fit(0), logical)
    real_replace = os.replace

    def killed(source, target):
        if str(target).endswith(".npz"):
            raise KeyboardInterrupt  # as if killed after the netCDF's rename
        return real_replace(source, target)

    monkeypatch.setattr(fit_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_fit(_fake_fit(1), logical)
    monkeypatch.undo()
    # The published fit is still the first, with its own netCDF (hash checked).
    assert load_posterior(logical).meta["data_hash"] == "hash0"
    assert netcdf_path_for(logical) == good
    # The next save removes the orphan netCDF.
    third = save_fit(_fake_fit(2), logical)
    assert sorted(tmp_path.glob("*.nc")) == [third]


def test_stale_staging_of_a_killed_fit_is_removed_and_a_live_one_kept(tmp_path: Path):
    import fcntl

    from nrr_stats.models.fit import save_fit

    logical = tmp_path / "bank.posterior.nc"
    dead = tmp_path / ".bank.posterior.npz.dead.staging"
    dead.mkdir()
    (dead / "bank.posterior.npz").write_bytes(b"\0" * 1_000_000)
    legacy = tmp_path / "bank.posterior.ncx1y2z3.tmp"  # an older nrr-stats' staging name
    legacy.write_bytes(b"\0" * 1_000_000)
    live = tmp_path / ".bank.posterior.npz.live.staging"
    live.mkdir()
    holder = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        save_fit(_fake_fit(0), logical)
        assert not dead.exists() and not legacy.exists()
        assert live.exists()  # another fit is writing it
    finally:
        os.close(holder)


def test_a_bank_fitted_and_saved_files_follow_the_umask(tmp_path: Path, monkeypatch):
    from nrr_stats.models.fit import save_fit
    from nrr_stats.models.posterior import npz_path_for

    monkeypatch.setattr(evidence_file, "MIN_LEAVES", 0)
    old = os.umask(0o027)
    try:
        bank = _bank(tmp_path)
        assert run_nrr("check", "increase LR to 0.2", "--bank", str(bank)).code in (0, 1, 2)
        netcdf = save_fit(_fake_fit(0), tmp_path / "bank.posterior.nc")
    finally:
        os.umask(old)
    for path in (
        tmp_path / "bank.evidence.npz",
        npz_path_for(netcdf),
        netcdf,
        tmp_path / "bank.features.state.npz",
    ):
        assert oct(path.stat().st_mode & 0o777) == oct(0o640), path
