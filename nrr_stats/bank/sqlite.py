"""The SQLite backend: a bank in one local file (the default).

`open_sqlite` opens, creates or upgrades the file (a foreign SQLite file is refused before
anything is written; a read-only one is read); its connection wrapper turns storage faults
into one line naming the bank. `Bank` (store.py) runs every statement through it;
`open_bank` (connect.py) chooses this backend or PostgreSQL's (postgres.py).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from nrr_stats.bank.cursor import WrappedCursor, not_unicode
from nrr_stats.bank.location import BankLocation
from nrr_stats.bank.schema import SCHEMA_VERSION
from nrr_stats.bank.store import Bank, say_upgrade
from nrr_stats.errors import BankStorageError, NrrInputError


def open_sqlite(location: BankLocation, *, create: bool, timeout: float, upgrade: bool) -> Bank:
    path = location.path
    assert path is not None
    if path.is_dir():
        raise NrrInputError("bank path is a directory, not a database file", path=str(path))
    if not path.exists() and not create:
        raise NrrInputError(
            "no bank here yet: make one with `nrr ingest results.tsv` (or name yours with --bank or $NRR_BANK)",
            path=str(path),
        )
    try:
        kind = _sqlite_kind(path)  # read-only look first: nothing is written to a foreign file
        if kind == "foreign":
            raise NrrInputError(
                "not an nrr bank (the database holds other tables and no nrr metadata);"
                " it was left untouched: give another --bank path",
                path=str(path),
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            _configure_sqlite(connection, timeout)
            _enable_wal(connection, timeout)
        except (sqlite3.OperationalError, OSError) as error:
            if kind != "bank" or not _read_only_fault(error):
                raise
            return _open_sqlite_read_only(location, timeout)
        bank = Bank(location, _AutoCommitSqlite(connection, str(path), timeout))
        version = _sqlite_schema_version(connection)
        if version != SCHEMA_VERSION:
            if 0 < version < SCHEMA_VERSION:
                say_upgrade(location, version, allowed=upgrade)
            bank.migrate("INTEGER PRIMARY KEY AUTOINCREMENT")
    except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as error:
        raise NrrInputError(f"cannot open bank for writing ({error})", path=str(path)) from None
    return bank


def _sqlite_kind(path: Path) -> str:
    """ "new" (absent, empty, or a database without tables), "bank" or "foreign", read-only."""
    if not path.exists() or path.stat().st_size == 0:
        return "new"
    connection = _read_only_connection(path, 5.0)
    try:
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if not tables:
            return "new"
        if "meta" not in tables or not {"sessions", "experiments"} <= tables:
            return "foreign"
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return "bank" if row is not None and str(row[0]).isdigit() else "foreign"
    finally:
        connection.close()


def _read_only_connection(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that cannot write the file (nor create a journal beside it)."""
    base = f"file:{quote(str(path.resolve()))}?mode=ro"
    connection = sqlite3.connect(base, uri=True, timeout=timeout, isolation_level=None)
    try:
        connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError as error:
        connection.close()
        if "unable to open" not in str(error):
            raise
    # A WAL bank on a read-only mount whose shared-memory file is absent: nothing can write
    # it from here, so read the database file as it stands.
    return sqlite3.connect(base + "&immutable=1", uri=True, timeout=timeout, isolation_level=None)


def _configure_sqlite(connection: sqlite3.Connection, timeout: float) -> None:
    connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    connection.execute("PRAGMA foreign_keys=ON")


def _read_only_fault(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, PermissionError) or any(
        word in text for word in ("readonly", "read-only", "unable to open", "permission")
    )


def _open_sqlite_read_only(location: BankLocation, timeout: float) -> Bank:
    """A bank this process cannot write (read-only file, directory or mount): read it; every
    write fails with one line naming the bank (a check answers and skips its record)."""
    path = location.path
    assert path is not None
    connection = _read_only_connection(path, timeout)
    _configure_sqlite(connection, timeout)
    if _sqlite_schema_version(connection) != SCHEMA_VERSION:
        connection.close()
        raise NrrInputError(
            "the bank is read-only and of another schema version; this nrr-stats cannot use it",
            path=str(path),
        )
    return Bank(location, _AutoCommitSqlite(connection, str(path), timeout, read_only=True))


