"""nrr-stats: calibrated proceed / caution / avoid decisions for autoresearch loops.

What a loop needs, imported on first use (`import nrr_stats` stays as cheap as `import os`):

    open_bank(url)                      the bank (SQLite path or postgresql:// URL)
    ingest_log(bank, "results.tsv")     store a log (idempotent)
    Checker(bank)                       answers a loop's proposals, keeping what it reuses
    check_proposal(text, bank=...)      one answer (a Checker for one check)
    patterns(bank, session=...)         every cell as the session's checks answer it
    backtest_logs(paths)                the prequential backtest of EVALUATION.md
    validate_nk(record, depth=1)        NK's validator: its violations (empty list: valid)
    validate_nk_record(record)          the stricter check of records nrr-stats writes
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.3.0"

_EXPORTS = {
    "open_bank": ("nrr_stats.bank", "open_bank"),
    "ingest_log": ("nrr_stats.bank.ingest", "ingest_log"),
    "Checker": ("nrr_stats.check", "Checker"),
    "check_proposal": ("nrr_stats.check", "check_proposal"),
    "patterns": ("nrr_stats.check", "patterns"),
    "backtest_logs": ("nrr_stats.backtest.walk", "backtest_logs"),
    "validate_nk_record": ("nrr_stats.curator.schema", "validate"),
    "validate_nk": ("nrr_stats.curator.schema", "validate_nk"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nrr_stats' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
