"""NK records that travel: validation that agrees with the NK reference implementation, records
read from hostile files, exported as bare NK records and imported into other banks."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_curator_cli import assert_input_error, nrr
from test_curator_support import FIXTURES, good_record, small_bank

from nrr_stats.bank import open_bank
from nrr_stats.curator import (
    DEGREES,
    FAILURE_SUBFIELDS,
    LAYERS,
    RECOMMENDED_ACTIONS,
    RISKS,
    SCHEMA_BASE_FIELDS,
    SCHEMA_DEEP_EXTRA,
    SCOPES,
    check_record,
    validate,
    validate_nk,
)
from nrr_stats.curator.exchange import export_records, import_records, reference_table
from nrr_stats.curator.nk_files import canonical_json, read_records
from nrr_stats.curator.schema import record_depth

PUBLISHED = FIXTURES / "published"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nk-records"


def published() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(PUBLISHED.glob("*.json"))]


def deep_record(**changes) -> dict:
    return json.loads((FIXTURES / "paper_shape_depth3.json").read_text()) | changes


# -- validate_nk: the reference validator's rules -------------------------------------------------


def test_nk_names_and_vocabularies():
    assert SCHEMA_BASE_FIELDS == (
        "task_id",
        "attempted_route",
        "observation",
        "failure",
        "rationale",
        "recommended_alternative",
    )
    assert SCHEMA_DEEP_EXTRA == (
        "depth",
        "rounds_summary",
        "ruled_out_routes",
        "synthesised_diagnosis",
    )
    assert FAILURE_SUBFIELDS == ("layer", "scope", "degree", "recommended_action", "risk")
    assert len(LAYERS) == 3 and len(SCOPES) == 3 and len(DEGREES) == 6 and len(RISKS) == 3
    assert RECOMMENDED_ACTIONS == ("retry", "change_method", "narrow_claim", "abandon_route")


def test_the_published_fixture_records_are_accepted_by_both_validators():
    records = published()
    assert len(records) == 5
    for record in records:
        assert validate_nk(record, record_depth(record)) == []
        checked = check_record(record)
        assert checked.valid, checked.errors
        assert checked.warnings  # each exceeds NK's length guidance somewhere


def test_validate_nk_reports_what_the_reference_rejects():
    record = good_record()
    assert validate_nk(record) == []
    assert validate_nk({**record, "failure": {**record["failure"], "note": "x"}}) == []
    assert validate_nk({**record, "rationale": 7}) == []  # the reference checks no types
    missing = dict(record)
    del missing["observation"]
    assert validate_nk(missing) == ["missing base field: observation"]
    no_failure = {k: v for k, v in record.items() if k != "failure"}
    issues = validate_nk(no_failure)
    assert "missing base field: failure" in issues and "failure.layer missing" in issues
    assert validate_nk({**record, "failure": "method"})[-1] == "failure block is not a dict"
    bad_vocab = {**record, "failure": {**record["failure"], "risk": "none"}}
    assert validate_nk(bad_vocab) == [f"failure.risk not in {RISKS}: 'none'"]
    assert validate_nk([record]) == ["record is not a dict (list)"]


def test_validate_nk_at_depth_n():
    record = deep_record()
    assert validate_nk(record, depth=3) == []
    assert "missing base field: attempted_route" in validate_nk(record, depth=1)
    assert validate_nk(record, depth=2) == [
        "depth field 3 != expected 2",
        "rounds_summary should be a list of 2 entries",
    ]
    rounds = [{"attempted_route": "a"}, "x", {"attempted_route": "b", "observation": "c"}]
    assert validate_nk(deep_record(rounds_summary=rounds), depth=3) == [
        "rounds_summary[0].observation missing",
        "rounds_summary[1] not a dict",
    ]
    assert validate_nk(deep_record(ruled_out_routes=["one"]), depth=3) == [
        "ruled_out_routes should be a list of >= 2 entries"
    ]


_FIELDS = list(SCHEMA_BASE_FIELDS) + list(SCHEMA_DEEP_EXTRA)


@given(
    deep=st.booleans(),
    drop=st.sets(st.sampled_from(_FIELDS)),
    drop_failure=st.sets(st.sampled_from(FAILURE_SUBFIELDS)),
    wrong=st.dictionaries(st.sampled_from(FAILURE_SUBFIELDS), st.sampled_from(["", "other", "x"])),
    extra=st.dictionaries(st.sampled_from(["round", "note", "relationship_to_round1"]), st.text()),
    rounds=st.integers(0, 4),
    ruled_out=st.integers(0, 3),
)
def test_nrr_errors_agree_with_the_reference(
    deep, drop, drop_failure, wrong, extra, rounds, ruled_out
):
    """Law: on records whose texts are strings, nrr-stats' errors are exactly the reference's
    verdict at the depth the record declares (warnings never make a record invalid)."""
    record = copy.deepcopy(deep_record() if deep else good_record())
    if deep:
        record["rounds_summary"] = (record["rounds_summary"] * 2)[:rounds]
        record["ruled_out_routes"] = [f"route {i}" for i in range(ruled_out)]
    for name in drop:
        record.pop(name, None)
    if "failure" in record:
        for name in drop_failure:
            record["failure"].pop(name, None)
        record["failure"].update(wrong)
    record.update(extra)
    reference = validate_nk(record, record_depth(record))
    assert check_record(record).valid == (reference == []), (reference, check_record(record))


def test_nrr_is_stricter_only_where_no_reader_could_use_the_record():
    assert not check_record({**good_record(), "rationale": 7}).valid
    assert not check_record({**good_record(), "depth": "3"}).valid
    # A record nrr-stats wrote (source rules / llm:...) has its own fields checked too.
    assert not check_record({**good_record(), "source": "rules", "evidence_weight": 2}).valid
    extra = good_record()
    extra["failure"]["confidence"] = "high"  # extra keys inside failure, as NK allows
    assert check_record(extra).valid and validate(extra) == []
    # A foreign record's keys that happen to share a name are extra keys, as NK reads them.
    assert check_record({**good_record(), "category": "Data Science"}).valid


def test_length_guidance_and_others_are_warnings():
    checked = check_record(good_record(rationale="r" * 301, observation=" "))
    assert checked.valid
    assert checked.warnings == [
        "observation is empty",
        "rationale is 301 characters, NK's guidance is at most 300",
    ]
    assert check_record(good_record(rationale="r" * 300)).warnings == []
    deep = check_record(deep_record(recommended_alternative="a" * 400))
    assert deep.valid and deep.warnings == []  # the deep-curation prompt allows 400
    over = check_record(
        deep_record(recommended_alternative="a" * 401, synthesised_diagnosis="d" * 401)
    )
    assert over.valid and len(over.warnings) == 2


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/nk-records is absent")
def test_every_published_record_is_accepted_as_the_reference_accepts_it():
    items, faults = read_records([SHARED / "section3", SHARED / "sample_nk_record.json"])
    assert faults == [] and len(items) == 66
    table = reference_table(items)
    assert all(row["nk_valid"] and row["nrr_valid"] for row in table)
    depths = sorted({row["depth"] for row in table})
    assert depths == [1, 3]
    run = nrr("validate", SHARED / "section3", SHARED / "sample_nk_record.json")
    assert run.code == 0 and "66 record(s) in 66 file(s): 66 valid, 0 invalid" in run.out


# -- nrr validate over many files ---------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_validate_reports_every_record_of_every_file(tmp_path):
    bad = good_record()
    bad["failure"]["scope"] = "global"
    lines = "\n".join(json.dumps(r) for r in (good_record(), bad, good_record(rationale="x" * 350)))
    jsonl = write(tmp_path / "bank.jsonl", lines + "\n\n")
    run = nrr("validate", jsonl, PUBLISHED)
    out = run.out.splitlines()
    assert f"{jsonl}:record 1: valid" in out
    assert f"{jsonl}:record 2: error: failure.scope 'global' is not one of" in out[1]
    assert any(line.startswith(f"{jsonl}:record 3: warning: rationale is 350") for line in out)
    assert out[-1] == "8 record(s) in 6 file(s): 7 valid, 1 invalid, 6 with warnings"
    assert_input_error(run, "1 invalid", "bank.jsonl:record 2: failure.scope")


def test_validate_warnings_exit_zero_unless_strict(tmp_path):
    run = nrr("validate", PUBLISHED)
    assert run.code == 0 and run.err == "" and "5 valid, 0 invalid, 5 with warnings" in run.out
    strict = nrr("validate", "--strict", PUBLISHED)
    assert_input_error(strict, "0 valid, 5 invalid")
    assert ": error: " in strict.out and ": warning: " not in strict.out


def test_validate_json_lines_output(tmp_path):
    run = nrr("validate", "--json", PUBLISHED / "task_021.json")
    row = json.loads(run.out)
    assert run.code == 0 and row["valid"] and row["record"] == 1
    assert row["warnings"] == [
        "recommended_alternative is 352 characters, NK's guidance is at most 300"
    ]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        (
            "deep.json",
            "[" * 100_000 + "]" * 100_000,
            "deep.json: JSON nested deeper than 64 levels",
        ),
        ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "deep.jsonl:1: JSON nested deeper"),
        ("nest.json", "[" * 70 + "]" * 70, "nest.json: JSON nested deeper than 64 levels"),
        ("digits.json", '{"task_id": ' + "9" * 5000 + "}", "a number with too many digits"),
        ("digits.jsonl", "{}\n[" + "1" * 5000 + "]\n", "digits.jsonl:2: not usable JSON"),
        ("nan.json", '{"task_id": NaN}', "NaN is not a JSON number"),
        ("latin1.json", b'{"task_id": "\xe9"}', "not UTF-8 text"),
        ("none.json", "", "none.json:1: not JSON"),
    ],
)
def test_hostile_files_are_one_line_and_exit_3(tmp_path, name, content, fragment):
    run = nrr("validate", write(tmp_path / name, content))
    assert_input_error(run, fragment)
    assert "Traceback" not in run.out + run.err


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: nothing is written
    assert_input_error(nrr("validate", big), "big.json: file is 68157440 bytes, at most")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "records.json"
    os.mkfifo(fifo)
    run = subprocess.run(
        [sys.executable, "-c", "from nrr_stats.cli import run; run()", "validate", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3
    assert run.stderr.strip().splitlines() == [
        f"nrr: 0 record(s) in 1 file(s): 0 valid, 0 invalid, 0 with warnings; 1 file(s) unreadable"
        f" (first: {fifo}: not a regular file (a FIFO, device or socket is not read))"
    ]


def test_a_bad_file_does_not_hide_the_others(tmp_path):
    broken = write(tmp_path / "broken.json", "{")
    run = nrr("validate", broken, PUBLISHED / "task_002.json")
    assert_input_error(run, "1 file(s) unreadable", "broken.json:1: not JSON")
    assert f"{PUBLISHED / 'task_002.json'}:record 1: warning:" in run.out


def test_a_directory_without_records_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_input_error(nrr("validate", tmp_path / "empty"), "no .json or .jsonl record files")


# -- export, import ------------------------------------------------------------------------------


@pytest.fixture
def curated_bank(tmp_path):
    bank_path = tmp_path / "bank.db"
    small_bank(tmp_path).close()
    assert nrr("curate", "--bank", bank_path, "--deep").code == 0
    return bank_path


def test_export_writes_bare_records_nk_accepts(curated_bank, tmp_path):
    run = nrr("export-records", tmp_path / "out", "--bank", curated_bank)
    assert run.code == 0 and "7 NK record(s) written" in run.out
    files = sorted((tmp_path / "out").glob("task_*.json"))
    assert len(files) == 7
    for path in files:
        record = json.loads(path.read_text())
        assert validate_nk(record, record_depth(record)) == [], path
        assert "experiment_id" not in record and "experiment_ids" not in record
        assert record["task_id"] == "key-small.tsv"  # the session's key, not the file name
    deep = [json.loads(p.read_text()) for p in files if "_deep_" in p.name]
    assert len(deep) == 1 and deep[0]["experiments"] == ["sma0002", "sma0004", "sma0006"]
    lines = nrr("records", "--bank", curated_bank, "--format", "nk").out.splitlines()
    assert sorted(json.loads(line)["rationale"] for line in lines) == sorted(
        json.loads(p.read_text())["rationale"] for p in files
    )
    assert nrr("validate", tmp_path / "out").code == 0


def test_round_trip_export_import_export_is_identical(curated_bank, tmp_path):
    assert nrr("export-records", tmp_path / "one", "--bank", curated_bank).code == 0
    assert nrr("export-records", tmp_path / "one.jsonl", "--bank", curated_bank).code == 0
    fresh = tmp_path / "fresh.db"
    imported = nrr("import-records", tmp_path / "one", "--bank", fresh, "--json")
    assert imported.code == 0 and json.loads(imported.out)["stored"] == 7
    assert nrr("export-records", tmp_path / "two", "--bank", fresh).code == 0
    first = {p.name: p.read_text() for p in (tmp_path / "one").iterdir()}
    second = {p.name: p.read_text() for p in (tmp_path / "two").iterdir()}
    assert first == second
    assert nrr("export-records", tmp_path / "two.jsonl", "--bank", fresh).code == 0
    assert sorted((tmp_path / "one.jsonl").read_text().splitlines()) == sorted(
        (tmp_path / "two.jsonl").read_text().splitlines()
    )


def test_import_is_idempotent_and_attaches_named_experiments(curated_bank, tmp_path):
    nrr("export-records", tmp_path / "out.jsonl", "--bank", curated_bank)
    other = tmp_path / "other"
    other.mkdir()
    small_bank(other).close()  # the same log in another bank: same session key, other ids
    target = other / "bank.db"
    run = nrr("import-records", tmp_path / "out.jsonl", "--bank", target, "--json")
    summary = json.loads(run.out)
    assert (summary["stored"], summary["attached"]) == (7, 7)
    again = json.loads(
        nrr("import-records", tmp_path / "out.jsonl", "--bank", target, "--json").out
    )
    assert (again["stored"], again["already_stored"]) == (0, 7)
    with open_bank(target) as bank:
        rows = export_records(bank)
        assert len(rows) == 7
        by_experiment = {r["experiment"]: r for r in rows if "experiment" in r}
        assert set(by_experiment) == {
            "sma0002",
            "sma0004",
            "sma0005",
            "sma0006",
            "sma0007",
            "sma0008",
        }
        weights = bank.query(
            "SELECT evidence_weight FROM experiments WHERE experiment_id = 'sma0005'"
        )
        assert weights[0]["evidence_weight"] < 1.0  # the imported diagnosis weighs the crash


def test_published_records_import_and_list_in_check(tmp_path):
    bank_path = tmp_path / "bank.db"
    small_bank(tmp_path).close()
    run = nrr("import-records", PUBLISHED, "--bank", bank_path, "--json")
    assert run.code == 0 and json.loads(run.out)["stored"] == 5
    with open_bank(bank_path) as bank:
        rows = bank.query("SELECT source, experiment_id FROM nk_records")
    assert {r["source"] for r in rows} == {"nk"} and {r["experiment_id"] for r in rows} == {None}
    listed = nrr("records", "--bank", bank_path)
    assert listed.code == 0 and "5 NK record(s)" in listed.out
    moved = nrr(
        "import-records",
        PUBLISHED / "task_002.json",
        "--bank",
        bank_path,
        "--route",
        "batch_size/decrease/BATCH_SIZE",
    )
    assert moved.code == 0 and "1 moved onto --route batch_size/decrease/BATCH_SIZE" in moved.out
    check = json.loads(nrr("check", "reduce batch size to 64", "--bank", bank_path).out)
    assert [r["task_id"] for r in check["nk_records"]] == ["002"]
    assert (
        check["nk_records"][0]["standing"] == "open"
        and check["nk_records"][0]["session_id"] is None
    )


def test_import_refuses_invalid_records_and_stores_nothing(tmp_path):
    bank_path = tmp_path / "bank.db"
    bad = good_record()
    del bad["failure"]["risk"]
    jsonl = write(tmp_path / "r.jsonl", json.dumps(good_record()) + "\n" + json.dumps(bad) + "\n")
    assert_input_error(
        nrr("import-records", jsonl, "--bank", bank_path),
        "r.jsonl:2: record 2: invalid NK record: missing field: failure.risk",
        "nothing imported",
    )
    with open_bank(bank_path) as bank:
        assert bank.query("SELECT COUNT(*) AS n FROM nk_records")[0]["n"] == 0
    broken = write(tmp_path / "broken.json", "[" * 100_000)
    assert_input_error(
        nrr("import-records", PUBLISHED, broken, "--bank", bank_path),
        "broken.json",
        "nothing imported",
    )
    for route in ("batch_size", "Batch/decrease", "batch_size/sideways"):
        assert_input_error(
            nrr("import-records", PUBLISHED, "--bank", bank_path, "--route", route), "--route"
        )


def test_export_errors(curated_bank, tmp_path):
    plain = write(tmp_path / "file.txt", "x")
    assert_input_error(nrr("export-records", plain, "--bank", curated_bank), "not a directory")
    assert_input_error(
        nrr("export-records", tmp_path / "o", "--bank", tmp_path / "none.db"), "no bank here yet"
    )
    assert_input_error(nrr("records", "--bank", curated_bank, "--format", "xml"), "--format")


def test_import_library_call_reports_routes(tmp_path):
    items, _ = read_records([PUBLISHED / "task_021.json"])
    with open_bank(tmp_path / "b.db") as bank:
        summary = import_records(bank, items, route=("optimizer", "replace", "OPTIMIZER"))
    assert summary.routes == {"optimizer/replace/OPTIMIZER": 1} and summary.stored == 1


def test_import_export_and_lookup_on_each_backend(bank):
    """Import, attachment, idempotence, route lookup and export on SQLite and PostgreSQL."""
    from test_curator_support import LR, SMALL_LOG, add_session

    from nrr_stats.curator import applicable_records, curate

    add_session(bank, "small.tsv", SMALL_LOG)
    curate(bank, deep=True)
    exported = export_records(bank)
    loose, _ = read_records([PUBLISHED / "task_021.json"])
    items = [
        *loose,
        *(type(loose[0])("bank", i, record) for i, record in enumerate(exported, 1)),
    ]
    with bank.transaction():
        bank.execute("DELETE FROM record_events")
        bank.execute("DELETE FROM nk_records")
    summary = import_records(bank, items, route=None)
    assert (summary.stored, summary.attached) == (8, 7)
    assert import_records(bank, items).already_stored == 8
    import_records(bank, loose, route=LR)
    found = applicable_records(bank, *LR)
    assert [r["task_id"] for r in found if r["experiment_pk"] is None] == ["021"]
    assert sorted(map(canonical_json, export_records(bank))) == sorted(
        map(canonical_json, [*exported, loose[0].record])
    )


def test_reweighting_keeps_imported_records_and_their_content(tmp_path):
    bank_path = tmp_path / "bank.db"
    small_bank(tmp_path).close()
    assert nrr("import-records", PUBLISHED, "--bank", bank_path).code == 0
    flat = write(tmp_path / "flat.toml", "[layer]\nimplementation_failure = 1.0\n")
    run = nrr("curate", "--bank", bank_path, "--weights", flat, "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["reweighted"] == 11  # 6 curated + 5 imported
    with open_bank(bank_path) as bank:
        exported = [r for r in export_records(bank) if r.get("source") is None]
    assert sorted(map(canonical_json, exported)) == sorted(map(canonical_json, published()))


def test_export_into_a_read_only_directory_is_one_line(curated_bank, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("root can write anywhere")
        assert_input_error(nrr("export-records", locked, "--bank", curated_bank), "cannot write")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_another_banks_ids_in_an_imported_record_are_never_mapped_here(curated_bank, tmp_path):
    with open_bank(curated_bank) as bank:
        envelope_record = bank.query("SELECT record_json FROM nk_records WHERE depth = 1 LIMIT 1")
    record = json.loads(envelope_record[0]["record_json"])  # holds experiment_id, a bank id
    record["experiment_id"] = 3  # in this bank, a kept experiment
    path = write(tmp_path / "foreign.json", json.dumps({**record, "task_id": "elsewhere"}))
    assert nrr("import-records", path, "--bank", curated_bank).code == 0
    lines = nrr("records", "--bank", curated_bank, "--format", "nk").out.splitlines()
    foreign = [json.loads(line) for line in lines if '"elsewhere"' in line]
    assert (
        len(foreign) == 1 and "experiment" not in foreign[0] and "experiment_id" not in foreign[0]
    )


def test_validate_nk_is_a_top_level_name():
    import nrr_stats

    record = published()[0]
    assert nrr_stats.validate_nk(record, record_depth(record)) == []
    assert nrr_stats.validate_nk({}) != []
