"""Where a bank's fits live, and where every check finds the newest passing one: `FitStore`.

Two stores behind one interface (`fit_store(bank)` picks):
- `FileFitStore` (a SQLite bank): the fit's files beside the bank (`x.posterior.npz`, which
  names its netCDF), a failed fit apart at `x.posterior.failed.npz`, as `save_fit` publishes them;
- `BankFitStore` (a PostgreSQL bank, shared by machines): the fit's two files as bytes in the
  bank's `fit_posteriors` table (schema v4), with the evidence state it was fitted at, its
  diagnostics, its passed flag and the npz's sha256. A check on any machine asks which passing
  fit is newest (one indexed query, repeated at most every FIT_RECHECK_SECONDS), and reads its
  bytes once per new fit into a local cache named by that hash (`fit_cache_dir()`), verified
  on every load: a torn or altered cached file is fetched again, never trusted.
Loading goes through `load_posterior` either way (bounded, pickle-free, CRC-checked npz).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nrr_stats.errors import NrrInputError
from nrr_stats.files import published

# How long a BankFitStore trusts its last answer to "which fit is newest" (a new fit made on
# another machine is used by a long-lived Checker at most this many seconds later).
FIT_RECHECK_SECONDS = 5.0
# Passing fits a bank keeps (older ones are deleted when a fit is published); a failed fit is
# kept only while it is the newest fit (for `nrr report` and `nrr doctor` to show).
KEPT_PASSING_FITS = 3
# A fit's bytes are stored and read in chunks of this size (bounded memory, under PostgreSQL's
# 1 GB value limit).
CHUNK_BYTES = 32 << 20
# A cached fit not used for this many days is removed when another fit is fetched.
CACHE_UNUSED_DAYS = 7


@dataclass(frozen=True)
class StoredFit:
    """One published fit, as a store names it (its draws are read by `FitStore.load`)."""

    key: tuple  # changes with every newly published fit
    where: str  # printable: a file path, or the bank table and the fit's hash
    passed: bool
    sha256: str | None = None  # of the npz bytes (the bank's fits; None for files)
    meta: dict[str, Any] = field(default_factory=dict)  # what the store knows without loading


class FitStore(ABC):
    """Publishes fits and finds the newest passing one; `fit_store(bank)` makes the right one."""

    @abstractmethod
    def publish(self, result: Any, evidence_state: tuple[int, int]) -> StoredFit:
        """Store a FitResult fitted at `evidence_state` (Bank.evidence_state()); a fit that
        failed its diagnostics is stored marked and never answers (the last good one does)."""

    @abstractmethod
    def newest_passing(self) -> StoredFit | None:
        """The fit checks answer from (None when no passing fit is stored). Cheap: no draws."""

    @abstractmethod
    def newest_failed(self) -> StoredFit | None:
        """A failed fit stored after the newest passing one (None when there is none)."""

    @abstractmethod
    def local_npz(self, fit: StoredFit) -> Path:
        """A local file holding the fit's npz bytes, verified (NrrInputError when it cannot be had)."""

    @abstractmethod
    def local_netcdf(self, fit: StoredFit) -> Path | None:
        """A local file holding the fit's ArviZ netCDF, verified (None for an older fit without one)."""

    @abstractmethod
    def describe(self) -> str:
        """Where this store keeps fits, printable."""

    def load(self, fit: StoredFit) -> Any:
        """The fit's StoredPosterior (models/posterior.py), read safely from its verified npz."""
        from nrr_stats.models.posterior import load_posterior

        return load_posterior(self.local_npz(fit))


def fit_store(bank: Any) -> FitStore:
    """The store of `bank`'s fits: in the bank for PostgreSQL, files beside it for SQLite."""
    if bank.location.backend == "postgresql":
        return BankFitStore(bank)
    return FileFitStore(bank.posterior_path)


def _with_state(result: Any, evidence_state: tuple[int, int]) -> Any:
    """The FitResult with the evidence state it was fitted at in its posterior's metadata."""
    meta = {**result.posterior.meta, "evidence_state": [int(v) for v in evidence_state]}
    return replace(result, posterior=replace(result.posterior, meta=meta))


