"""Where the bank lives: `--bank URL`, else `$NRR_BANK`, else `.nrr/bank.db` (SPEC.md)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BANK_PATH = Path(".nrr") / "bank.db"


@dataclass(frozen=True)
class BankLocation:
    """A resolved bank address: a SQLite file path or a PostgreSQL URL."""

    backend: str  # "sqlite" | "postgresql"
    path: Path | None  # the SQLite file; None for PostgreSQL
    url: str

    @property
    def display(self) -> str:
        """The address with any password hidden, safe to print."""
        return redact_url(self.url)

    @property
    def artifacts_stem(self) -> Path:
        """Where files beside the bank (posterior, features) go, without suffix."""
        if self.path is not None:
            return self.path.with_suffix("")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", redact_url(self.url).split("://", 1)[-1])
        return Path(".nrr") / safe

    def artifact(self, suffix: str) -> Path:
        """One file beside the bank: the stem plus `suffix`, whatever dots the stem holds
        (a bank `runs.v2.db` and a URL's host address both have some)."""
        stem = self.artifacts_stem
        return stem.with_name(stem.name + suffix)


def redact_url(url: str) -> str:
    """Hide the password of a URL: `user:password@` (even an empty user or an unescaped `@`) and `password=`."""
    url = re.sub(r"([?&]password=)[^&#\s]*", r"\1***", url)
    return re.sub(r"(://[^:/@\s]*):[^\s]*@", r"\1:***@", url)


def resolve_bank(url: str | os.PathLike[str] | None = None) -> BankLocation:
    """Resolve a bank argument (URL, bare path or None) to a location."""
    raw = str(url) if url is not None else os.environ.get("NRR_BANK") or str(DEFAULT_BANK_PATH)
    if raw.startswith(("postgresql://", "postgres://")):
        return BankLocation("postgresql", None, raw)
    if raw.startswith("sqlite:///"):
        path = Path(raw[len("sqlite:///") :])
    elif "://" in raw:
        from nrr_stats.errors import NrrInputError

        raise NrrInputError(
            f"unsupported bank URL scheme (use sqlite:/// or postgresql://): {redact_url(raw)}"
        )
    else:
        path = Path(raw)
    return BankLocation("sqlite", path, f"sqlite:///{path}")
