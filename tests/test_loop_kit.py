"""The loop kit: the program.md block followed literally on the seed log, `nrr ingest --follow`
through appends, truncation and rotation, the MCP tools through the SDK's own client, NRR's
flags and field names on the NRR prototype's demo proposals, and `nrr doctor`."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from core_helpers import SEED_LOG, run_nrr

from nrr_stats.program_md import BEGIN, END

SEED_LINES = SEED_LOG.read_text(encoding="utf-8").splitlines(keepends=True)
EXIT_VERDICTS = {0: "proceed", 1: "caution", 2: "avoid"}

# The NRR prototype's demo proposals (t46/negative-result-repository demo.py at 8808f7f).
NRR_DEMO_PROPOSALS = [
    ("Increase learning rate to 0.02 for faster convergence", {"LEARNING_RATE": "0.02"}),
    ("Switch to AdamW optimizer with default settings", {"OPTIMIZER": "adamw"}),
    ("Add residual connections to all conv blocks", {"ARCHITECTURE": "residual"}),
    ("Reduce batch size to 64 for better generalization", {"BATCH_SIZE": "64"}),
    ("Enable mixed precision training with torch.amp", {}),
]


def _commands(block: str) -> list[str]:
    """The shell commands of the block's code fences, in order."""
    return [
        line.strip()
        for fence in re.findall(r"```bash\n(.*?)```", block, re.S)
        for line in fence.splitlines()
        if line.strip()
    ]


def _rows(bank: Path) -> int:
    with sqlite3.connect(bank) as connection:
        return connection.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]