def _enable_wal(connection: sqlite3.Connection, timeout: float = 60.0) -> None:
    """Put the bank in WAL mode (once per file): several processes creating one bank at once
    can see `database is locked` at once from this switch, without the busy timeout applying."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_schema_version(connection: sqlite3.Connection) -> int:
    """The bank's schema version (0 for a new file); reading it takes no write lock."""
    if not connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone():
        return 0
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row is not None else 0


def _storage_fault(error: sqlite3.Error, bank: str, timeout: float) -> BankStorageError:
    """A SQLite failure as one line naming the bank and what to do."""
    text = str(error)
    if "locked" in text or "busy" in text:
        message = (
            f"gave up after {timeout:g} s waiting for the bank's write lock (another process"
            " is writing to it); try again, or wait longer with --lock-timeout"
        )
    elif "readonly" in text or "read-only" in text:
        message = "the bank is read-only here: it can be read, not written"
    else:
        message = f"cannot read or write the bank ({' '.join(text.split())})"
    return BankStorageError(message, path=bank)


class _SqliteCursor(WrappedCursor):
    """A sqlite3 cursor whose storage failures (full disk, lock timeout, read-only file) are
    one line naming the bank, never an internal error."""

    def __init__(self, raw: sqlite3.Cursor, bank: str, timeout: float):
        self.raw, self._bank, self._timeout = raw, bank, timeout

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _SqliteCursor:
        try:
            self.raw.execute(statement, params)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as error:
            raise _storage_fault(error, self._bank, self._timeout) from None
        except UnicodeEncodeError as error:
            raise not_unicode(error) from None
        return self


# A write first tries for the lock this long before saying that it waits.
_FIRST_TRY = 1.0


class _AutoCommitSqlite:
    """A sqlite3 connection in autocommit mode whose commit/rollback end an explicit BEGIN."""

    def __init__(
        self, connection: sqlite3.Connection, bank: str, timeout: float, *, read_only: bool = False
    ):
        self.raw = connection
        self.read_only = read_only
        self._bank, self._timeout = bank, timeout

    def cursor(self) -> _SqliteCursor:
        return _SqliteCursor(self.raw.cursor(), self._bank, self._timeout)

    def _run(self, statement: str) -> None:
        self.cursor().execute(statement)

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Writes inside wait at most `seconds` for another process's lock."""
        previous = self._timeout
        self._timeout = min(previous, seconds)
        self.raw.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        try:
            yield
        finally:
            self._timeout = previous
            self.raw.execute(f"PRAGMA busy_timeout={int(previous * 1000)}")

    @contextmanager
    def bookkeeping(self) -> Iterator[None]:
        """Transactions inside commit without waiting for the disk (synchronous=NORMAL in WAL
        mode: safe against a killed process, not against power loss): a check's decision
        must not wait on an fsync the writers' I/O slows."""
        self.raw.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.raw.execute("PRAGMA synchronous=FULL")

    def commit(self) -> None:
        if self.raw.in_transaction:
            try:
                self._run("COMMIT")
            except BankStorageError:
                self.rollback()  # e.g. a full disk at commit: nothing half written stays open
                raise

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now, so two writers queue instead of deadlocking.
        if self.read_only:
            raise BankStorageError(
                "the bank is read-only here: it can be read, not written", path=self._bank
            )
        if self._timeout <= 5 * _FIRST_TRY:  # a short wait (a check's record) is not said
            self._run("BEGIN IMMEDIATE")
            return
        with self.waiting_at_most(_FIRST_TRY):
            try:
                self._run("BEGIN IMMEDIATE")
                return
            except BankStorageError as error:
                if "write lock" not in error.message:
                    raise
        from nrr_stats.notices import say

        say(
            f"{self._bank}: waiting up to {self._timeout:g} s for the bank's write lock"
            " (another process is writing; --lock-timeout sets the wait)"
        )
        self._run("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        # In WAL mode a deferred transaction reads one snapshot, taken at its first read.
        self._run("BEGIN DEFERRED")

    def close(self) -> None:
        self.raw.close()
