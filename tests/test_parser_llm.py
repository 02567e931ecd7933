"""The optional model parser against a local Messages API server (never the network).

It is asked only about what the rules leave at `other`, through a tool whose schema allows only
the vocabulary's words; unusable answers and API faults leave the rules' parse; answers are
cached in the bank, so a description is asked once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from core_helpers import run_nrr, write_log
from test_curator_support import MessagesServer, error_body

from nrr_stats.bank import open_bank
from nrr_stats.curator.llm import ModelSettings
from nrr_stats.parser import load_rules, parse_description
from nrr_stats.parser.llm import TOOL_NAME, ModelParser, description_key, tool_schema

KEY = "sk-ant-test-key-not-real"
CHESS = "late move reductions at ply 3"


def answer(**fields: str) -> tuple:
    body = {"category": "other", "direction": "other", "parameter": "", "from": "", "to": ""}
    body |= fields
    return (
        "json",
        200,
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": TOOL_NAME, "input": body}],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 50, "output_tokens": 20},
        },
    )


def parser(server: MessagesServer, rules: Any = None) -> ModelParser:
    settings = ModelSettings(model="claude-test", api_key=KEY, base_url=server.url, timeout=5.0)
    return ModelParser(settings, rules or load_rules())


def test_only_what_the_rules_leave_at_other_is_asked_and_the_answer_is_cached() -> None:
    rules = load_rules()
    with MessagesServer([answer(category="data", direction="add")]) as server:
        model = parser(server, rules)
        ml = parse_description("increase LR to 0.04", rules=rules)
        assert model.fallback("increase LR to 0.04", ml, {}) == ml
        assert server.requests == []  # the rules named a category: no call
        text = "standardise the inputs"
        first = model.fallback(text, parse_description(text, rules=rules), {})
        again = model.fallback(text, parse_description(text, rules=rules), {})
    assert (first.category, first.direction) == ("data", "add") and again == first
    assert len(server.requests) == 1 and model.calls == 1
    request = server.requests[0]
    assert request["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    schema = request["tools"][0]["input_schema"]
    assert schema == tool_schema(rules)
    assert set(schema["properties"]["category"]["enum"]) == set(rules.vocabulary)
    assert text in request["messages"][0]["content"]
    assert description_key("claude-test", text) in model.fresh


def test_a_target_only_answer_reads_the_kept_configuration() -> None:
    with MessagesServer([answer(category="other", direction="other")]) as server:
        model = parser(server)
        text = "lmr reduction to 2"
        parsed = model.fallback(text, parse_description(text), {"LMR_REDUCTION": "3"})
    # the model said other: the rules' parse stands
    assert parsed == parse_description(text)
    with MessagesServer(
        [answer(category="model_depth", parameter="LMR_REDUCTION", to="2")]
    ) as server:
        model = parser(server)
        parsed = model.fallback(text, parse_description(text), {"LMR_REDUCTION": "3"})
    assert (parsed.direction, parsed.from_value, parsed.to_value) == ("decrease", "3", "2")


@pytest.mark.parametrize(
    "reply",
    [
        answer(category="trading_alpha"),  # not a word of the vocabulary
        answer(category="data", direction="sideways"),
        answer(category="data", parameter="not snake"),
        (
            "json",
            200,
            {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "model": "x",
                "content": [{"type": "text", "text": "data/add"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        ),
    ],
)
def test_an_unusable_answer_leaves_the_rules_parse_and_is_not_asked_again(reply: tuple) -> None:
    with MessagesServer([reply]) as server:
        model = parser(server)
        rules_parse = parse_description(CHESS)
        assert model.fallback(CHESS, rules_parse, {}) == rules_parse
        assert model.fallback(CHESS, rules_parse, {}) == rules_parse
    assert len(server.requests) == 1


def test_a_refused_request_leaves_the_rules_parse_and_is_asked_next_time() -> None:
    refused = ("json", 400, error_body("invalid_request_error", "bad request"))
    with MessagesServer([refused, answer(category="data", direction="add")]) as server:
        model = parser(server)
        rules_parse = parse_description(CHESS)
        assert model.fallback(CHESS, rules_parse, {}) == rules_parse
        assert model.failures == ["BadRequestError"]
        assert model.fallback(CHESS, rules_parse, {}).category == "data"
    assert len(server.requests) == 2


ROWS = [
    "a1\t1.00\t10\tkeep\tbaseline",
    f"a2\t0.99\t10\tkeep\t{CHESS}",
    "a3\t1.01\t10\tdiscard\tincrease LR to 0.04",
]


def test_ingest_llm_parse_stores_the_model_answer_and_caches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_log(tmp_path / "results.tsv", ROWS)
    bank_path = tmp_path / "bank.db"
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("NRR_RULES", raising=False)
    with MessagesServer() as server:
        server.default = answer(category="other", direction="other")
        # asked in log order: the baseline row first, then the chess row
        server.replies = [answer(), answer(category="architecture_other", direction="add")]
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        done = run_nrr("ingest", "--bank", str(bank_path), "--llm-parse", str(log))
        assert done.code == 0, done.err
        asked = [r["messages"][0]["content"] for r in server.requests]
        with open_bank(bank_path) as bank:
            stored = {row["description"]: row for row in bank.experiments()}
            cached = bank.cached_parses()
        # the baseline and the chess row are `other` by the rules; the LR row is not asked
        assert not any("increase LR" in text for text in asked)
        assert stored[CHESS]["category"] == "architecture_other"
        assert stored["increase LR to 0.04"]["category"] == "learning_rate"
        assert description_key("claude-sonnet-4-6", CHESS) in cached
        calls = len(server.requests)
        done = run_nrr("reparse", "--bank", str(bank_path), "--llm", "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["changed"] == 0
        assert len(server.requests) == calls  # every description came from the cache


def test_llm_parse_without_a_key_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    log = write_log(tmp_path / "results.tsv", ROWS)
    done = run_nrr("ingest", "--bank", str(tmp_path / "bank.db"), "--llm-parse", str(log))
    assert done.code == 3 and "ANTHROPIC_API_KEY" in done.err
    assert not (tmp_path / "bank.db").exists()
    assert run_nrr("parse", "--llm", CHESS).code == 3
