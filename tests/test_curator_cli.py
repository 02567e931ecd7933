"""`nrr curate / records / validate / adopt / reject`: outputs, and every error path (exit 3, one line)."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

import pytest
from test_curator_support import FIXTURES, MessagesServer, good_record, small_bank, tool_answer


@dataclass
class Run:
    code: int
    out: str
    err: str


def nrr(*args: str) -> Run:
    from nrr_stats.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO("")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        sys.stdin = old_stdin
    return Run(code, out.getvalue(), err.getvalue())


def assert_input_error(run: Run, *fragments: str) -> None:
    assert run.code == 3, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nrr: "), run.err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def bank_path(tmp_path):
    small_bank(tmp_path).close()
    return tmp_path / "bank.db"


def test_validate_accepts_the_nk_papers_records():
    for name in ("paper_sample_depth1.json", "paper_shape_depth3.json"):
        run = nrr("validate", FIXTURES / name)
        assert run.code == 0 and "1 record(s) in 1 file(s): 1 valid, 0 invalid" in run.out


def test_curate_records_validate_round_trip(bank_path, tmp_path):
    run = nrr("curate", "--bank", bank_path, "--deep", "--json")
    assert run.code == 0, run.err
    summary = json.loads(run.out)
    assert summary["written"] == 6 and summary["deep_written"] == 1 and summary["source"] == "rules"
    listed = json.loads(nrr("records", "--bank", bank_path, "--json").out)
    assert len(listed) == 7
    exported = tmp_path / "records.json"
    exported.write_text(json.dumps([row["record"] for row in listed]))
    run = nrr("validate", exported)
    assert run.code == 0 and "7 record(s) in 1 file(s): 7 valid, 0 invalid" in run.out
    jsonl = tmp_path / "records.jsonl"
    jsonl.write_text("\n".join(json.dumps(row["record"]) for row in listed) + "\n")
    assert nrr("validate", jsonl).code == 0
    table = nrr("records", "--bank", bank_path, "--depth", "3")
    assert table.code == 0 and "1 NK record(s)" in table.out
    plain = nrr("curate", "--bank", bank_path)
    assert plain.code == 0 and "0 record(s) written, 6 already done" in plain.out


def test_adopt_and_reject_record_who_when_why(bank_path, monkeypatch):
    nrr("curate", "--bank", bank_path)
    monkeypatch.setenv("USER", "ana")
    adopted = nrr("adopt", "1", "--bank", bank_path)
    assert adopted.code == 0 and json.loads(adopted.out)["actor"] == "ana"
    rejected = nrr(
        "reject", "1", "--bank", bank_path, "--actor", "agent-7", "--reason", "config changed since"
    )
    event = json.loads(rejected.out)
    assert (event["action"], event["actor"], event["reason"]) == (
        "reject",
        "agent-7",
        "config changed since",
    )
    history = json.loads(nrr("records", "--bank", bank_path, "--json").out)[0]["history"]
    assert [(h["action"], h["actor"]) for h in history] == [("adopt", "ana"), ("reject", "agent-7")]
    monkeypatch.delenv("USER")
    assert json.loads(nrr("adopt", "2", "--bank", bank_path).out)["actor"] == "agent"


def test_curate_with_the_model_through_the_environment(bank_path, monkeypatch):
    with MessagesServer([("json", 200, tool_answer(good_record()))] * 6) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        run = nrr("curate", "--bank", bank_path, "--llm", "--model", "claude-x")
    assert run.code == 0, run.err
    assert "llm:claude-x: 6 record(s) written" in run.out and "tokens in/out 720/480" in run.out
    assert {r["model"] for r in server.requests} == {"claude-x"}
    listed = json.loads(
        nrr("records", "--bank", bank_path, "--json", "--source", "llm:claude-x").out
    )
    assert len(listed) == 6 and listed[0]["input_tokens"] == 120


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_errors(tmp_path):
    invalid = good_record(rationale="x" * 301)
    invalid["failure"]["degree"] = "probably"
    run = nrr("validate", write(tmp_path, "bad.json", json.dumps(invalid)))
    assert_input_error(run, "1 invalid", "bad.json:record 1: failure.degree 'probably'")
    assert "bad.json:record 1: error: failure.degree 'probably'" in run.out
    assert "bad.json:record 1: warning: rationale is 301 characters" in run.out
    two = json.dumps([good_record(), {**good_record(), "depth": 2}])
    run = nrr("validate", write(tmp_path, "two.json", two))
    assert_input_error(
        run, "1 valid, 1 invalid", "two.json:record 2: missing field: rounds_summary"
    )
    assert "two.json:record 1: valid" in run.out
    assert_input_error(
        nrr("validate", write(tmp_path, "broken.json", '{\n "task_id": ')),
        "broken.json:2: not JSON",
    )
    assert_input_error(nrr("validate", write(tmp_path, "empty.json", "[]")), "no records")
    lines = json.dumps(good_record()) + "\n{oops\n"
    assert_input_error(nrr("validate", write(tmp_path, "r.jsonl", lines)), "r.jsonl:2: not JSON")
    assert_input_error(nrr("validate", tmp_path / "missing.json"), "missing.json", "cannot read")
    assert_input_error(
        nrr("validate", write(tmp_path, "list.json", "[[1]]")), "record must be a JSON object"
    )


def test_curate_errors(bank_path, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert_input_error(nrr("curate", "--bank", bank_path, "--llm"), "ANTHROPIC_API_KEY")
    assert_input_error(nrr("curate", "--bank", bank_path, "--model", "m"), "only with --llm")
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--experiment", "nope"), "no experiment 'nope'"
    )
    assert_input_error(nrr("curate", "--bank", bank_path, "--session", "42"), "no session '42'")
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--artifacts", tmp_path / "none"),
        "artifacts directory not found",
    )
    weights = write(tmp_path, "w.toml", "[degree]\npartial = 2\n")
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--weights", weights), "w.toml", "partial = 2"
    )
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--weights", tmp_path / "no.toml"), "not found"
    )


def test_records_adopt_reject_errors(bank_path, tmp_path):
    assert_input_error(nrr("records", "--bank", tmp_path / "absent.db"), "no bank here yet")
    assert_input_error(nrr("adopt", "99", "--bank", bank_path), "no NK record with id 99")
    nrr("curate", "--bank", bank_path)
    assert_input_error(nrr("reject", "1", "--bank", bank_path), "--reason")
    assert_input_error(nrr("reject", "1", "--bank", bank_path, "--reason", "  "), "needs a reason")
    assert_input_error(nrr("adopt", "one", "--bank", bank_path), "record_id", "integer")


def test_curate_limit_and_reweighting_with_a_table(bank_path, tmp_path):
    run = nrr("curate", "--bank", bank_path, "--limit", "2")
    assert run.code == 0 and "2 record(s) written" in run.out and "stopped at --limit 2" in run.out
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--limit", "0"), "--limit must be at least 1"
    )
    nrr("curate", "--bank", bank_path)
    flat = write(
        tmp_path,
        "flat.toml",
        "[layer]\nimplementation_failure = 1.0\ncommunication_failure = 1.0\n"
        "[degree]\ninconclusive = 1.0\nartifact_driven = 1.0\noverclaimed = 1.0\n",
    )
    run = nrr("curate", "--bank", bank_path, "--weights", flat, "--json")
    assert run.code == 0 and json.loads(run.out)["reweighted"] == 6
    listed = json.loads(nrr("records", "--bank", bank_path, "--json").out)
    assert {row["evidence_weight"] for row in listed} == {1.0}
    assert nrr("records", "--bank", bank_path).code == 0
