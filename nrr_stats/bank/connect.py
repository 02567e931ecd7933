"""`open_bank`: the one way to a bank, above both backends (sqlite.py, postgres.py).

Neither backend imports this module, and store.py (the `Bank` both return) imports neither:
the import graph has no cycle (tests/test_one_answer.py).
"""

from __future__ import annotations

from pathlib import Path

from nrr_stats.bank.location import resolve_bank
from nrr_stats.bank.sqlite import open_sqlite
from nrr_stats.bank.store import Bank
from nrr_stats.errors import NrrInputError

# How long a write waits for another process's lock before giving up (`--lock-timeout`):
# ingests into one bank queue on its write (insert) lock, so many agents' ingests on a busy
# machine can wait minutes behind each other (benchmarks/load_test.py: > 60 s with 8 agents);
# the wait is said on stderr as soon as it starts.
DEFAULT_LOCK_TIMEOUT = 600.0


def open_bank(
    url: str | Path | None = None,
    *,
    create: bool = True,
    lock_timeout: float | None = None,
    upgrade: bool | None = None,
) -> Bank:
    """Open (and create or migrate) the bank at `url`, `$NRR_BANK` or `.nrr/bank.db`.

    `lock_timeout`: seconds a write waits behind another process (default 60). `upgrade`:
    whether an older schema may be upgraded in place; by default a SQLite bank is (with a
    notice) and a PostgreSQL bank, shared by agents that may run older nrr-stats, is not
    (`nrr migrate` upgrades it).
    """
    location = resolve_bank(url)
    timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout)
    if not timeout > 0:
        raise NrrInputError(f"--lock-timeout must be a positive number of seconds, not {timeout}")
    if location.backend == "postgresql":
        from nrr_stats.bank.postgres import connect_postgres

        return connect_postgres(
            location, create=create, lock_timeout=timeout, upgrade=bool(upgrade)
        )
    return open_sqlite(location, create=create, timeout=timeout, upgrade=upgrade is not False)
