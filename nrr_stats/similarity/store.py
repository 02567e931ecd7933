"""The feature matrix beside the bank: memory-mapped, appended on ingest, never inconsistent.

Files (for a bank `x.db`, path `x.features.npy`):
  x.features.npy        float32 rows (n, 128), one per experiment in bank id order;
  x.features.keys.npy   int64 rows (n, 4): experiment id, fingerprint of its inputs, status
                        code (index in taxonomy.STATUSES), session id: masks need no bank query;
  x.features.state.npz  the commit record: committed row count, the df counts the rows
                        were built with, today's df counts, the feature version.

Protocol: data and keys are written and fsynced first, then the commit record is replaced
atomically (os.replace). Readers trust only the committed rows. A process killed mid-append
leaves rows past the committed count, which are ignored and overwritten; a rebuild deletes
the commit record first, so a kill mid-rebuild leaves "no store", rebuilt on the next sync.
Every sync also compares each row's fingerprint with the bank and recomputes rows whose
description, fields or outcome changed, or rebuilds when ids no longer match.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nrr_stats.files import (
    DerivedFileError,
    LockWaitTimeout,
    create_exclusive,
    fsync_directory,
    load_npz,
    locked,
    published,
    remove_stale,
)
from nrr_stats.similarity.features import (
    FEATURE_DIM,
    FINE_SIZE,
    FeatureSpace,
    document_frequencies,
    idf_drift,
)
from nrr_stats.taxonomy import STATUSES

# Bump when the feature code changes what a row holds: stored rows are then rebuilt.
FEATURE_VERSION = 1
# Rebuild every row once today's idf has moved this far from the idf the rows were built
# with (mean relative idf change over n-gram occurrences, see features.idf_drift). Growth is
# geometric between rebuilds, so rebuilding costs O(1) amortised per appended row.
DRIFT_THRESHOLD = 0.10
COMMIT_BATCH = 8192
REBUILD_ATTEMPTS = 3  # a rebuild whose rows are deleted under it starts again
# How long a sync waits for another process's sync of the same store (the store's own file
# lock): an ingest waits long, a check briefly, then answers without updating the store.
SYNC_LOCK_TIMEOUT = 600.0
CHECK_LOCK_TIMEOUT = 2.0
_LOCK_WHAT = "the similarity store's lock (another nrr is updating the store)"
_HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"


KEY_COLUMNS = ("id", "fingerprint", "status", "session_id")
# Read-only mappings of whole row files, by path: ((inode, size), memmap).
_MAPPINGS: dict[Path, tuple[tuple[int, int], np.memmap]] = {}
# Snapshots read in this process, by commit-record path: (its (inode, size, mtime), snapshot).
_SNAPSHOTS: dict[Path, tuple[tuple[int, int, int], Snapshot]] = {}


class Snapshot(NamedTuple):
    """One consistent reading of the store: the space, the rows and what each row is."""

    space: FeatureSpace
    matrix: np.ndarray  # (n, dim) float32, memory-mapped
    ids: np.ndarray  # bank experiment id per row
    status: np.ndarray  # index in taxonomy.STATUSES per row
    session_id: np.ndarray  # bank session id per row (-1 when unknown)

    def status_mask(self, *statuses: str) -> np.ndarray:
        """Rows whose status is one of these (e.g. "discard", "crash": the failures)."""
        mask = np.zeros(self.status.shape, dtype=bool)
        for status in statuses:  # a comparison per status: far faster than np.isin here
            mask |= self.status == STATUSES.index(status)
        return mask


@dataclass(frozen=True)
class SyncSummary:
    """What a sync did: rows appended, rows recomputed in place, whether it rebuilt and why."""

    appended: int
    updated: int
    rebuilt: bool
    reason: str
    committed: int
    drift: float


def row_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """The FeatureSpace fields of a bank experiment row."""
    return {
        "category": row.get("category") or "",
        "direction": row.get("direction") or "",
        "parameter": row.get("parameter") or "",
        "from": row.get("from_value") or "",
        "to": row.get("to_value") or "",
        "outcome": row.get("outcome") or "",
    }


def row_fingerprint(row: Mapping[str, Any]) -> int:
    """crc32 of everything a stored row is computed from (its features, status, session)."""
    fields = row_fields(row)
    parts = [str(row.get("description") or ""), *(str(fields[k]) for k in sorted(fields))]
    parts += [str(row.get("status") or ""), str(row.get("session_id"))]
    return zlib.crc32("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def _status_code(row: Mapping[str, Any]) -> int:
    status = str(row.get("status") or "other").lower()
    return STATUSES.index(status) if status in STATUSES else STATUSES.index("other")


def _session(row: Mapping[str, Any]) -> int:
    session = row.get("session_id")
    return -1 if session is None else int(session)


class _RowFile:
    """A .npy file of fixed-width rows that grows in place; its header counts rows written."""

    def __init__(self, path: Path, dtype: np.dtype, width: int):
        self.path, self.dtype, self.width = path, np.dtype(dtype), width
        self.row_bytes = self.dtype.itemsize * width

    def header(self, rows: int) -> bytes:
        text = f"{{'descr': '{self.dtype.str}', 'fortran_order': False, 'shape': ({rows}, {self.width}), }}"
        body = text.encode("latin1").ljust(_HEADER_BYTES - len(_MAGIC) - 2 - 1) + b"\n"
        return _MAGIC + struct.pack("<H", len(body)) + body

    def create(self, capacity: int) -> None:
        """Create the file afresh (a staging file: whatever was at its path, a stale file or a
        planted symlink, is removed, never written through)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        fd = create_exclusive(self.path)
        try:
            os.write(fd, self.header(0))
            os.ftruncate(fd, _HEADER_BYTES + capacity * self.row_bytes)
        finally:
            os.close(fd)

    def rows_available(self) -> int:
        """Rows the file can hold (valid header and size), or -1 when it is missing or foreign."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return -1
        try:
            head = os.pread(fd, _HEADER_BYTES, 0)
            size = os.fstat(fd).st_size
        except OSError:
            return -1
        finally:
            os.close(fd)
        if (
            len(head) < _HEADER_BYTES
            or head[:8] != _MAGIC
            or head != self.header(_shape_rows(head))
        ):
            return -1
        return (size - _HEADER_BYTES) // self.row_bytes

    def write(self, start: int, rows: np.ndarray, *, extend_header: bool) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.width)
        end = start + data.shape[0]
        fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            needed = _HEADER_BYTES + end * self.row_bytes
            if size < needed:  # grow geometrically so appends stay amortised O(1)
                os.ftruncate(fd, max(needed, _HEADER_BYTES + 2 * (size - _HEADER_BYTES)))
            os.pwrite(fd, data.tobytes(), _HEADER_BYTES + start * self.row_bytes)
            if extend_header:
                os.pwrite(fd, self.header(end), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, rows: int) -> np.ndarray:
        """The first `rows` rows, memory-mapped read-only.

        One mapping of the file's whole capacity is kept while the file is the same (inode
        and size): a reader that follows appends maps the file once, instead of mapping (and
        page-faulting) all of it again at every commit.
        """
        if rows == 0:
            return np.empty((0, self.width), dtype=self.dtype)
        stat = os.stat(self.path)
        version = (stat.st_ino, stat.st_size)
        cached = _MAPPINGS.get(self.path)
        if cached is None or cached[0] != version or cached[1].shape[0] < rows:
            capacity = (stat.st_size - _HEADER_BYTES) // self.row_bytes
            mapping = np.memmap(
                self.path,
                dtype=self.dtype,
                mode="r",
                offset=_HEADER_BYTES,
                shape=(max(capacity, rows), self.width),
            )
            cached = _MAPPINGS[self.path] = (version, mapping)
        return cached[1][:rows]


def _shape_rows(head: bytes) -> int:
    text = head[10:].decode("latin1", "replace")
    try:
        return int(text.split("'shape': (", 1)[1].split(",", 1)[0])
    except (IndexError, ValueError):
        return -1


@dataclass(frozen=True)
class _State:
    committed: int
    df_used: np.ndarray
    n_used: int
    df_now: np.ndarray
    n_now: int


class FeatureStore:
    """Feature rows of a bank's experiments, kept consistent with the bank by `sync`."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        stem = str(self.path)[: -len(".npy")] if str(self.path).endswith(".npy") else str(self.path)
        self._data = _RowFile(self.path, np.float32, FEATURE_DIM)
        self._keys = _RowFile(Path(stem + ".keys.npy"), np.int64, len(KEY_COLUMNS))
        self._state_path = Path(stem + ".state.npz")
        self._lock_path = Path(stem + ".lock")
        self._agreement_path = Path(stem + ".bank.json")  # see agreed_at
        self._crcs: tuple | None = None  # (committed, data CRCs, key CRCs) of the last record
        self.fault = ""  # why the last load found no consistent store ("" when none was there)

    # -- reading ----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The space, rows, ids, statuses and sessions from one reading of the commit record.

        Kept in memory while the commit record is the same file: every commit replaces it, so
        a process checking many proposals reads the idf state and key columns once per commit.
        """
        try:
            stat = os.stat(self._state_path)
            version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except OSError:
            version = None
        cached = _SNAPSHOTS.get(self._state_path)
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        snapshot = self._read_snapshot()
        if version is not None and _whole(snapshot):
            _SNAPSHOTS[self._state_path] = (version, snapshot)
        return snapshot

    def _read_snapshot(self) -> Snapshot:
        state = self._load_state(today=False)
        committed = 0 if state is None else state.committed
        space = FeatureSpace() if state is None else _space(state.df_used, state.n_used)
        keys = self._keys.read(committed)  # columns are views of the mapping: nothing copied
        return Snapshot(space, self._data.read(committed), keys[:, 0], keys[:, 2], keys[:, 3])

    @property
    def committed(self) -> int:
        """How many rows readers may trust (0 when there is no consistent store)."""
        state = self._load_state()
        return 0 if state is None else state.committed

    @property
    def space(self) -> FeatureSpace:
        """The feature space the stored rows were built with: transform queries with it."""
        state = self._load_state()
        return (
            FeatureSpace() if state is None else FeatureSpace(df=state.df_used, n_docs=state.n_used)
        )

    def matrix(self) -> np.ndarray:
        """The committed rows, memory-mapped read-only (n, dim) float32."""
        return self._data.read(self.committed)

    def ids(self) -> np.ndarray:
        """Bank experiment id of each committed row."""
        return np.array(self._keys.read(self.committed)[:, 0])

    # -- agreement with the bank ---------------------------------------------------------------

    def agreed_at(self) -> int | None:
        """The bank's evidence revision at which every row of the current commit was last
        checked against the bank (None when unknown or the commit has changed since).

        Rows can change in place on another machine (a reparse there moves the revision but
        adds no row), so equal ids and counts prove the store current only at this revision.
        """
        try:
            saved = json.loads(self._agreement_path.read_text(encoding="utf-8"))
            revision, record = int(saved["revision"]), list(saved["record"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return revision if record == self._record_identity() else None

    def record_agreement(self, revision: int) -> None:
        """Say that the current commit holds the bank's rows as of `revision` (read before them)."""
        record = self._record_identity()
        if record is None:
            return
        with contextlib.suppress(OSError), published(self._agreement_path) as fd:
            os.write(fd, json.dumps({"revision": int(revision), "record": record}).encode())

    def _record_identity(self) -> list[int] | None:
        try:
            stat = os.stat(self._state_path)
        except OSError:
            return None
        return [stat.st_ino, stat.st_size, stat.st_mtime_ns]

    # -- writing ----------------------------------------------------------------------------

    def sync(
        self,
        rows: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]],
        *,
        lock_timeout: float = SYNC_LOCK_TIMEOUT,
    ) -> SyncSummary:
        """Make the store hold exactly one row per bank experiment row given, in id order.

        Appends new rows, recomputes rows whose inputs changed, and rebuilds everything when
        the store is missing, damaged, of another version, out of step with the bank's ids,
        or when the idf has drifted past DRIFT_THRESHOLD. Waits at most `lock_timeout` for
        another process's sync, then raises LockWaitTimeout (an OSError). `rows` may also be
        a `Batches` (id-ordered batches, read again on each call), so no pass holds them all.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self._lock_path, timeout=lock_timeout, what=_LOCK_WHAT):
            return self._sync_locked(_batches(rows))

    def sync_recent(
        self,
        touched: Iterable[Mapping[str, Any]] | Batches,
        fresh: Iterable[Mapping[str, Any]] | Batches,
        bank_rows: int,
        all_rows: Callable[[], Iterable[Mapping[str, Any]]] | Batches,
        *,
        lock_timeout: float = SYNC_LOCK_TIMEOUT,
    ) -> SyncSummary:
        """`sync` at the cost of the rows that can have changed: `touched` (rows whose inputs
        may have moved, e.g. the sessions an ingest wrote) and `fresh` (the bank's rows past
        the last stored id). Falls back to the whole `sync` over `all_rows()` when the store
        does not hold exactly the bank's other `bank_rows - len(fresh)` rows. Each may be a
        `Batches`, read a batch at a time."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self._lock_path, timeout=lock_timeout, what=_LOCK_WHAT):
            self._clean_staging()
            state = self._load_state()
            if state is not None:
                keys = self._keys.read(state.committed)  # mapped: only touched rows are read
                last = int(keys[-1, 0]) if state.committed else -1
                fresh_batches = _batches(fresh)
                fresh_ids = _ids(fresh_batches)
                touched_batches = _batches(touched, upto=last)
                if (
                    bank_rows == state.committed + fresh_ids.size
                    and (not fresh_ids.size or fresh_ids[0] > last)
                    and self._holds(keys, touched_batches)
                ):
                    summary = self._apply(state, keys, touched_batches, fresh_batches)
                    if summary is not None:
                        return summary
            return self._sync_locked(_batches(all_rows))

    @staticmethod
    def _holds(keys: np.ndarray, touched: Batches) -> bool:
        """Every touched row's id is a stored row's."""
        for batch in touched():
            ids = _batch_ids(batch)
            positions = np.searchsorted(keys[:, 0], ids)
            if not (
                np.all(positions < len(keys))
                and np.array_equal(keys[np.minimum(positions, len(keys) - 1), 0], ids)
            ):
                return False
        return True

    def _clean_staging(self) -> None:
        """Under the store's lock every staging file of it is stale (a killed rebuild's)."""
        for target in (self._data.path, self._keys.path, self._state_path):
            remove_stale(target)

    def _sync_locked(self, rows: Batches) -> SyncSummary:
        self._clean_staging()
        state = self._load_state()
        if state is None:
            if self.fault:
                from nrr_stats.notices import warn

                warn(f"{self.path}: the similarity store is rebuilt: {self.fault}")
            return self._rebuild(rows, self.fault or "no consistent store")
        keys = np.array(self._keys.read(state.committed))
        ids = _ids(rows)
        if state.committed > ids.size or not np.array_equal(keys[:, 0], ids[: state.committed]):
            return self._rebuild(rows, "stored ids differ from the bank's")
        last = int(ids[state.committed - 1]) if state.committed else None
        stored = _batches(rows, upto=last) if last is not None else _batches([])
        fresh = _batches(rows, after=last)
        summary = self._apply(state, keys, stored, fresh)
        if summary is None:
            drift = self._drift(state, fresh)[0]
            return self._rebuild(rows, f"idf drift {drift:.3f} > {DRIFT_THRESHOLD}")
        return summary

    def _drift(self, state: _State, fresh: Batches) -> tuple[float, np.ndarray, int]:
        """(idf drift, df, count) of the fresh rows."""
        df_new, n_new = document_frequencies(
            row.get("description") or "" for batch in fresh() for row in batch
        )
        drift = idf_drift(state.df_used, state.n_used, state.df_now + df_new, state.n_now + n_new)
        return drift, df_new, n_new

    def _apply(
        self, state: _State, keys: np.ndarray, rows: Batches, fresh: Batches
    ) -> SyncSummary | None:
        """Recompute the stored `rows` (each at its id's place) whose inputs changed and append
        `fresh`; None when the idf would drift past DRIFT_THRESHOLD (the caller rebuilds)."""
        drift, _, n_fresh = self._drift(state, fresh)
        if drift > DRIFT_THRESHOLD:
            return None
        space = FeatureSpace(df=state.df_used, n_docs=state.n_used)
        dirty_parts: list[np.ndarray] = []
        for batch in rows():
            positions = np.searchsorted(keys[:, 0], _batch_ids(batch))
            fingerprints = np.fromiter((row_fingerprint(r) for r in batch), np.int64, len(batch))
            changed = np.flatnonzero(fingerprints != keys[positions, 1])
            for index in changed:  # rows whose outcome or parse changed since they were stored
                row, position = batch[index], int(positions[index])
                self._data.write(position, self._features(space, [row]), extend_header=False)
                self._keys.write(position, self._key_rows([row]), extend_header=False)
            dirty_parts.append(positions[changed])
        dirty = np.concatenate(dirty_parts) if dirty_parts else np.empty(0, dtype=np.int64)
        updated = int(dirty.size)

        committed, df_now, n_now = state.committed, state.df_now.copy(), state.n_now
        if updated and not n_fresh:
            # Rows rewritten in place: a new commit record tells cached readers to reread.
            self._commit(state, dirty)
        for batch in _rechunked(fresh(), COMMIT_BATCH):
            batch_df, batch_n = document_frequencies(row.get("description") or "" for row in batch)
            self._data.write(committed, self._features(space, batch), extend_header=True)
            self._keys.write(committed, self._key_rows(batch), extend_header=True)
            committed += len(batch)
            df_now += batch_df
            n_now += batch_n
            self._commit(_State(committed, state.df_used, state.n_used, df_now, n_now), dirty)
            dirty = np.empty(0, dtype=np.int64)
        return SyncSummary(n_fresh, updated, False, "", committed, drift)

    def _rebuild(self, rows: Batches, reason: str) -> SyncSummary:
        self._state_path.unlink(missing_ok=True)  # from here until the commit: no store
        fsync_directory(self._state_path.parent)
        self._crcs = None
        for _ in range(REBUILD_ATTEMPTS):
            last: list[int] = []
            df, n_docs = document_frequencies(_descriptions(rows(), last))
            # The second pass reads the same rows: none past the first pass's last id (an
            # ingest may commit more meanwhile; the next sync appends them).
            bounded = _batches(rows, upto=last[0]) if last else rows
            if self._write_all(bounded, FeatureSpace(df=df, n_docs=n_docs), n_docs):
                self._commit(_State(n_docs, df, n_docs, df, n_docs))
                return SyncSummary(n_docs, 0, True, reason, n_docs, 0.0)
        # Rows deleted under every attempt: no store, rebuilt by the next sync.
        return SyncSummary(0, 0, True, reason + "; the rows changed during the rebuild", 0, 0.0)

    def _write_all(self, rows: Batches, space: FeatureSpace, count: int) -> bool:
        """Write every row into fresh staging files, then put them in place; False (nothing
        put in place) when the rows are not the `count` rows the space was built from."""
        stagings = []
        for target in (self._data, self._keys):
            staging = _RowFile(
                target.path.with_name(target.path.name + ".tmp"), target.dtype, target.width
            )
            staging.create(count)
            stagings.append((staging, target))
        start = 0
        for batch in _rechunked(rows(), COMMIT_BATCH):
            if start + len(batch) > count:
                break
            stagings[0][0].write(start, self._features(space, batch), extend_header=True)
            stagings[1][0].write(start, self._key_rows(batch), extend_header=True)
            start += len(batch)
        if start != count:
            for staging, _ in stagings:
                staging.path.unlink(missing_ok=True)
            return False
        for staging, target in stagings:
            os.replace(staging.path, target.path)
        return True

    @staticmethod
    def _features(space: FeatureSpace, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return space.transform(
            [row.get("description") or "" for row in rows], [row_fields(row) for row in rows]
        )

    @staticmethod
    def _key_rows(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array(
            [
                [int(row["id"]), row_fingerprint(row), _status_code(row), _session(row)]
                for row in rows
            ],
            dtype=np.int64,
        ).reshape(-1, len(KEY_COLUMNS))

    # -- the commit record ------------------------------------------------------------------

    def _commit(self, state: _State, dirty: Iterable[int] = ()) -> None:
        """Publish the commit record of `state`: the rows' per-chunk CRC-32s are carried over
        from the last record, recomputed for chunks holding `dirty` rows and past its end."""
        previous = self._crcs if self._crcs is not None else None
        crcs = self._chunk_crcs(state.committed, previous, dirty)
        used_at, now_at = np.flatnonzero(state.df_used), np.flatnonzero(state.df_now)
        with published(self._state_path) as fd, os.fdopen(os.dup(fd), "wb") as handle:
            np.savez(
                handle,
                version=np.int64(FEATURE_VERSION),
                dim=np.int64(FEATURE_DIM),
                fine_size=np.int64(FINE_SIZE),
                committed=np.int64(state.committed),
                n_used=np.int64(state.n_used),
                n_now=np.int64(state.n_now),
                used_at=used_at.astype(np.int64),
                used_df=state.df_used[used_at].astype(np.int64),
                now_at=now_at.astype(np.int64),
                now_df=state.df_now[now_at].astype(np.int64),
                data_crc=crcs[0],
                keys_crc=crcs[1],
            )
            handle.flush()
        self._crcs = (state.committed, crcs[0], crcs[1])

    def _chunk_crcs(
        self, committed: int, previous: tuple | None, dirty: Iterable[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """CRC-32 of each CHECK_CHUNK rows of the data and key files, as written on disk."""
        chunks = -(-committed // CHECK_CHUNK)
        out = []
        for index, target in enumerate((self._data, self._keys)):
            crcs = np.zeros(chunks, dtype=np.int64)
            start = 0
            if previous is not None:
                kept = min(previous[0] // CHECK_CHUNK, chunks, len(previous[index + 1]))
                crcs[:kept] = previous[index + 1][:kept]
                start = kept
            todo = set(range(start, chunks)) | {r // CHECK_CHUNK for r in dirty}
            rows = target.read(committed) if todo else None
            for chunk in sorted(c for c in todo if c < chunks):
                block = rows[chunk * CHECK_CHUNK : (chunk + 1) * CHECK_CHUNK]
                crcs[chunk] = zlib.crc32(np.ascontiguousarray(block))
            out.append(crcs)
        return out[0], out[1]

    def _verified(self, committed: int, data_crc: np.ndarray, keys_crc: np.ndarray) -> bool:
        """The committed rows of both files match the commit record's CRCs (checked once per
        version of the three files in this process)."""
        try:
            versions = tuple(
                (st.st_ino, st.st_size, st.st_mtime_ns)
                for st in (os.stat(p) for p in (self._state_path, self._data.path, self._keys.path))
            )
        except OSError:
            return False
        key = (self._state_path, versions)
        if _VERIFIED.get(self._state_path) == key:
            return True
        if len(data_crc) != -(-committed // CHECK_CHUNK) or len(keys_crc) != len(data_crc):
            return False
        # After a new commit record over the same two files, a chunk whose CRC is the one this
        # process verified under the previous record is not read again: the writer verified the
        # files against that record under the store's lock and rewrote (and re-checksummed) only
        # the chunks it changed. The same record over changed files (a writer died before its
        # commit) or new files (a rebuild) are verified whole.
        before = _VERIFIED_CRCS.get(self._state_path)
        same_files = before is not None and before[0][1:] == tuple(v[0] for v in versions[1:])
        trusted = (before[1], before[2]) if same_files and before[0][0] != versions[0] else None
        for index, (target, expected) in enumerate(
            ((self._data, data_crc), (self._keys, keys_crc))
        ):
            rows = target.read(committed)
            known = trusted[index] if trusted is not None else ()
            for chunk, crc in enumerate(expected):
                if chunk < len(known) - 1 and int(known[chunk]) == int(crc):
                    continue  # a full chunk verified before, unchanged by the commit
                block = rows[chunk * CHECK_CHUNK : (chunk + 1) * CHECK_CHUNK]
                if zlib.crc32(np.ascontiguousarray(block)) != int(crc):
                    return False
        _VERIFIED[self._state_path] = key
        identity = (versions[0], versions[1][0], versions[2][0])  # record version, file inodes
        _VERIFIED_CRCS[self._state_path] = (identity, np.array(data_crc), np.array(keys_crc))
        return True

    def _load_state(self, *, today: bool = True) -> _State | None:
        """The commit record if it and the files it describes are whole, else None.

        Whole means: the record reads (bounded, CRC-checked npz), the files hold the rows it
        commits, and those rows match its per-chunk CRC-32s (so corrupted rows under an intact
        header are never trusted; `fault` says why a store was not). Without `today` the df
        counts of today are not read (a reader needs only the counts the rows were built
        with); the state then holds the used counts in their place.
        """
        self.fault = ""
        if not self._state_path.exists():
            return None
        try:
            saved = load_npz(self._state_path, names=None if today else _READER_MEMBERS)
            if (int(saved["version"]), int(saved["dim"]), int(saved["fine_size"])) != (
                FEATURE_VERSION,
                FEATURE_DIM,
                FINE_SIZE,
            ):
                return None
            committed = int(saved["committed"])
            df_used = np.zeros(FINE_SIZE, dtype=np.int64)
            df_used[saved["used_at"]] = saved["used_df"]
            n_used = int(saved["n_used"])
            df_now, n_now = df_used, n_used
            if today:
                df_now = np.zeros(FINE_SIZE, dtype=np.int64)
                df_now[saved["now_at"]] = saved["now_df"]
                n_now = int(saved["n_now"])
            data_crc, keys_crc = saved["data_crc"], saved["keys_crc"]
        except (DerivedFileError, KeyError, ValueError, IndexError) as error:
            self.fault = f"its commit record does not read ({error})"
            return None
        if self._data.rows_available() < committed or self._keys.rows_available() < committed:
            self.fault = "its row files are shorter than their commit record"
            return None
        if not self._verified(committed, data_crc, keys_crc):
            self.fault = "its rows do not match their checksums"
            return None
        self._crcs = (committed, data_crc, keys_crc)
        return _State(committed, df_used, n_used, df_now, n_now)


# The members of a commit record a reader needs (not today's df counts: half the file).
_READER_MEMBERS = (
    "version",
    "dim",
    "fine_size",
    "committed",
    "used_at",
    "used_df",
    "n_used",
    "data_crc",
    "keys_crc",
)
# Commit records whose rows this process has verified, by record path: (path, file versions).
_VERIFIED: dict[Path, tuple] = {}
# ... and the chunk CRCs it verified them against, with the record's version and the files' inodes.
_VERIFIED_CRCS: dict[Path, tuple] = {}
# Rows per CRC-32 in the commit record: an append re-checksums at most this many old rows.
CHECK_CHUNK = 4096


_SPACES: list[FeatureSpace] = []  # the last space built: its idf is reused while df is the same


def _space(df: np.ndarray, n_docs: int) -> FeatureSpace:
    """The FeatureSpace of these counts, reusing the last one when they are the same (every
    append commits anew, but the rows keep the idf they were built with)."""
    last = _SPACES[0] if _SPACES else None
    if last is not None and last.n_docs == n_docs and np.array_equal(last.df, df):
        return last
    _SPACES[:] = [FeatureSpace(df=df, n_docs=n_docs)]
    return _SPACES[0]


# Id-ordered batches of bank rows, read again on each call: a pass never holds them all.
Batches = Callable[[], Iterator[Sequence[Mapping[str, Any]]]]


def _sorted_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], np.ndarray]:
    """Rows in id order and their ids; ids must be unique."""
    ordered = sorted(rows, key=lambda row: int(row["id"]))
    ids = _batch_ids(ordered)
    if ids.size and np.any(np.diff(ids) == 0):
        raise ValueError("experiment ids are not unique")
    return ordered, ids


def _batch_ids(batch: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.fromiter((int(row["id"]) for row in batch), dtype=np.int64, count=len(batch))


class _Paged:
    """Marks a Batches already in id order (paged from the bank), not rows to sort."""

    def __init__(self, batches: Batches):
        self.batches = batches

    def __call__(self) -> Iterator[Sequence[Mapping[str, Any]]]:
        return self.batches()


def _batches(
    rows: Iterable[Mapping[str, Any]] | Callable[[], Iterable[Mapping[str, Any]]] | Batches,
    *,
    upto: int | None = None,
    after: int | None = None,
) -> Batches:
    """Rows as id-ordered batches, only those with upto >= id > after: paged rows as they come,
    rows given whole sorted once and held (as they were given whole)."""
    if isinstance(rows, _Paged):
        source: Batches = rows
    else:
        ordered, _ = _sorted_rows(rows() if callable(rows) else rows)
        source = lambda: iter([ordered])  # noqa: E731

    def batches() -> Iterator[Sequence[Mapping[str, Any]]]:
        for batch in source():
            ids = _batch_ids(batch)
            low = 0 if after is None else int(np.searchsorted(ids, after, side="right"))
            high = len(batch) if upto is None else int(np.searchsorted(ids, upto, side="right"))
            if low < high:
                yield batch[low:high] if (low, high) != (0, len(batch)) else batch
            if upto is not None and high < len(batch):
                return

    return _Paged(batches)


def _ids(rows: Batches) -> np.ndarray:
    """The ids of all rows, in order (unique: an error otherwise)."""
    parts = [_batch_ids(batch) for batch in rows()]
    ids = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    if ids.size and np.any(np.diff(ids) <= 0):
        raise ValueError("experiment ids are not unique")
    return ids


def _descriptions(batches: Iterable[Sequence[Mapping[str, Any]]], last: list[int]) -> Iterator[str]:
    """The rows' descriptions; `last` ends up holding the last row's id."""
    for batch in batches:
        if batch:
            last[:] = [int(batch[-1]["id"])]
        yield from (row.get("description") or "" for row in batch)


def _rechunked(
    batches: Iterable[Sequence[Mapping[str, Any]]], size: int
) -> Iterator[Sequence[Mapping[str, Any]]]:
    """The rows of `batches` again, `size` at a time."""
    pending: list[Mapping[str, Any]] = []
    for batch in batches:
        pending.extend(batch)
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


FEATURE_PAGE = 5000  # bank rows read at a time by a sync


def _paged(bank: Any, **where: Any) -> Batches:
    """Bank.feature_rows a page at a time, in id order (keyset paging, no row read twice)."""

    def batches() -> Iterator[Sequence[Mapping[str, Any]]]:
        after = where.get("after_id")
        while page := bank.feature_rows(
            session_ids=where.get("session_ids"),
            after_id=after,
            upto_id=where.get("upto_id"),
            limit=FEATURE_PAGE,
        ):
            yield page
            after = int(page[-1]["id"])

    return _Paged(batches)


def bank_features(bank: Any, previous: Snapshot | None = None) -> Snapshot:
    """The bank's feature snapshot, synced first when the bank has rows the store lacks.

    `bank` is a nrr_stats.bank.Bank (features_path, experiments(), query()). When the files
    beside the bank cannot be written, the features are computed in memory instead.
    `previous`: the caller's last snapshot (a held Checker's), answered from while another
    process rebuilds the store.
    """
    store = FeatureStore(bank.features_path)
    snapshot = store.snapshot()
    # Rows in the bank and in the store agree when the bank has only grown since they last
    # agreed and the store ends at its last id; otherwise compare last ids and counts.
    state = bank.evidence_state()
    if _agrees(_AGREED.get(store.path), state, snapshot):
        _AGREED[store.path] = state
        return snapshot
    last, count = bank.experiment_id_range()
    stored_last = int(snapshot.ids[-1]) if snapshot.ids.size else None
    if (
        _whole(snapshot)
        and last == stored_last
        and count == snapshot.ids.size
        and store.agreed_at() == state[0]
    ):
        _AGREED[store.path] = state
        return snapshot
    # A reader never does a writer's work, nor waits on it: while another process syncs the
    # store (its lock is held), answer from the store as it stands, or from the caller's
    # previous snapshot when a rebuild has the store torn.
    fallback = snapshot if _whole(snapshot) and snapshot.ids.size else previous
    deadline = time.monotonic() + CHECK_LOCK_TIMEOUT
    if fallback is None and store._state_path.exists():
        fallback = _published(store, deadline)  # a new process, while a rebuild publishes
    wait = max(deadline - time.monotonic(), 0.0) if fallback is None else 0.0
    if stored_last is not None and _whole(snapshot) and _appended_since(bank, snapshot, count):
        # The bank only has rows past the store's last id. Many are an ingest's, which syncs
        # them itself after its commit: answer from the store as it stands (unless it has
        # lagged LAG_REPAIR_SECONDS); a few (a loop's own) are synced here.
        fresh = count - snapshot.ids.size
        if fresh > CHECK_SYNC_ROWS and not _lag_is_old(store.path, stored_last):
            return snapshot
        agreed = store.agreed_at() == state[0]
        try:
            summary = store.sync_recent(
                [],
                bank.feature_rows(after_id=stored_last),
                count,
                lambda: _feature_rows(bank),
                lock_timeout=0.0,
            )
        except LockWaitTimeout:
            return snapshot
        if agreed or summary.rebuilt:
            store.record_agreement(state[0])
        synced = store.snapshot()
        return synced if _whole(synced) else snapshot
    try:
        store.sync(lambda: _feature_rows(bank), lock_timeout=wait)
        store.record_agreement(state[0])
    except LockWaitTimeout as error:
        if fallback is not None:
            return fallback
        from nrr_stats.notices import warn

        # Never wait without end behind an ingest's sync: answer without updating the store.
        warn(f"{store.path}: store not updated: {error.strerror}; features computed in memory")
        return _in_memory(_feature_rows(bank))
    except OSError as error:
        from nrr_stats.notices import warn

        warn(f"{store.path}: similarity store not usable ({error}); features computed in memory")
        return _in_memory(_feature_rows(bank))
    snapshot = store.snapshot()
    # Another process may be rebuilding the files under us: then answer from memory.
    return snapshot if _whole(snapshot) else _in_memory(_feature_rows(bank))


# Per store path: the bank's evidence state when bank and store last agreed.
_AGREED: dict[Path, tuple[int, int]] = {}
# A check syncs rows appended to the bank past the store's last id itself only up to this
# many (a loop's own few rows), or once the store has lagged the bank this long (an ingest
# killed between its commit and its sync); more are an ingest's to sync.
CHECK_SYNC_ROWS = 200
LAG_REPAIR_SECONDS = 30.0
# Per store path: (the store's last id, when this process first saw the bank past it).
_LAGGING: dict[Path, tuple[int, float]] = {}


def _published(store: FeatureStore, deadline: float) -> Snapshot | None:
    """A whole, non-empty snapshot once another process's sync has published its files (it
    holds the store's lock meanwhile), read again every 20 ms until `deadline`; None as soon
    as the lock is free (nobody is writing the store: it needs a sync)."""
    while time.monotonic() < deadline:
        try:
            with locked(store._lock_path, timeout=0.0, what=_LOCK_WHAT):
                return None
        except LockWaitTimeout:
            time.sleep(0.02)
        except OSError:
            return None
        snapshot = store.snapshot()
        if _whole(snapshot) and snapshot.ids.size:
            return snapshot
    return None


def _appended_since(bank: Any, snapshot: Snapshot, count: int) -> bool:
    """The bank holds exactly the store's rows up to the store's last id, and rows past it."""
    stored_last = int(snapshot.ids[-1])
    return count > snapshot.ids.size == bank.count_experiments(up_to_id=stored_last)


def _lag_is_old(path: Path, stored_last: int) -> bool:
    """Whether this process has seen the store stuck at `stored_last` for LAG_REPAIR_SECONDS."""
    seen = _LAGGING.get(path)
    if seen is None or seen[0] != stored_last:
        _LAGGING[path] = (stored_last, time.monotonic())
        return False
    return time.monotonic() - seen[1] > LAG_REPAIR_SECONDS


def _agrees(agreed: tuple | None, state: tuple, snapshot: Snapshot) -> bool:
    """The store holds every bank row, judged without a query.

    `state` is Bank.evidence_state() (revision, last id); ids commit in order on both
    backends, so a store that ends at the bank's last id holds every row when the revision is
    the one at which the two last agreed (rows were only appended since).
    """
    if not _whole(snapshot):
        return False
    stored_last = int(snapshot.ids[-1]) if snapshot.ids.size else 0
    return stored_last == state[1] and agreed is not None and agreed[0] == state[0]


def _whole(snapshot: Snapshot) -> bool:
    """The matrix and the key columns hold the same rows (not a read torn by a rebuild)."""
    return snapshot.matrix.shape[0] == snapshot.ids.size == snapshot.status.size


def sync_bank_features(bank: Any, session_ids: Iterable[int] | None = None) -> SyncSummary:
    """Bring the store beside `bank` up to date: call after every ingest.

    With `session_ids` (the sessions an ingest wrote) only their rows and the rows past the
    store's last id are read, so an ingest into a large bank costs its own rows. Rows are read
    from the bank a page at a time: memory does not grow with the bank or the ingest.
    """
    store = FeatureStore(bank.features_path)
    revision = bank.evidence_state()[0]  # read before the rows: a later change is seen later
    if session_ids is None:
        summary = store.sync(_paged(bank))
        store.record_agreement(revision)
        return summary
    # The store held every row as of `revision` before this sync, and still does after it, when
    # no other change moved the bank's evidence revision (another machine's reparse did).
    agreed = store.agreed_at() == revision
    sessions = sorted({int(s) for s in session_ids})
    stored = store.snapshot().ids
    last = int(stored[-1]) if stored.size else 0
    touched = _paged(bank, session_ids=sessions, upto_id=last) if sessions else _batches([])
    fresh = _paged(bank, after_id=last)
    summary = store.sync_recent(touched, fresh, bank.count_experiments(), _paged(bank))
    if agreed or summary.rebuilt:
        store.record_agreement(revision)
    return summary


def _feature_rows(bank: Any) -> list[dict[str, Any]]:
    """Every row's columns the store reads, in id order (Bank.feature_rows)."""
    return bank.feature_rows()


def _in_memory(rows: list[Mapping[str, Any]]) -> Snapshot:
    rows = sorted(rows, key=lambda row: int(row["id"]))
    space = FeatureSpace.fit_idf(row.get("description") or "" for row in rows)
    keys = FeatureStore._key_rows(rows)
    matrix = FeatureStore._features(space, rows)
    return Snapshot(space, matrix, keys[:, 0], keys[:, 2], keys[:, 3])
