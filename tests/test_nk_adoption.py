"""Curating from NK-style artifacts, and adopted records acting on `nrr check`'s verdict."""

from __future__ import annotations

import json

import pytest
from test_curator_cli import assert_input_error, nrr
from test_curator_support import MessagesServer, good_record, small_bank, tool_answer

from nrr_stats.bank import open_bank
from nrr_stats.decide import heed_adopted_records

TRACEBACK = "Traceback (most recent call last):\n  File 'train.py'\ntorch.OutOfMemoryError: CUDA out of memory.\n"


@pytest.fixture
def bank_path(tmp_path):
    small_bank(tmp_path).close()
    return tmp_path / "bank.db"


def nk_round(directory, name, **files):
    folder = directory / name
    folder.mkdir(parents=True)
    for file_name, text in files.items():
        (folder / file_name.replace("_", ".", 1)).write_text(text)
    return folder


def stored(bank_path, experiment_id):
    with open_bank(bank_path) as bank:
        rows = bank.query(
            "SELECT r.record_json FROM nk_records r JOIN experiments e ON e.id = r.experiment_id"
            " WHERE e.experiment_id = ? AND r.depth = 1",
            (experiment_id,),
        )
    return [json.loads(row["record_json"]) for row in rows]


# -- curate --artifacts ---------------------------------------------------------------------------


def test_curate_reads_nk_round_folders_and_names_the_files(bank_path, tmp_path):
    artifacts = tmp_path / "artifacts"
    nk_round(
        artifacts,
        "sma0005",
        exec_log=TRACEBACK,
        candidate_py="model = GPT(n_embd=2048)\n",
        reasoning_md="# Round reasoning\nWider is better.\n",
    )
    (artifacts / "sma0008.log").write_text("RuntimeError: shape mismatch\n")
    nk_round(artifacts, "zzz9999", exec_log="nothing\n")
    run = nrr("curate", "--bank", bank_path, "--artifacts", artifacts)
    assert run.code == 0, run.err
    assert (
        "artifacts of sma0005: sma0005/exec.log, sma0005/candidate.py, sma0005/reasoning.md"
        in run.out
    )
    assert "artifacts of sma0008: sma0008.log" in run.out
    warnings = run.err.strip().splitlines()
    assert len(warnings) == 1 and "zzz9999: artifacts that match no experiment" in warnings[0]
    (record,) = stored(bank_path, "sma0005")
    assert "from the log tail" in record["observation"]
    assert record["artifacts"] == [
        "sma0005/exec.log",
        "sma0005/candidate.py",
        "sma0005/reasoning.md",
    ]
    assert record["task_id"] == "key-small.tsv"  # the session's key, not the log's file name


def test_artifacts_that_arrive_after_a_first_curation_are_rediagnosed(bank_path, tmp_path):
    assert nrr("curate", "--bank", bank_path).code == 0
    (before,) = stored(bank_path, "sma0007")
    assert "from the log tail" not in before["observation"] and "artifacts" not in before
    artifacts = tmp_path / "artifacts"
    nk_round(artifacts, "sma0007", exec_log=TRACEBACK)
    run = nrr("curate", "--bank", bank_path, "--artifacts", artifacts, "--json")
    summary = json.loads(run.out)
    assert (summary["rediagnosed"], summary["written"], summary["already_done"]) == (1, 1, 5)
    (after,) = stored(bank_path, "sma0007")
    assert "from the log tail" in after["observation"]
    again = json.loads(nrr("curate", "--bank", bank_path, "--artifacts", artifacts, "--json").out)
    assert (again["rediagnosed"], again["written"]) == (0, 0)
    (artifacts / "sma0007" / "reasoning.md").write_text("OOM expected\n")
    more = json.loads(nrr("curate", "--bank", bank_path, "--artifacts", artifacts, "--json").out)
    assert more["rediagnosed"] == 1  # a new file is new evidence


def test_the_model_reads_the_eval_log(bank_path, tmp_path, monkeypatch):
    artifacts = tmp_path / "artifacts"
    nk_round(artifacts, "sma0002", exec_log="ran fine\n", eval_log="score (0, 'N/A')\n")
    with MessagesServer([("json", 200, tool_answer(good_record()))] * 6) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-real")
        run = nrr(
            "curate",
            "--bank",
            bank_path,
            "--llm",
            "--base-url",
            server.url,
            "--experiment",
            "sma0002",
            "--artifacts",
            artifacts,
        )
    assert run.code == 0, run.err
    prompt = json.dumps(server.requests[0])
    assert "<eval_log>" in prompt and "score (0, 'N/A')" in prompt and "<log_tail>" in prompt


def test_an_artifact_folder_escaping_the_directory_is_not_read(bank_path, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "exec.log").write_text(TRACEBACK)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "sma0005").symlink_to(outside, target_is_directory=True)
    run = nrr("curate", "--bank", bank_path, "--artifacts", artifacts)
    assert run.code == 0 and "artifacts of sma0005" not in run.out
    (record,) = stored(bank_path, "sma0005")
    assert "artifacts" not in record


