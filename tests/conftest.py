"""Shared fixtures: a fresh bank on each backend (SQLite file; PostgreSQL schema when a server answers).

PostgreSQL cases read the server URL from `$NRR_TEST_POSTGRES` and skip with the reason when
it is unset or unreachable; with `$NRR_TEST_POSTGRES_REQUIRED=1` (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from nrr_stats.bank import Bank, open_bank
from nrr_stats.bank import testing as bank_testing

# CI replays the same examples every run, so a verdict on main never depends on the draw;
# local runs keep exploring new ones (and keep failures in the example database).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@functools.cache
def _postgres_unreachable() -> str | None:
    return bank_testing.postgres_unreachable_reason(bank_testing.postgres_server_url())


def require_postgres() -> str:
    """The test server URL, or skip (fail, when required) with the reason none is usable."""
    reason = _postgres_unreachable()
    if reason is None:
        server = bank_testing.postgres_server_url()
        assert server is not None
        return server
    if os.environ.get("NRR_TEST_POSTGRES_REQUIRED") == "1":
        pytest.fail(f"PostgreSQL required but unusable: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=BACKENDS)
def bank_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of an empty, not yet created bank on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bank.db'}"
        return
    server = require_postgres()
    schema, url = bank_testing.create_schema(server)
    # Files beside a PostgreSQL bank go under ./.nrr: keep them in the test's directory.
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(tmp_path)
    try:
        yield url
    finally:
        monkeypatch.undo()
        bank_testing.drop_schema(server, schema)


@pytest.fixture
def bank(bank_url: str) -> Iterator[Bank]:
    """A freshly created bank on each backend, closed after the test."""
    opened = open_bank(bank_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(params=BACKENDS)
def bank_url_maker(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Callable[[], str]]:
    """Makes URLs of empty banks on each backend, one per call (Hypothesis tests: a bank per example)."""
    server = require_postgres() if request.param == "postgresql" else None
    schemas: list[str] = []

    def make() -> str:
        if server is None:
            return f"sqlite:///{tmp_path_factory.mktemp('bank') / 'bank.db'}"
        schema, url = bank_testing.create_schema(server)
        schemas.append(schema)
        return url

    try:
        yield make
    finally:
        for schema in schemas:
            assert server is not None
            bank_testing.drop_schema(server, schema)
