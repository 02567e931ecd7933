"""Test and benchmark support: throwaway PostgreSQL schemas and synthetic experiment rows.

Tests and benchmarks share these so that both exercise the bank the same way. A throwaway
schema keeps each test's tables apart inside one server database (cheaper than a database).
"""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import quote

from nrr_stats.bank.location import redact_url
from nrr_stats.bank.store import utc_now

POSTGRES_ENV = "NRR_TEST_POSTGRES"


def postgres_server_url() -> str | None:
    """The test server's URL from `$NRR_TEST_POSTGRES`, or None when unset."""
    return os.environ.get(POSTGRES_ENV) or None


def postgres_unreachable_reason(url: str | None) -> str | None:
    """Why PostgreSQL tests cannot run against `url` (None when a server answers)."""
    if not url:
        return f"no PostgreSQL server: set ${POSTGRES_ENV}=postgresql://... (.ci/run starts one)"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'nrr-stats[postgres]')"
    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        from nrr_stats.bank.postgres import scrub

        return f"PostgreSQL at {redact_url(url)} unreachable: {scrub(error, url)}"
    return None


def create_schema(server_url: str, prefix: str = "nrr_t") -> tuple[str, str]:
    """Create an empty schema on the server; return (its name, a bank URL whose tables live in it)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    separator = "&" if "?" in server_url else "?"
    return name, f"{server_url}{separator}options={quote(f'-csearch_path={name}', safe='')}"


def drop_schema(server_url: str, name: str) -> None:
    """Drop a schema made by `create_schema`, with everything in it."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def synthetic_session(key: str) -> dict[str, Any]:
    """A session record as `Bank.upsert_session` takes it."""
    return {
        "session_key": key,
        "name": f"{key}.tsv",
        "source_path": f"/logs/{key}.tsv",
        "metric_name": "val_bpb",
        "metric_direction": "lower",
        "direction_source": "synthetic",
        "header": ["commit", "val_bpb", "memory_gb", "status", "description"],
    }


def synthetic_rows(
    session_id: int, count: int, *, start: int = 1, tag: str = ""
) -> list[dict[str, Any]]:
    """`count` experiment rows numbered from `start`, as `Bank.insert_experiments` takes them."""
    now = utc_now()
    statuses = ("keep", "discard", "discard", "crash")
    rows = []
    for number in range(start, start + count):
        status = statuses[number % len(statuses)]
        rows.append(
            {
                "session_id": session_id,
                "ordinal": number - 1,
                "row_number": number,
                "line_number": number + 1,
                "experiment_id": f"{tag}{number:07x}",
                "metric": None if status == "crash" else 1.0 - number * 1e-6,
                "status": status,
                "raw_status": status.upper(),
                "description": f"{tag} increase learning rate to {number % 97} (row {number})",
                "category": "learning_rate",
                "direction": "increase",
                "parameter": "lr",
                "from_value": str(number % 97),
                "to_value": str(number % 97 + 1),
                "outcome": None
                if status == "crash"
                else ("improved" if status == "keep" else "worse"),
                "delta": None if status == "crash" else -1e-3,
                "config_before": "{}",
                "evidence_weight": 1.0,
                "fields_json": "{}",
                "ingested_at": now,
            }
        )
    return rows