def test_the_program_md_block_followed_literally(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NRR_BANK", raising=False)
    run = run_nrr("init", "program.md")
    assert run.code == 0
    block = Path("program.md").read_text(encoding="utf-8")
    assert block.count(BEGIN) == 1 and block.count(END) == 1
    once, check, after = _commands(block)
    # The exit codes the block explains are the ones nrr check uses.
    for code, verdict in EXIT_VERDICTS.items():
        assert f"exit {code}, `{verdict}`" in block
    assert "exit 3" in block and "recommended_alternative" in block

    Path("results.tsv").write_text("".join(SEED_LINES[:11]), encoding="utf-8")  # header + 10 rows
    assert run_nrr(*shlex.split(once)[1:]).code == 0
    assert _rows(Path(".nrr/bank.db")) == 10

    proposals = [
        "Increase learning rate from 0.01 to 0.1\nLEARNING_RATE = 0.1",  # already failed here
        "Switch to AdamW\nOPTIMIZER = adamw",
        "Use mixed precision training",
    ]
    for step, proposal in enumerate(proposals):
        Path("proposal.txt").write_text(proposal + "\n", encoding="utf-8")  # step 1
        asked = run_nrr(*shlex.split(check)[1:])  # step 2
        assert asked.code in EXIT_VERDICTS, asked.err
        answer = json.loads(asked.out)
        assert answer["verdict"] == EXIT_VERDICTS[asked.code]
        assert "recommended_alternative" in answer
        if asked.code == 2 and answer["recommended_alternative"]:
            assert isinstance(answer["recommended_alternative"], str)
        # The experiment ran: its row is appended, then the block's ingest.
        with open("results.tsv", "a", encoding="utf-8") as log:
            log.write(SEED_LINES[11 + step])
        assert run_nrr(*shlex.split(after)[1:]).code == 0
        assert _rows(Path(".nrr/bank.db")) == 11 + step
    assert answer["bank"]["experiments"] >= 10

    # Run again: the block is replaced, not doubled.
    assert run_nrr("init", "program.md").code == 0
    assert Path("program.md").read_text(encoding="utf-8").count(BEGIN) == 1


def _wait_for(predicate, seconds: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_follow_ingests_appends_truncation_and_rotation(tmp_path: Path) -> None:
    from nrr_stats.bank import open_bank
    from nrr_stats.follow import follow_log

    log, bank_path = tmp_path / "results.tsv", tmp_path / "bank.db"
    log.write_text("".join(SEED_LINES[:3]), encoding="utf-8")
    open_bank(bank_path).close()
    stop, errors = threading.Event(), []

    def follow() -> None:
        with open_bank(bank_path) as bank:
            follow_log(bank, log, stop=stop, on_error=errors.append)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        assert _wait_for(lambda: _rows(bank_path) == 2, 5.0) is not None  # the start
        for expected, line in enumerate(SEED_LINES[3:7], start=3):
            with open(log, "a", encoding="utf-8") as out:
                out.write(line)
            took = _wait_for(lambda e=expected: _rows(bank_path) == e, 1.0)
            assert took is not None, f"row {expected} not ingested within a second"
        # A partial last line is not yet a row; completed, it is.
        with open(log, "a", encoding="utf-8") as out:
            out.write(SEED_LINES[7][:10])
        time.sleep(0.5)
        assert _rows(bank_path) == 6
        with open(log, "a", encoding="utf-8") as out:
            out.write(SEED_LINES[7][10:])
        assert _wait_for(lambda: _rows(bank_path) == 7, 1.0) is not None
        # Truncated and rewritten from the start by another loop: its rows are read.
        other = [
            "commit\tval_accuracy\tmemory_gb\tstatus\tdescription\n",
            "c0\t0.5\t1.0\tkeep\tbaseline\n",
            "c1\t0.4\t1.0\tdiscard\tincrease dropout to 0.5\n",
        ]
        log.write_text("".join(other), encoding="utf-8")
        assert _wait_for(lambda: _rows(bank_path) == 9, 1.0) is not None
        # Rotated: moved away, a new log made at the path.
        log.rename(tmp_path / "results.tsv.1")
        time.sleep(0.3)
        log.write_text(
            "".join(other[:2] + ["c9\t0.6\t1.0\tkeep\tadd weight decay 0.01\n"]), encoding="utf-8"
        )
        assert _wait_for(lambda: _rows(bank_path) == 11, 1.0) is not None  # a new session: 2 rows
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_mcp_tools_through_the_sdk_client(tmp_path: Path) -> None:
    mcp = pytest.importorskip("mcp")
    if not hasattr(mcp, "Client"):
        pytest.skip("the in-process client needs mcp >= 2")
    from nrr_stats.mcp_server import build_server

    bank = tmp_path / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    server = build_server(str(bank))
    expected = {"check", "ingest", "similar", "patterns", "sessions", "records", "adopt", "reject"}

    async def session() -> None:
        async with mcp.Client(server) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) == expected
            assert tools["check"].input_schema["required"] == ["proposal"]
            assert tools["reject"].input_schema["properties"]["reason"]["type"] == "string"

            result = await client.call_tool("check", {"proposal": "Switch to AdamW"})
            assert not result.is_error
            answer = result.structured_content
            direct = json.loads(run_nrr("check", "Switch to AdamW", "--bank", str(bank)).out)
            assert (answer["verdict"], answer["p_keep"], answer["interval"]) == (
                direct["verdict"],
                direct["p_keep"],
                direct["interval"],
            )
            brief = await client.call_tool("check", {"proposal": "Switch to AdamW", "brief": True})
            assert len(brief.structured_content["brief"].encode()) < 1024

            listed = (await client.call_tool("sessions", {})).structured_content["sessions"]
            assert [s["rows"] for s in listed] == [21]
            cells = (await client.call_tool("patterns", {})).structured_content["cells"]
            assert {"category", "direction", "n", "mean", "interval"} <= cells[0].keys()
            found = await client.call_tool("similar", {"description": "increase LR", "count": 2})
            assert len(found.structured_content["experiments"]) == 2

            grown = tmp_path / "more.tsv"
            grown.write_text("".join(SEED_LINES[:5]), encoding="utf-8")
            stored = await client.call_tool("ingest", {"path": str(grown), "session_name": "m"})
            assert stored.structured_content["rows_added"] == 4
            after = (await client.call_tool("sessions", {})).structured_content["sessions"]
            assert [s["name"] for s in after][-1] == "m"

            records = (await client.call_tool("records", {})).structured_content["records"]
            assert records == []
            bad = await client.call_tool("check", {"proposal": "x", "session": "nope"})
            assert bad.is_error and "no session 'nope'" in bad.content[0].text
            refused = await client.call_tool("adopt", {"record_id": 999})
            assert refused.is_error

    asyncio.run(session())
    server.nrr_checker.close()


@pytest.fixture(scope="module")
def seed_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bank = tmp_path_factory.mktemp("nrr") / "bank.db"
    assert run_nrr("ingest", str(SEED_LOG), "--bank", str(bank)).code == 0
    return bank


@pytest.mark.parametrize(("description", "config"), NRR_DEMO_PROPOSALS)
def test_nrr_demo_proposals_through_both_field_sets(
    seed_bank: Path, tmp_path: Path, description: str, config: dict
) -> None:
    proposal = tmp_path / "proposal.txt"
    proposal.write_text(
        "a line the description replaces\n" + "".join(f"{k} = {v}\n" for k, v in config.items()),
        encoding="utf-8",
    )
    run = run_nrr(
        "check",
        "--proposal-file",
        str(proposal),
        "--description",
        description,
        "--bank",
        str(seed_bank),
    )
    assert run.code in EXIT_VERDICTS, run.err
    answer = json.loads(run.out)
    assert answer["verdict"] == EXIT_VERDICTS[run.code]
    # nrr-stats' own fields.
    assert {
        "reason",
        "p_keep",
        "interval",
        "category",
        "patterns",
        "nk_records",
        "fit",
    } <= answer.keys()
    # NRR's fields, mirroring them.
    assert answer["estimated_success_probability"] == answer["p_keep"]
    assert answer["parsed_description"] == description
    assert answer["parsed_config_changes"] == {k.upper(): v for k, v in config.items()}
    assert answer["database"] == answer["bank"]["url"] == f"sqlite:///{seed_bank}"
    commits = {line.split("\t")[4].strip(): line.split("\t")[0] for line in SEED_LINES[1:]}
    for item in answer["similar_failures"]:
        assert item["experiment_id"] == commits[item["description"]]
        assert item["accuracy_delta"] == item["delta"]
        assert isinstance(item["lesson"], str) and item["lesson"]
        assert {"description", "similarity"} <= item.keys()
    assert len(answer["relevant_patterns"]) == len(answer["patterns"])
    for pattern, cell in zip(answer["relevant_patterns"], answer["patterns"], strict=True):
        assert pattern["pattern_id"] == f"{cell['category']}/{cell['direction']}"
        assert pattern["num_experiments"] == cell["n"]
        assert pattern["confidence"] == cell["prob_below_base"]
        assert f"over {cell['n']} experiments" in pattern["rule"]


def test_doctor_says_where_everything_is(seed_bank: Path, tmp_path: Path) -> None:
    run = run_nrr("doctor", "--bank", str(seed_bank), "--format", "json")
    assert run.code == 0, run.out
    items = {item["item"]: item for item in json.loads(run.out)}
    assert items["bank"]["status"] == "ok" and "21 rows" in items["bank"]["detail"]
    assert items["population prior"]["status"] == "ok"
    assert items["population prior"]["where"].endswith("population_prior.npz")
    assert items["fit"]["status"] == "absent"
    missing = run_nrr("doctor", "--bank", str(tmp_path / "none.db"), "--format", "json")
    assert missing.code == 1
    bank = next(i for i in json.loads(missing.out) if i["item"] == "bank")
    assert bank["status"] == "problem" and "nrr ingest results.tsv" in bank["detail"]
    assert not (tmp_path / "none.db").exists()
