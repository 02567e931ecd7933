"""The model curator against a local Messages API server: answers, retries, faults, redaction.

Never the network: the SDK's base URL points at a server on 127.0.0.1 in this process.
"""

from __future__ import annotations

import json
import os

import pytest
from test_curator_schema import SECRETS, secret_text
from test_curator_support import (
    MessagesServer,
    error_body,
    good_record,
    small_bank,
    tool_answer,
)

from nrr_stats.curator import curate, fetch_records, load_weights, validate
from nrr_stats.curator.artifacts import LOG_TAIL_CAP, load_artifacts
from nrr_stats.curator.llm import (
    TOOL_NAME,
    CuratorAPIError,
    ModelCurator,
    ModelSettings,
    settings_from_env,
)
from nrr_stats.curator.schema import model_fields_schema

MODEL = "claude-test"
FAILURES = 6  # failed experiments in SMALL_LOG
OK = ("json", 200, tool_answer(good_record()))


class Sleeps(list):
    """Records the delays the curator asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def model_curator(server: MessagesServer, sleeps: Sleeps | None = None, **settings) -> ModelCurator:
    options = {
        "model": MODEL,
        "api_key": "sk-ant-test-key-not-real",
        "base_url": server.url,
        "timeout": 2.0,
        "max_attempts": 4,
        "base_delay": 0.5,
    } | settings
    return ModelCurator(
        ModelSettings(**options),
        sleep=sleeps if sleeps is not None else Sleeps(),
        jitter=lambda: 0.5,
    )


def test_a_valid_tool_call_is_stored_with_its_usage(tmp_path):
    bank = small_bank(tmp_path)
    with MessagesServer([OK] * FAILURES) as server:
        summary = curate(bank, model=model_curator(server))
    assert summary.written == FAILURES and summary.model_fallbacks == 0 and summary.retries == 0
    assert (summary.input_tokens, summary.output_tokens) == (120 * FAILURES, 80 * FAILURES)
    records = fetch_records(bank)
    assert len(records) == FAILURES
    for row in records:
        assert row["source"] == f"llm:{MODEL}" and row["record"]["source"] == f"llm:{MODEL}"
        assert (row["input_tokens"], row["output_tokens"]) == (120, 80)
        assert validate(row["record"]) == []
        assert row["evidence_weight"] == load_weights().weight(good_record()["failure"])
    request = server.requests[0]
    assert request["model"] == MODEL
    assert request["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    assert [t["name"] for t in request["tools"]] == [TOOL_NAME]
    assert request["tools"][0]["input_schema"] == model_fields_schema(1)
    assert "increase LR to 0.04" in request["messages"][0]["content"]
    # The experiments' weights follow the model's records, not the rules'.
    weights = {e["id"]: e["evidence_weight"] for e in bank.experiments()}
    assert all(weights[r["experiment_id"]] == r["evidence_weight"] for r in records)


def test_an_invalid_record_is_retried_once_with_its_violations(tmp_path):
    bank = small_bank(tmp_path)
    bad = good_record(rationale="x" * 350)
    bad["failure"]["layer"] = "design_failure"
    replies = [("json", 200, tool_answer(bad)), OK] + [OK] * (FAILURES - 1)
    with MessagesServer(replies) as server:
        summary = curate(bank, model=model_curator(server))
    assert summary.written == FAILURES and summary.model_fallbacks == 0
    assert len(server.requests) == FAILURES + 1
    retry = server.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    result = retry[2]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert (
        "failure.layer 'design_failure'" in result["content"]
        and "rationale is 350 characters" in result["content"]
    )
    first = fetch_records(bank)[0]
    assert first["source"] == f"llm:{MODEL}" and (
        first["input_tokens"],
        first["output_tokens"],
    ) == (240, 160)


def test_two_invalid_answers_store_the_offline_record_with_the_failure_noted(tmp_path):
    bank = small_bank(tmp_path)
    bad = ("json", 200, tool_answer(good_record(ruled_out_routes=["just one"])))
    text_only = {
        **tool_answer(good_record()),
        "content": [{"type": "text", "text": "I think it failed."}],
        "stop_reason": "end_turn",
    }
    with MessagesServer([bad, ("json", 200, text_only)] + [OK] * (FAILURES - 1)) as server:
        summary = curate(bank, model=model_curator(server))
    assert summary.model_fallbacks == 1 and summary.written == FAILURES
    fallback = next(r for r in fetch_records(bank) if r["source"] == "rules")
    assert fallback["note"].startswith(f"llm:{MODEL} answer invalid twice")
    assert "no call of the tool" in fallback["note"]
    assert (fallback["input_tokens"], fallback["output_tokens"]) == (240, 160)
    assert validate(fallback["record"]) == []
    # Resuming the same model's run redoes nothing, the fallback included.
    with MessagesServer([]) as server:
        again = curate(bank, model=model_curator(server))
    assert server.requests == [] and again.already_done == FAILURES


def test_rate_limit_server_error_timeout_and_truncated_body_are_retried(tmp_path):
    bank = small_bank(tmp_path)
    replies = [
        ("json", 429, error_body("rate_limit_error", "slow down"), {"retry-after": "3"}),
        OK,
        ("json", 500, error_body("api_error", "internal")),
        ("json", 529, error_body("overloaded_error", "overloaded")),
        OK,
        ("slow", 1.5, tool_answer(good_record())),
        OK,
        ("truncated", tool_answer(good_record())),
        OK,
        OK,
        OK,
    ]
    sleeps = Sleeps()
    with MessagesServer(replies) as server:
        curator = model_curator(server, sleeps, timeout=0.5)
        summary = curate(bank, model=curator)
    assert summary.written == FAILURES and summary.retries == 5 and summary.model_fallbacks == 0
    assert len(server.requests) == FAILURES + 5
    assert sleeps[0] >= 3.0  # the 429's retry-after is honoured
    # 500 then 529: exponential backoff (base 0.5 s, jitter 0.5 -> 0.75 of the ceiling).
    assert sleeps[1:3] == [pytest.approx(0.375), pytest.approx(0.75)]
    assert len(sleeps) == 5
    assert all(r["source"] == f"llm:{MODEL}" for r in fetch_records(bank))
    # Tokens are counted once per answered call.
    assert summary.input_tokens == 120 * FAILURES


def test_fault_kinds_are_told_apart():
    replies = [
        ("json", 429, error_body("rate_limit_error", "x"), {"retry-after": "1"}),
        ("json", 503, error_body("api_error", "x")),
        ("slow", 1.0, tool_answer(good_record())),
        ("truncated", tool_answer(good_record())),
        ("json", 200, {"not": "a message"}),
        OK,
    ]
    with MessagesServer(replies) as server:
        curator = model_curator(server, timeout=0.4, max_attempts=6)
        answer = curator.curate("prompt", {}, depth=1)
    assert answer.record is not None and answer.calls == 6 and answer.retries == 5
    kinds = [fault.split(" ")[0] for fault in answer.faults]
    assert kinds[:3] == ["429", "server", "timeout"]
    assert answer.faults[3].startswith(("connection failed", "unreadable response body"))
    assert answer.faults[4].startswith("unreadable response body")


def test_a_lasting_outage_stops_the_run_and_a_rerun_resumes(tmp_path):
    bank = small_bank(tmp_path)
    down = ("json", 500, error_body("api_error", "down"))
    with (
        MessagesServer([OK, OK] + [down] * 3) as server,
        pytest.raises(
            CuratorAPIError,
            match="still fails after 3 attempts .*server error 500.*rerun to resume",
        ),
    ):
        curate(bank, model=model_curator(server, max_attempts=3))
    assert len(fetch_records(bank)) == 2
    with MessagesServer([OK] * FAILURES) as server:
        summary = curate(bank, model=model_curator(server))
    assert summary.already_done == 2 and summary.written == FAILURES - 2
    assert len(server.requests) == FAILURES - 2


def test_a_refused_request_is_not_retried(tmp_path):
    bank = small_bank(tmp_path)
    with MessagesServer(
        [("json", 401, error_body("authentication_error", "invalid x-api-key"))]
    ) as server:
        with pytest.raises(CuratorAPIError, match="refused the request \\(401\\)"):
            curate(bank, model=model_curator(server))
        assert len(server.requests) == 1
    assert fetch_records(bank) == []


def test_depth_n_records_through_the_model(tmp_path):
    bank = small_bank(tmp_path)
    deep = good_record(
        depth=3,
        rounds_summary=[
            {"attempted_route": f"increase LR to 0.0{i}", "observation": "worse"} for i in (4, 5, 6)
        ],
        ruled_out_routes=["increase LR to 0.04", "increase LR to 0.05", "increase LR to 0.06"],
        synthesised_diagnosis="Every larger LR lost to the kept run: the LR is at or past its optimum.",
        recommended_alternative="Decrease LR by a third.",
    )
    with MessagesServer([OK] * FAILURES + [("json", 200, tool_answer(deep))]) as server:
        summary = curate(bank, model=model_curator(server), deep=True)
    assert summary.deep_written == 1 and summary.model_fallbacks == 0
    [record] = fetch_records(bank, depth=3)
    assert record["source"] == f"llm:{MODEL}" and record["record"][
        "synthesised_diagnosis"
    ].startswith("Every")
    assert server.requests[-1]["tools"][0]["input_schema"] == model_fields_schema(3)


# -- artifacts -----------------------------------------------------------------------------------


def test_no_secret_from_the_artifacts_reaches_the_server(tmp_path):
    bank = small_bank(tmp_path)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    for row in bank.experiments():
        stem = artifacts / row["experiment_id"]
        stem.with_suffix(".log").write_text(secret_text() + "\nRuntimeError: CUDA out of memory\n")
        stem.with_suffix(".diff").write_text(
            f'+AWS_SECRET_ACCESS_KEY = "{SECRETS["aws_secret"]}"\n+LR = 0.04\n'
        )
        (artifacts / f"{row['experiment_id']}.reasoning.md").write_text(
            f"I will try a higher LR. My key is {SECRETS['anthropic']} and password: {SECRETS['password']}"
        )
    with MessagesServer([OK] * FAILURES) as server:
        curate(bank, model=model_curator(server), artifacts_dir=artifacts.resolve())
    assert len(server.raw_requests) == FAILURES
    for raw in server.raw_requests:
        for name, secret in SECRETS.items():
            assert secret not in raw, name
            assert json.dumps(secret)[1:-1] not in raw, name
        assert (
            "tokens_per_step = 524288" in raw
            and "+LR = 0.04" in raw
            and "I will try a higher LR" in raw
        )


def test_artifacts_are_capped_and_read_only_inside_the_directory(tmp_path):
    directory = tmp_path / "artifacts"
    directory.mkdir()
    lines = [f"step {i} | loss {3 - i / 1e5:.5f}" for i in range(60_000)]
    (directory / "big.log").write_text("FIRST LINE\n" + "\n".join(lines) + "\nLAST LINE\n")
    loaded = load_artifacts(directory, "big")
    assert len(loaded.log_tail) <= LOG_TAIL_CAP + 5
    assert loaded.log_tail.rstrip().endswith("LAST LINE") and "FIRST LINE" not in loaded.log_tail
    outside = tmp_path / "secret.log"
    outside.write_text("outside the artifacts directory")
    (directory / "linked.log").symlink_to(outside)
    assert load_artifacts(directory, "linked").log_tail == ""
    assert load_artifacts(directory, "../secret").log_tail == ""
    assert load_artifacts(None, "big").present() == {}


# -- settings ------------------------------------------------------------------------------------


def test_model_settings_need_an_api_key(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(Exception, match="ANTHROPIC_API_KEY"):
        settings_from_env()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-x")
    monkeypatch.setenv("NRR_CURATOR_MODEL", "claude-other")
    assert settings_from_env().model == "claude-other"
    assert settings_from_env("claude-given").model == "claude-given"
    assert settings_from_env().source == "llm:claude-other"
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-x"


def test_a_depth_n_fallback_counts_as_done_on_resume(tmp_path):
    bank = small_bank(tmp_path)
    shallow = ("json", 200, tool_answer(good_record()))  # a depth-1 answer where depth 3 is due
    with MessagesServer([OK] * FAILURES + [shallow, shallow]) as server:
        summary = curate(bank, model=model_curator(server), deep=True)
    assert summary.model_fallbacks == 1 and summary.deep_written == 1
    [record] = fetch_records(bank, depth=3)
    assert record["source"] == "rules" and "depth is 1, expected 3" in record["note"]
    with MessagesServer([]) as server:
        again = curate(bank, model=model_curator(server), deep=True)
    assert server.requests == [] and again.deep_already_done == 1


def test_no_write_lock_is_held_while_the_api_is_called(tmp_path):
    import sqlite3

    bank = small_bank(tmp_path)
    locked = []

    def try_to_write(seconds: float) -> None:
        other = sqlite3.connect(tmp_path / "bank.db", timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            locked.append(str(error))
        finally:
            other.close()

    replies = [
        ("json", 500, error_body("api_error", "x")),
        OK,
        ("json", 500, error_body("api_error", "x")),
    ]
    with MessagesServer(replies + [OK] * FAILURES) as server:
        curator = ModelCurator(
            ModelSettings(
                model=MODEL, api_key="k", base_url=server.url, timeout=2.0, base_delay=0.01
            ),
            sleep=try_to_write,
        )
        summary = curate(bank, model=curator)
    assert summary.written == FAILURES and summary.retries == 2
    assert locked == []


def test_a_limit_caps_the_records_of_one_run(tmp_path):
    bank = small_bank(tmp_path)
    with MessagesServer([OK] * FAILURES) as server:
        first = curate(bank, model=model_curator(server), limit=2)
        assert first.limited and first.written == 2 and len(server.requests) == 2
        rest = curate(bank, model=model_curator(server), limit=10)
    assert not rest.limited and rest.written == FAILURES - 2 and rest.already_done == 2
