"""Where the bank lives: `--bank URL`, else `$NRR_BANK`, else `.nrr/bank.db` (SPEC.md)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nrr_stats.secrets import redact_url, register_secret

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


# libpq's keyword/value connection strings (`host=db dbname=bank password=...`): PostgreSQL.
_KEYWORD_DSN = re.compile(
    r"^\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options"
    r"|connect_timeout|application_name|target_session_attrs)\s*=",
    re.IGNORECASE,
)


def _register_password(raw: str) -> None:
    """Remember the address's password, so no message prints it whatever it holds."""
    for match in re.finditer(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)", raw, re.I):
        value = match.group(1)
        register_secret(value)
        if value.startswith("'"):
            register_secret(re.sub(r"\\(.)", r"\1", value[1:-1]))
    scheme = raw.find("://")
    at = raw.rfind("@")
    if scheme >= 0 and at > scheme:
        userinfo = raw[scheme + 3 : at]
        if ":" in userinfo:
            register_secret(userinfo.split(":", 1)[1])


def resolve_bank(url: str | os.PathLike[str] | None = None) -> BankLocation:
    """Resolve a bank argument (URL, bare path or None) to a location."""
    raw = str(url) if url is not None else os.environ.get("NRR_BANK") or str(DEFAULT_BANK_PATH)
    if raw.startswith(("postgresql://", "postgres://")) or _KEYWORD_DSN.match(raw):
        _register_password(raw)
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