def test_artifacts_errors(bank_path, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert_input_error(
        nrr("curate", "--bank", bank_path, "--artifacts", plain), "artifacts directory not found"
    )


# -- adopted records and the verdict ---------------------------------------------------------------


# No word in common with the small log's rows ("... to 64" would share "to" with three of its
# failures, which the evidence model's word sets count, and read as caution on its own evidence).
def check(bank_path, proposal="reduce batch size"):
    run = nrr("check", proposal, "--bank", bank_path)
    return run.code, json.loads(run.out)


def import_on(bank_path, tmp_path, route, name, **changes):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(good_record(**changes)))
    run = nrr("import-records", path, "--bank", bank_path, "--route", route, "--json")
    assert run.code == 0, run.err
    return json.loads(run.out)["record_ids"][0]


def test_an_adopted_abandon_route_record_makes_the_verdict_caution(bank_path, tmp_path):
    code, before = check(bank_path)
    assert (code, before["verdict"]) == (0, "proceed")  # nothing in the bank against it
    route = f"{before['category']}/{before['direction']}/{before['parameter']}"
    failure = {**good_record()["failure"], "recommended_action": "abandon_route"}
    record_id = import_on(
        bank_path,
        tmp_path,
        route,
        "abandon",
        failure=failure,
        rationale="Smaller batches diverge here.",
    )
    code, open_record = check(bank_path)
    assert (
        open_record["verdict"] == "proceed" and open_record["nk_records"][0]["standing"] == "open"
    )
    assert nrr("adopt", str(record_id), "--bank", bank_path).code == 0
    code, adopted = check(bank_path)
    assert (code, adopted["verdict"]) == (1, "caution")
    assert adopted["reason"].startswith(
        f"adopted NK record {record_id} says abandon_route: Smaller batches diverge here."
    )
    assert (
        nrr(
            "reject",
            str(record_id),
            "--bank",
            bank_path,
            "--actor",
            "ana",
            "--reason",
            "fixed the loader",
        ).code
        == 0
    )
    code, rejected = check(bank_path)
    assert (code, rejected["verdict"]) == (0, "proceed")
    assert (
        f"NK record {record_id} (abandon_route) was rejected by ana: fixed the loader"
        in rejected["reason"]
    )
    listed = rejected["nk_records"][0]
    assert (listed["standing"], listed["decision_reason"]) == ("rejected", "fixed the loader")


def test_only_binding_actions_on_exactly_this_route_move_the_verdict(bank_path, tmp_path):
    _, before = check(bank_path)
    cell = f"{before['category']}/{before['direction']}"
    retry = {**good_record()["failure"], "recommended_action": "retry"}
    ids = [
        import_on(bank_path, tmp_path, f"{cell}/{before['parameter']}", "retry", failure=retry),
        import_on(
            bank_path, tmp_path, f"{cell}/SOME_OTHER_PARAMETER", "other", rationale="Other knob."
        ),
    ]
    for record_id in ids:
        assert nrr("adopt", str(record_id), "--bank", bank_path).code == 0
    code, after = check(bank_path)
    assert (code, after["verdict"]) == (0, "proceed")
    cell_wide = import_on(bank_path, tmp_path, cell, "cell", rationale="The whole cell fails.")
    assert nrr("adopt", str(cell_wide), "--bank", bank_path).code == 0
    code, moved = check(bank_path)
    assert (code, moved["verdict"]) == (1, "caution")
    assert (
        f"adopted NK record {cell_wide} says change_method: The whole cell fails."
        in moved["reason"]
    )


@pytest.mark.parametrize("verdict", ["proceed", "caution", "avoid"])
def test_heeding_never_lowers_a_verdict(verdict):
    adopted = [{"id": 4, "action": "change_method", "rationale": "why"}]
    new, reason = heed_adopted_records(verdict, "base", adopted)
    assert new == ("caution" if verdict == "proceed" else verdict)
    assert "adopted NK record 4 says change_method: why" in reason and "base" in reason
    rejected = [{"id": 5, "action": "abandon_route", "decided_by": "a", "decision_reason": "r"}]
    assert heed_adopted_records(verdict, "base", [], rejected) == (
        verdict,
        "base; NK record 5 (abandon_route) was rejected by a: r",
    )
    assert heed_adopted_records(verdict, "base", []) == (verdict, "base")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("adopt", "9223372036854775808"), "no NK record with id 9223372036854775808"),
        (("reject", "99999999999999999999", "--reason", "x"), "no NK record with id"),
        (
            ("curate", "--experiment", "99999999999999999999"),
            "no experiment '99999999999999999999'",
        ),
        (("curate", "--experiment", "²"), "no experiment '²'"),
    ],
)
def test_ids_no_row_can_have_are_one_line_errors(bank_path, args, fragment):
    assert_input_error(nrr(*args, "--bank", bank_path), fragment)


def test_records_filtered_by_an_impossible_id_is_empty(bank_path):
    nrr("curate", "--bank", bank_path)
    run = nrr("records", "--bank", bank_path, "--json", "--experiment", "99999999999999999999")
    assert (run.code, json.loads(run.out)) == (0, [])