# -- files beside a SQLite bank ------------------------------------------------------------------


class FileFitStore(FitStore):
    """Fits as files beside the bank: `posterior_path` names the published fit (`x.posterior.nc`,
    its `.npz` the draws); a failed fit goes to `failed_path_for(posterior_path)`."""

    def __init__(self, posterior_path: str | Path):
        self.posterior_path = Path(posterior_path)

    def publish(self, result: Any, evidence_state: tuple[int, int]) -> StoredFit:
        from nrr_stats.models.fit import remove_unnamed_netcdf, save_fit
        from nrr_stats.models.posterior import failed_path_for, npz_path_for

        failed = failed_path_for(self.posterior_path)
        target = self.posterior_path if result.passed else failed
        try:
            save_fit(_with_state(result, evidence_state), target)
        except OSError as error:
            raise NrrInputError(f"cannot write the posterior ({error})", path=str(target)) from None
        if result.passed:
            npz_path_for(failed).unlink(missing_ok=True)
            remove_unnamed_netcdf(npz_path_for(failed))
        stored = self._at(target, passed=result.passed)
        assert stored is not None
        return stored

    def _at(self, path: Path, *, passed: bool) -> StoredFit | None:
        from nrr_stats.models.posterior import npz_path_for

        npz = npz_path_for(path)
        try:
            stat = os.stat(npz)
        except OSError:
            return None
        key = (str(npz), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        return StoredFit(key=key, where=str(npz), passed=passed)

    def describe(self) -> str:
        from nrr_stats.models.posterior import npz_path_for

        return str(npz_path_for(self.posterior_path))

    def newest_passing(self) -> StoredFit | None:
        return self._at(self.posterior_path, passed=True)

    def newest_failed(self) -> StoredFit | None:
        from nrr_stats.models.posterior import failed_path_for

        return self._at(failed_path_for(self.posterior_path), passed=False)

    def local_npz(self, fit: StoredFit) -> Path:
        return Path(fit.where)

    def local_netcdf(self, fit: StoredFit) -> Path | None:
        from nrr_stats.models.posterior import netcdf_path_for

        return netcdf_path_for(Path(fit.where))


# -- the bank's own table (PostgreSQL) -----------------------------------------------------------

_HEAD_COLUMNS = (
    "id, created_at, model_version, evidence_revision, evidence_last_id, n_experiments,"
    " data_hash, passed, diagnostics_json, fit_id, npz_sha256, npz_bytes, netcdf_sha256,"
    " netcdf_bytes"
)
_NEWEST = " ORDER BY evidence_revision DESC, evidence_last_id DESC, id DESC LIMIT 1"


def fit_cache_dir() -> Path:
    """Where fits read from a bank are cached, by content hash: `<cache>/fits/` of
    `$NRR_CACHE_DIR` or ~/.cache/nrr-stats (the cache `nrr doctor` lists)."""
    from nrr_stats.models.population import default_cache_dir

    return default_cache_dir() / "fits"


class BankFitStore(FitStore):
    """Fits as rows of the bank's `fit_posteriors` table, read through a local hash-named cache."""

    def __init__(self, bank: Any, cache_dir: str | Path | None = None):
        self.bank = bank
        self.cache_dir = Path(cache_dir) if cache_dir is not None else fit_cache_dir()
        self._head: tuple[float, StoredFit | None] | None = None  # (looked up at, newest)
        self.fetched = 0  # fits whose bytes this store read from the bank (a measure for tests)

    def publish(self, result: Any, evidence_state: tuple[int, int]) -> StoredFit:
        import tempfile

        from nrr_stats.models.fit import write_fit_files
        from nrr_stats.models.posterior import file_sha256

        result = _with_state(result, evidence_state)
        meta = result.posterior.meta
        with tempfile.TemporaryDirectory(prefix="nrr-fit-") as folder:
            npz, netcdf = write_fit_files(result, Path(folder), "posterior.npz")
            row = {
                "created_at": meta["created_at"],
                "model_version": meta["model_version"],
                "evidence_revision": int(evidence_state[0]),
                "evidence_last_id": int(evidence_state[1]),
                "n_experiments": int(meta["n_experiments"]),
                "data_hash": meta["data_hash"],
                "passed": int(bool(result.passed)),
                "diagnostics_json": json.dumps(meta.get("diagnostics", {}), default=float),
                "fit_id": netcdf.name.split(".")[-2],
                "npz_sha256": file_sha256(npz),
                "npz_bytes": npz.stat().st_size,
                "netcdf_sha256": file_sha256(netcdf),
                "netcdf_bytes": netcdf.stat().st_size,
            }
            with self.bank.transaction():
                row["id"] = self.bank.query(
                    f"INSERT INTO fit_posteriors ({', '.join(row)})"
                    f" VALUES ({', '.join('?' for _ in row)}) RETURNING id",
                    list(row.values()),
                )[0]["id"]
                for part, path in (("npz", npz), ("netcdf", netcdf)):
                    with open(path, "rb") as handle:
                        for seq, chunk in enumerate(
                            iter(lambda h=handle: h.read(CHUNK_BYTES), b"")
                        ):
                            self.bank.execute(
                                "INSERT INTO fit_posterior_chunks (posterior_id, part, seq, data)"
                                " VALUES (?, ?, ?, ?)",
                                (row["id"], part, seq, chunk),
                            )
                self._prune()
            self._head = None
            stored = self._stored(row)
            cached = self.cache_dir / f"{stored.sha256}.npz"
            # The machine that fitted has the bytes: cache them (best effort).
            with contextlib.suppress(OSError), published(cached) as fd, open(npz, "rb") as src:
                for block in iter(lambda: src.read(CHUNK_BYTES), b""):
                    _write_all(fd, block)
        return stored

    def _prune(self) -> None:
        """Keep KEPT_PASSING_FITS passing fits, and a failed fit only while it is the newest."""
        self.bank.execute(
            "DELETE FROM fit_posteriors WHERE passed = 1 AND id NOT IN (SELECT id FROM"
            " fit_posteriors WHERE passed = 1 ORDER BY evidence_revision DESC,"
            " evidence_last_id DESC, id DESC LIMIT ?)",
            (KEPT_PASSING_FITS,),
        )
        self.bank.execute(
            "DELETE FROM fit_posteriors WHERE passed = 0"
            " AND id < (SELECT MAX(id) FROM fit_posteriors)"
        )

    @staticmethod
    def _stored(row: dict[str, Any]) -> StoredFit:
        sha = str(row["npz_sha256"])
        meta = {
            "created_at": str(row["created_at"]),
            "model_version": str(row["model_version"]),
            "evidence_state": [int(row["evidence_revision"]), int(row["evidence_last_id"])],
            "n_experiments": int(row["n_experiments"]),
            "data_hash": str(row["data_hash"]),
            "diagnostics": json.loads(row["diagnostics_json"]),
            "fit_id": str(row["fit_id"]),
            "npz_bytes": int(row["npz_bytes"]),
            "netcdf_sha256": str(row["netcdf_sha256"]),
            "netcdf_bytes": int(row["netcdf_bytes"]),
            "row_id": int(row["id"]),
        }
        return StoredFit(
            key=("bank", sha),
            where=f"fit_posteriors {sha[:12]}",
            passed=bool(row["passed"]),
            sha256=sha,
            meta=meta,
        )

    def describe(self) -> str:
        return f"the bank's fit_posteriors table ({self.bank.location.display})"

    def newest_passing(self) -> StoredFit | None:
        now = time.monotonic()
        if self._head is not None and now - self._head[0] < FIT_RECHECK_SECONDS:
            return self._head[1]
        rows = self.bank.query(
            f"SELECT {_HEAD_COLUMNS} FROM fit_posteriors WHERE passed = 1" + _NEWEST
        )
        newest = self._stored(rows[0]) if rows else None
        self._head = (now, newest)
        return newest

    def newest_failed(self) -> StoredFit | None:
        rows = self.bank.query(
            f"SELECT {_HEAD_COLUMNS} FROM fit_posteriors ORDER BY id DESC LIMIT 1"
        )
        return self._stored(rows[0]) if rows and not rows[0]["passed"] else None

    def load(self, fit: StoredFit) -> Any:
        from nrr_stats.models.posterior import load_posterior

        path = self.local_npz(fit)
        try:
            return load_posterior(path)
        finally:
            if path.parent != self.cache_dir:  # a private copy (no writable cache)
                path.unlink(missing_ok=True)

    def local_npz(self, fit: StoredFit) -> Path:
        assert fit.sha256 is not None
        return self._local(fit, "npz", fit.sha256, fit.meta["npz_bytes"])

    def local_netcdf(self, fit: StoredFit) -> Path | None:
        return self._local(fit, "netcdf", fit.meta["netcdf_sha256"], fit.meta["netcdf_bytes"])

    def _local(self, fit: StoredFit, part: str, sha: str, size: int) -> Path:
        """The cached `<sha>.npz|.nc` when it verifies, else fetched from the bank into the
        cache (or, with no writable cache, a private file the caller removes)."""
        suffix = ".npz" if part == "npz" else ".nc"
        cached = self.cache_dir / f"{sha}{suffix}"
        if _sha256_of(cached) == sha:
            with contextlib.suppress(OSError):
                os.utime(cached)  # used now: kept by the eviction below
            return cached
        try:
            with published(cached) as fd:
                self._fetch(fit, part, sha, size, fd)
            _evict_unused(self.cache_dir)
            return cached
        except OSError:  # no writable cache: a private file, read once
            import tempfile

            handle, name = tempfile.mkstemp(prefix="nrr-fit-", suffix=suffix)
            try:
                self._fetch(fit, part, sha, size, handle)
            except BaseException:
                os.unlink(name)
                raise
            finally:
                os.close(handle)
            return Path(name)

    def _fetch(self, fit: StoredFit, part: str, sha: str, size: int, fd: int) -> None:
        """Write the fit's `part` bytes from the bank to `fd` one chunk at a time, verified
        against the size and sha256 they were stored with."""
        where = self.bank.location.display
        row_id = fit.meta["row_id"]
        chunks = self.bank.query(
            "SELECT seq FROM fit_posterior_chunks WHERE posterior_id = ? AND part = ? ORDER BY seq",
            (row_id, part),
        )
        if not chunks:
            self._head = None  # pruned meanwhile by a newer fit: look again next time
            raise NrrInputError(
                f"the fit {fit.sha256} is no longer in the bank (a newer fit replaced it)",
                path=where,
            )
        import hashlib  # on first use: a cold check usually hashes nothing (~2 ms)

        digest, written = hashlib.sha256(), 0
        for expected, chunk in enumerate(chunks):
            rows = self.bank.query(
                "SELECT data FROM fit_posterior_chunks WHERE posterior_id = ? AND part = ?"
                " AND seq = ?",
                (row_id, part, chunk["seq"]),
            )
            if chunk["seq"] != expected or not rows:
                raise NrrInputError(
                    f"the fit {fit.sha256}'s {part} chunks are incomplete", path=where
                )
            data = bytes(rows[0]["data"])
            digest.update(data)
            written += len(data)
            _write_all(fd, data)
        if written != size or digest.hexdigest() != sha:
            raise NrrInputError(
                f"the fit {fit.sha256}'s {part} bytes in the bank do not match their sha256",
                path=where,
            )
        self.fetched += part == "npz"


def _evict_unused(cache_dir: Path) -> None:
    """Remove cached fits (of any bank) not used for CACHE_UNUSED_DAYS: a machine keeps the
    fits its checks read lately, never every fit ever made."""
    import re

    cutoff = time.time() - CACHE_UNUSED_DAYS * 86400
    named = re.compile(r"[0-9a-f]{64}\.(npz|nc)")
    with contextlib.suppress(OSError):
        for entry in os.scandir(cache_dir):
            with contextlib.suppress(OSError):
                if named.fullmatch(entry.name) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sha256_of(path: Path) -> str | None:
    from nrr_stats.models.posterior import file_sha256

    return file_sha256(path)
