"""Issue 17 item 7: no password or API key on any output path (error lines, warnings, JSON),
whatever form the secret takes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import require_postgres
from core_helpers import GOOD_ROWS, run_nrr, write_log

from nrr_stats.bank import testing as bank_testing
from nrr_stats.bank.location import resolve_bank
from nrr_stats.secrets import redact_text, redact_url

SPACED = "zq7 wx9-kk"
KEYWORD_SECRET = "kw-s3cr3t-77"


@pytest.mark.parametrize(
    "address, secret",
    [
        (f"postgresql://agent:{SPACED}@127.0.0.1:1/bank", SPACED),
        (f"postgresql://agent:{quote(SPACED)}@127.0.0.1:1/bank", SPACED),
        (f"host=127.0.0.1 port=1 dbname=bank user=agent password={KEYWORD_SECRET}", KEYWORD_SECRET),
        (f"host=127.0.0.1 port=1 dbname=bank password='{SPACED}' user=agent", SPACED),
    ],
    ids=["url-space", "url-encoded-space", "keyword", "keyword-quoted-space"],
)
def test_an_unreachable_bank_prints_no_password(tmp_path: Path, monkeypatch, address, secret):
    monkeypatch.chdir(tmp_path)
    log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
    for args in (["ingest", str(log)], ["check", "increase LR to 0.1"]):
        result = run_nrr(*args, "--bank", address)
        assert result.code == 3
        assert "cannot connect" in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1
        everything = result.out + result.err
        for part in {secret, quote(secret), *secret.split()}:
            assert part not in everything
    # A keyword string is a PostgreSQL address, never a SQLite file named after it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.tsv"]


def test_a_keyword_connection_string_opens_a_postgresql_bank(tmp_path: Path, monkeypatch):
    server = require_postgres()
    schema, _ = bank_testing.create_schema(server)
    monkeypatch.chdir(tmp_path)
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(server)
        params["options"] = f"-csearch_path={schema}"
        params["password"] = SPACED  # the test server trusts; the password must still not show
        address = make_conninfo(**params)
        assert resolve_bank(address).backend == "postgresql"
        log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
        ingest = run_nrr("ingest", str(log), "--bank", address, "--json")
        assert ingest.code == 0, ingest.err
        check = run_nrr("check", "increase LR to 0.1", "--bank", address)
        assert check.code in (0, 1, 2), check.err
        answer = json.loads(check.out)
        assert answer["bank"]["experiments"] == len(GOOD_ROWS) - 1
        for output in (ingest.out + ingest.err, check.out + check.err):
            assert SPACED not in output and "wx9-kk" not in output
        assert "password=***" in answer["bank"]["url"]
        assert not any(p.name.startswith("host=") for p in tmp_path.iterdir())
    finally:
        bank_testing.drop_schema(server, schema)


def test_a_url_password_with_a_space_is_hidden_in_the_checks_json(tmp_path, monkeypatch):
    server = require_postgres()
    schema, url = bank_testing.create_schema(server)
    monkeypatch.chdir(tmp_path)
    try:
        address = url.replace("postgresql://nrr@", f"postgresql://nrr:{quote(SPACED)}@")
        assert address != url
        log = write_log(tmp_path / "results.tsv", GOOD_ROWS)
        assert run_nrr("ingest", str(log), "--bank", address).code == 0
        check = run_nrr("check", "increase LR to 0.1", "--bank", address)
        assert check.code in (0, 1, 2), check.err
        assert "zq7" not in json.loads(check.out)["bank"]["url"]
        for form in (SPACED, quote(SPACED), "wx9-kk"):
            assert form not in check.out + check.err
    finally:
        bank_testing.drop_schema(server, schema)


def test_an_api_key_echoed_by_the_apis_error_body_is_never_printed(tmp_path, monkeypatch):
    from test_curator_support import MessagesServer, error_body, small_bank

    key = "proxy-key-5bd1e0c9a7"  # not the sk-ant- form a pattern would catch
    small_bank(tmp_path).close()
    body = error_body("authentication_error", f"invalid x-api-key: {key}")
    with MessagesServer([("json", 401, body)]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        result = run_nrr("curate", "--llm", "--bank", str(tmp_path / "bank.db"))
    assert result.code == 3
    assert "401" in result.err and len(result.err.strip().splitlines()) == 1
    assert key not in result.out + result.err


@pytest.mark.parametrize(
    "text, secret",
    [
        ("postgresql://u:a b c@h/db", "a b c"),
        ("postgresql://u:p@ss@h/db", "p@ss"),
        ("postgresql://h/db?sslmode=x&password=qq11", "qq11"),
        ("host=h password=plain11 dbname=x", "plain11"),
        ("host=h password = 'q u o t e\\'d' dbname=x", "q u o t e"),
        ("error from sk-ant-api03-abcdefghijkl", "abcdefghijkl"),
    ],
)
def test_redaction_patterns(text: str, secret: str):
    masked = redact_url(text) if "sk-ant" not in text else redact_text(text)
    assert secret not in masked and "***" in masked


def test_a_password_known_to_the_process_is_masked_in_any_message():
    resolve_bank(f"postgresql://agent:{SPACED}@db.example/bank")
    assert SPACED not in redact_text(f"FATAL: password {SPACED} rejected for {os.getpid()}")
