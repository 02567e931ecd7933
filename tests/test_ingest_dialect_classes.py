"""The dialect classes of issue 13, each on small fixtures (sources in fixtures/logs/SOURCES.md):
rows wider than the header, a decision apart from the run status, the metric column, statuses
that are not outcomes, and bytes that are not UTF-8. Every repair is said in `log.repairs`."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrr_stats.bank import open_bank
from nrr_stats.bank.ingest import ingest_log
from nrr_stats.errors import NrrInputError
from nrr_stats.ingest import read_results_log
from nrr_stats.ingest.status import map_status

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
BOBMOLT_DESCRIPTIONS = [
    "baseline (AdamW, default config)",
    "lower weight decay to 0.1",
    "halve total batch size to 2^16",
    "increase matrix LR to 0.04",
    "reduce depth from 8 to 4",
]


def _read(name: str):
    return read_results_log(LOGS / name)


def _statuses(log) -> list[str]:
    return [row.status for row in log.rows]


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """A small log of these lines (written for the test)."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- rows wider than the header -------------------------------------------------------------


def test_rows_wider_than_the_header_find_status_and_description_by_content() -> None:
    log = _read("wider_rows.tsv")  # an extra count between memory_gb and status on 4 of 5 rows
    assert _statuses(log) == ["keep", "discard", "keep", "keep", "keep"]
    assert [r.description for r in log.rows] == BOBMOLT_DESCRIPTIONS
    assert [r.metric for r in log.rows] == pytest.approx(
        [2.667, 2.695369, 2.588904, 2.533728, 1.807902]
    )
    assert log.columns == {
        "id": "commit",
        "metric": "val_bpb",
        "status": "status",
        "description": "description",
    }
    assert log.header == ["commit", "val_bpb", "memory_gb", "unnamed_4", "status", "description"]
    assert [r.fields["unnamed_4"] for r in log.rows] == ["1200", "1300", "1400", "1500", ""]
    assert log.bad_rows == []
    assert len(log.repairs) == 1
    assert "header names 5" in log.repairs[0] and "status found in field 5" in log.repairs[0]


def test_rows_wider_than_the_header_on_a_few_rows_drop_the_unnamed_field() -> None:
    log = _read("wider_rows_on_some.tsv")  # rows 3 and 4 carry the extra count
    assert _statuses(log) == ["keep", "discard", "keep", "keep", "keep"]
    assert [r.description for r in log.rows] == BOBMOLT_DESCRIPTIONS
    assert [r.fields["memory_gb"] for r in log.rows] == ["26.9"] * 4 + ["20.7"]
    assert log.header == ["commit", "val_bpb", "memory_gb", "status", "description"]
    assert log.bad_rows == []
    assert log.repairs == [
        "2 row(s) wider than the header read by dropping the fields it does not name, before "
        "the status column 'status'"
    ]


def test_delimiters_inside_descriptions_do_not_widen_the_header(tmp_path: Path) -> None:
    """Extra cells after the status are the description's own tabs, not a wider dialect."""
    lines = ["commit\tval_bpb\tstatus\tdescription"] + [
        f"c{i}\t0.9{i}\t{'keep' if i % 2 else 'discard'}\ttry\tthing {i}" for i in range(6)
    ]
    path = _write(tmp_path, "tabs.tsv", lines)
    log = read_results_log(path)
    assert log.header == ["commit", "val_bpb", "status", "description"]
    assert [r.description for r in log.rows][:2] == ["try\tthing 0", "try\tthing 1"]
    assert log.repairs == []


# --- a decision apart from the run status ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "decision"),
    [
        ("run_status_and_decision.tsv", "status", "decision"),  # ok/crash + promote/reject
        ("verdict_and_run_status.tsv", "run_status", "verdict"),  # done/failed + accept/reject
    ],
)
def test_a_crashed_run_is_a_crash_otherwise_the_decision_decides(
    name: str, status: str, decision: str
) -> None:
    log = _read(name)
    assert _statuses(log) == ["keep", "discard", "keep", "crash", "keep"]
    assert (log.columns["status"], log.columns["decision"]) == (status, decision)
    assert log.columns["description"] == "description"
    assert log.rows[3].metric is None
    assert any(f"'{decision}'" in note and "crashed run is a crash" in note for note in log.repairs)


def test_a_status_column_of_decisions_with_a_pass_fail_column_is_left_alone(tmp_path: Path) -> None:
    """Only a column named as a run status joins the decisions: a 'tests' pass/fail is not one."""
    lines = ["commit\tval_bpb\ttests\tstatus\tdescription"] + [
        f"c{i}\t0.9{i}\t{'pass' if i % 3 else 'fail'}\t{'keep' if i % 2 else 'discard'}\tidea {i}"
        for i in range(6)
    ]
    path = _write(tmp_path, "tests_column.tsv", lines)
    log = read_results_log(path)
    assert _statuses(log) == ["discard", "keep", "discard", "keep", "discard", "keep"]
    assert "decision" not in log.columns and log.repairs == []


def test_a_decision_column_of_ones_and_zeros_beside_a_run_status(tmp_path: Path) -> None:
    runs = [("ok", "1"), ("ok", "0"), ("crash", ""), ("ok", "0"), ("ok", "1")]
    lines = ["commit\tval_bpb\trun_status\tdecision\tdescription"] + [
        f"c{i}\t0.9{i}\t{run}\t{decided}\tidea {i}" for i, (run, decided) in enumerate(runs)
    ]
    path = _write(tmp_path, "decision_1_0.tsv", lines)
    log = read_results_log(path)
    assert _statuses(log) == ["keep", "discard", "crash", "discard", "keep"]
    assert (log.columns["status"], log.columns["decision"]) == ("run_status", "decision")
    assert any("1 read as keep" in note for note in log.repairs)


def test_a_result_column_of_pass_fail_is_a_gate_not_a_run_status(tmp_path: Path) -> None:
    lines = ["commit\tval_bpb\ttest_result\tkept\tdescription"] + [
        f"c{i}\t0.9{i}\t{'pass' if i % 3 else 'fail'}\t{'yes' if i % 2 else 'no'}\tidea {i}"
        for i in range(6)
    ]
    path = _write(tmp_path, "gate.tsv", lines)
    log = read_results_log(path)
    assert _statuses(log) == ["discard", "keep", "discard", "keep", "discard", "keep"]
    assert "decision" not in log.columns


def test_a_kept_column_of_ones_and_zeros() -> None:
    log = _read("kept_one_zero.tsv")  # afifi-yusuf/auto-rl
    assert _statuses(log) == ["keep", "keep", "discard", "discard", "keep"]
    assert log.columns["status"] == "kept" and log.metric_name == "eval_acc"
    assert [r.raw_status for r in log.rows] == ["1", "1", "0", "0", "1"]
    assert log.repairs == ["status column 'kept' holds 1/0: 1 read as keep, 0 as discard"]


def test_the_one_unnamed_value_beside_keep_words_is_the_discard() -> None:
    log = _read("improved_recorded.tsv")  # zhoujx4/AutoDeepresearch: improved / recorded
    assert _statuses(log) == ["keep", "discard", "discard", "keep", "discard", "keep"]
    assert "'recorded' (3 rows) read as discard" in log.repairs[0]


def test_outcomes_of_inferred_statuses_reach_the_bank(tmp_path: Path) -> None:
    """The bank classifies the statuses as read ('0' is a discard), not the raw cells."""
    with open_bank(str(tmp_path / "bank.db")) as bank:
        summary = ingest_log(bank, LOGS / "kept_one_zero.tsv")
        stored = bank.experiments()
    assert summary.repairs and summary.columns["status"] == "kept"
    # The two leading 'baseline' rows set the reference (EVALUATION.md); '0' and '1' then read.
    assert [e["status"] for e in stored] == ["other", "other", "discard", "discard", "keep"]
    assert [e["raw_status"] for e in stored] == ["1", "1", "0", "0", "1"]
    assert [e["outcome"] for e in stored][2:] == ["marginal", "no_improvement", "improvement"]


# --- compound and unknown statuses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mapped"),
    [
        ("neutral-kept", "keep"),
        ("discard_iai", "discard"),
        ("discard_wallclock", "discard"),
        ("rejected_primary_ce_only_despite_systems_gain", "discard"),
        ("accepted_offline_incumbent_arena_inconclusive", "keep"),
        ("crash_infra", "crash"),
        ("not_kept", "other"),
        ("baseline_reset", "other"),
        ("promote", "keep"),
        ("missing", "other"),
        ("marker", "other"),
        # Added after scoring the held-out logs (see benchmarks/ingest_dev_corpus.py):
        ("BETTER", "keep"),
        ("SAME", "discard"),
        ("incorrect", "crash"),
        ("blocked", "crash"),
    ],
)
def test_compound_status_tokens(raw: str, mapped: str) -> None:
    assert map_status(raw) == mapped


def test_compound_statuses_in_logs() -> None:
    assert _statuses(_read("compound_statuses.tsv")) == [
        "other",
        "keep",
        "keep",
        "discard",
        "other",
    ]
    assert _statuses(_read("snake_case_statuses.tsv")) == ["keep", "discard"]


@pytest.mark.parametrize(
    ("name", "statuses", "others"),
    [
        (
            "unknown_statuses_kept_as_other.tsv",
            ["keep", "keep", "other", "other"],
            ["ablate", "ablate"],
        ),
        ("verdict_info_rows.tsv", ["keep"] * 3 + ["discard"] * 3 + ["other"], ["INFO"]),
    ],
)
def test_full_rows_with_an_unknown_status_are_kept_as_other(
    name: str, statuses: list[str], others: list[str]
) -> None:
    log = _read(name)
    assert _statuses(log) == statuses
    assert [r.raw_status for r in log.rows if r.status == "other"] == others
    assert log.bad_rows == []


def test_statuses_that_are_not_outcomes_and_separator_lines() -> None:
    log = _read("non_outcome_statuses.tsv")
    assert _statuses(log) == [
        "keep",
        "discard",
        "other",
        "other",
        "keep",
        "other",
        "other",
        "other",
        "keep",
        "keep",
    ]
    assert [r.raw_status for r in log.rows if r.status == "other"] == [
        "missing", "running", "pending", "skipped", "marker"
    ]  # fmt: skip
    assert log.bad_rows == []
    assert log.repairs == [
        "2 separator line(s) skipped (line(s) 4, 9): rules between rows, not experiments"
    ]


def test_the_ingest_summary_counts_the_other_statuses(tmp_path: Path) -> None:
    with open_bank(str(tmp_path / "bank.db")) as bank:
        summary = ingest_log(bank, LOGS / "non_outcome_statuses.tsv")
    assert summary.status_counts["other"] == 6  # five statuses and the leading reference row
    assert summary.other_statuses == {
        "keep": 1, "missing": 1, "running": 1, "pending": 1, "skipped": 1, "marker": 1
    }  # fmt: skip
    assert summary.as_dict()["repairs"] == summary.repairs


# --- the metric column ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metric", "why"),
    [
        ("fingerprint_column.tsv", "score", "a column of hashes is never the metric"),
        ("generation_counter.tsv", "intent_err", "a counter rising on every row is not"),
        ("constant_columns.tsv", "total_ms", "a column that never changes is not"),
        ("text_with_leading_number.tsv", "retrieval_score", "'1-Chunking' is text, not 1"),
        ("best_prefixed_metric.tsv", "best_acc", "a best_ column when no other column can be"),
        ("files_changed_and_rationale.tsv", "tier1_delta_pct", "a p-value is not the metric"),
    ],
)
def test_metric_column_choice(name: str, metric: str, why: str) -> None:
    assert _read(name).metric_name == metric, why


def test_a_qualified_primary_name_beats_the_first_numeric_column(tmp_path: Path) -> None:
    lines = ["method\tp_value\teffect_size\tfinding\tscore_total\tdecision"] + [
        f"ttest\t0.0{i}\t0.{i}5\tgroup {i} differs a little\t{(23, 21, 25, 22, 24)[i - 1]}\t{'KEEP' if i % 2 else 'DISCARD'}"
        for i in range(1, 6)
    ]
    path = _write(tmp_path, "findings.tsv", lines)
    log = read_results_log(path)
    assert (log.metric_name, log.columns["description"]) == ("score_total", "finding")


def test_a_status_word_in_the_metric_cell_stores_the_row_without_a_metric() -> None:
    log = _read("status_word_in_metric.tsv")  # bjhardcastle/polars-vec-ops: 'discard' in fitness
    assert _statuses(log) == ["keep", "keep", "discard", "discard"]
    assert [r.metric for r in log.rows] == [3.0, 2.745, None, None]
    assert log.bad_rows == []
    assert log.repairs == [
        "2 keep/discard row(s) stored without a metric: their 'fitness' cell is not a number "
        "(line(s) 4, 5)"
    ]


def test_a_metric_unreadable_on_most_decision_rows_yields_to_a_readable_one(tmp_path: Path) -> None:
    lines = ["commit\tscore\taccuracy\tstatus\tdescription"] + [
        f"c{i}\t{'n/m' if i else '0.5'}\t0.{70 + i}\t{'keep' if i % 2 else 'discard'}\tidea {i}"
        for i in range(6)
    ]
    path = _write(tmp_path, "unreadable_score.tsv", lines)
    log = read_results_log(path)
    assert log.metric_name == "accuracy"
    assert [r.metric for r in log.rows] == pytest.approx([0.70, 0.71, 0.72, 0.73, 0.74, 0.75])


def test_a_metric_that_is_a_change_takes_the_sign_of_what_was_kept() -> None:
    log = _read("files_changed_and_rationale.tsv")  # kept tier1_delta_pct: -72.32, -1.89, +0.50
    assert (log.metric_direction, log.direction_source) == ("lower", "kept-deltas")


def test_description_by_name_must_hold_text() -> None:
    log = _read("files_changed_and_rationale.tsv")  # 'files_changed' holds file names
    assert log.columns["description"] == "rationale"


# --- bytes that are not UTF-8 ---------------------------------------------------------------


def test_latin1_lines_are_decoded_with_a_stated_fallback() -> None:
    log = _read("latin1_bytes.tsv")
    assert _statuses(log) == ["keep", "discard", "keep", "keep", "keep"]
    assert log.rows[1].description == "lower weight décay (café run) to 0.1"
    assert log.rows[3].description == "increase matrix LR ±10% to 0.04"
    assert log.bad_rows == []
    assert log.repairs == [
        "2 line(s) not valid UTF-8 (line(s) 3, 5): their stray bytes read as cp1252 "
        "(Windows-1252 / Latin-1)"
    ]


def test_a_latin1_header_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1_header.tsv"
    path.write_bytes(
        "commit\tval_bpb\tstatus\tdescription (résumé)\na1\t0.9\tkeep\tbaseline\n"
        "a2\t0.8\tdiscard\tmore heads\n".encode("latin-1")
    )
    log = read_results_log(path)
    assert log.columns["description"] == "description (résumé)"
    assert _statuses(log) == ["keep", "discard"] and "line(s) 1" in log.repairs[0]


def test_valid_utf8_beside_a_stray_byte_stays_as_written(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tsv"
    path.write_bytes(
        b"commit\tval_bpb\tstatus\tdescription\na1\t0.9\tkeep\t\xe5\xad\x97 and caf\xe9\n"
    )
    assert read_results_log(path).rows[0].description == "字 and café"


def test_statuses_no_rule_knows_are_named_with_their_counts(tmp_path: Path) -> None:
    lines = ["commit\tval_bpb\tstatus\tdescription"] + [
        f"c{i}\t0.9{i}\t{('keep', 'discard', 'shelved', 'shelved', 'parked')[i]}\tidea {i}"
        for i in range(5)
    ]
    path = _write(tmp_path, "shelved.tsv", lines)
    log = read_results_log(path)
    assert _statuses(log) == ["keep", "discard", "other", "other", "other"]
    assert log.repairs == [
        "3 row(s) stored as other: statuses in 'status' that are not a keep, discard or crash "
        "word: 'shelved' (2), 'parked' (1)"
    ]


def test_a_log_without_any_outcome_says_so(tmp_path: Path) -> None:
    lines = ["commit\tval_bpb\tstatus\tdescription", "c1\t0.9\tcompleted\tidea one"]
    path = _write(tmp_path, "completed.tsv", lines)
    log = read_results_log(path)
    assert _statuses(log) == ["other"]
    assert log.repairs[-1] == (
        "no row reads as keep, discard or crash; is 'status' the status column? It holds "
        "'completed' (1)"
    )


# --- a status written at the head of the description ----------------------------------------

LEADING_ROWS = [
    ("a0", "1.10", "baseline — plain two-layer model"),
    ("a1", "1.02", "keep — depth=6, LR=0.01"),
    ("a2", "1.05", "DISCARD: wider embedding (512)"),
    ("a3", "1.01", "[kept] cosine schedule with warmup 200"),
    ("a4", "nan", "crash - batch 4096 ran out of memory"),
    ("a5", "1.03", "revert -> label smoothing 0.1"),
    ("a6", "1.00", "Keep | weight decay 0.05"),
]


def _leading_log(tmp_path: Path, rows, name: str = "leading.tsv") -> Path:
    lines = ["commit\trmse\tmodel\tdescription"] + [
        f"{commit}\t{metric}\tm{i}\t{text}" for i, (commit, metric, text) in enumerate(rows)
    ]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_status_word_opening_the_description_is_the_status(tmp_path: Path) -> None:
    log = read_results_log(_leading_log(tmp_path, LEADING_ROWS))
    assert _statuses(log) == ["other", "keep", "discard", "keep", "crash", "discard", "keep"]
    assert [r.raw_status for r in log.rows] == [
        "baseline", "keep", "DISCARD", "kept", "crash", "revert", "Keep",
    ]  # fmt: skip
    assert [r.description for r in log.rows] == [
        "plain two-layer model",
        "depth=6, LR=0.01",
        "wider embedding (512)",
        "cosine schedule with warmup 200",
        "batch 4096 ran out of memory",
        "label smoothing 0.1",
        "weight decay 0.05",
    ]
    assert log.columns["status"] == log.columns["description"] == "description"
    assert log.metric_name == "rmse" and log.metric_direction == "lower"
    assert log.bad_rows == []
    assert any("no status column" in r and "'description' opens with" in r for r in log.repairs)


def test_a_leading_status_log_reaches_the_bank_with_its_outcomes(tmp_path: Path) -> None:
    path = _leading_log(tmp_path, LEADING_ROWS)
    with open_bank(tmp_path / "bank.db") as bank:
        summary = ingest_log(bank, path)
        stored = bank.experiments(summary.session_id)
    counts = summary.status_counts
    assert (counts["keep"], counts["discard"], counts["crash"], counts["other"]) == (3, 2, 1, 1)
    assert [row["description"] for row in stored] == [
        r.description for r in read_results_log(path).rows
    ]
    assert [row["status"] for row in stored][1:4] == ["keep", "discard", "keep"]


def test_a_row_without_its_leading_status_is_a_bad_row(tmp_path: Path) -> None:
    rows = [*LEADING_ROWS, ("a7", "1.04", "tried a smaller vocabulary")]
    log = read_results_log(_leading_log(tmp_path, rows))
    assert len(log.rows) == len(LEADING_ROWS)
    (bad,) = log.bad_rows
    assert bad.row_number == len(LEADING_ROWS) + 1
    assert bad.reason == "no status word opens column 'description'"


@pytest.mark.parametrize(
    "texts",
    [
        # prefixes that are no status words: a conventional-commit log is not a status log
        ["fix: lr warmup", "feat: add dropout", "refactor: loader", "fix: seed"],
        # status words only inside words or with no separator
        ["keep-alive pings", "keeping the LR", "discarded idea revisited", "best LR so far"],
        # statuses, but too few rows open with one (2 of 5)
        ["keep — depth 6", "discard: wider", "tune lr", "add dropout", "swap optimizer"],
        # only non-outcome words lead
        ["note: baseline run", "baseline — first", "note: same again"],
    ],
)
def test_text_that_only_looks_like_a_leading_status_is_no_status_column(
    tmp_path: Path, texts: list[str]
) -> None:
    path = _leading_log(tmp_path, [(f"c{i}", "1.0", t) for i, t in enumerate(texts)])
    with pytest.raises(NrrInputError, match="no status column"):
        read_results_log(path)


# --- no header line --------------------------------------------------------------------------

HEADERLESS_ROWS = [
    "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline",
    "b2c3d4e\t0.993200\t44.2\tkeep\tincrease LR to 0.04",
    "c3d4e5f\t1.005000\t44.0\tdiscard\tswitch to GeLU activation",
    "d4e5f6a\t0.000000\t0.0\tcrash\tdouble the model width",
    "e5f6a7b\t0.991000\t44.1\tkeep\tadd 5% warmup",
]


def test_a_log_without_a_header_line_is_read_by_content(tmp_path: Path) -> None:
    path = _write(tmp_path, "headerless.tsv", HEADERLESS_ROWS)
    log = read_results_log(path)
    assert log.header == ["commit", "value_2", "value_3", "status", "description"]
    assert [r.row_number for r in log.rows] == [0, 1, 2, 3, 4]  # line 1 is a row, not a header
    assert _statuses(log)[1:] == ["keep", "discard", "crash", "keep"]
    assert [r.experiment_id for r in log.rows][:2] == ["a1b2c3d", "b2c3d4e"]
    assert log.metric_name == "value_2" and log.metric_direction == "lower"
    assert log.repairs[0] == (
        "no header line: line 1 is a row; columns named by their content: "
        "commit, value_2, value_3, status, description"
    )


def test_a_headerless_log_keeps_its_first_row_in_the_bank(tmp_path: Path) -> None:
    path = _write(tmp_path, "headerless.tsv", HEADERLESS_ROWS)
    with open_bank(tmp_path / "bank.db") as bank:
        summary = ingest_log(bank, path)
        stored = bank.experiments(summary.session_id)
    assert summary.rows_added == len(HEADERLESS_ROWS)
    assert [row["description"] for row in stored][:2] == ["baseline", "increase LR to 0.04"]


@pytest.mark.parametrize(
    "first_line",
    [
        "alpha\tbeta\tgamma\tdelta\tepsilon",  # names no rule knows: still the header
        "run\tbpb\tgb\tresult\tnote",
    ],
)
def test_a_first_line_of_names_stays_the_header(tmp_path: Path, first_line: str) -> None:
    path = tmp_path / "named.tsv"
    path.write_text("\n".join([first_line, *HEADERLESS_ROWS]) + "\n", encoding="utf-8")
    log = read_results_log(path)
    assert log.header == first_line.split("\t")
    assert len(log.rows) == len(HEADERLESS_ROWS)
    assert not any("no header line" in r for r in log.repairs)


# --- no free-text column: the change named tersely ------------------------------------------


def test_a_log_whose_changes_are_named_tersely_reads_them_as_descriptions(tmp_path: Path) -> None:
    lines = [
        "iter\ttarget\tbuild\tpasses\tdecision",
        "0\t(baseline)\tok\t4\tbaseline",
        "1\tsrc/loader.py\tok\t5\taccept",
        "2\tsrc/cache.py\tok\t4\trevert",
        "3\tsrc/loader.py\tfail\t3\trevert",
        "4\tsrc/scheduler.py\tok\t6\taccept",
    ]
    path = _write(tmp_path, "terse.tsv", lines)
    log = read_results_log(path)
    assert log.columns["description"] == "target" and log.columns["id"] == "iter"
    assert [r.description for r in log.rows][1:3] == ["src/loader.py", "src/cache.py"]
    assert _statuses(log)[1:] == ["keep", "discard", "discard", "keep"]
    assert any("no free-text column" in r and "'target'" in r for r in log.repairs)


@pytest.mark.parametrize(
    "column",
    [
        ["a1b2c3d", "b2c3d4e", "c3d4e5f"],  # hashes
        ["2026-05-01T10:00", "2026-05-01T11:00", "2026-05-02T09:30"],  # times
        ["ok", "ok", "ok"],  # one value, no change named
    ],
)
def test_ids_times_and_constants_are_no_terse_description(tmp_path: Path, column) -> None:
    lines = ["label\tbpb\tstatus"] + [  # 'label' is no id name: only the content decides
        f"{value}\t0.9{i}\t{('keep', 'discard', 'keep')[i]}" for i, value in enumerate(column)
    ]
    path = _write(tmp_path, "untold.tsv", lines)
    with pytest.raises(NrrInputError, match="no description column"):
        read_results_log(path)


def test_prose_without_spaces_is_a_description(tmp_path: Path) -> None:
    lines = [
        "commit\tscore\tstatus\tremark",
        "a1\t0.51\tkeep\t基线配置不做修改",
        "a2\t0.55\tkeep\t把学习率提高到千分之二",
        "a3\t0.50\tdiscard\t加入标签平滑系数零点一",
    ]
    path = _write(tmp_path, "zh.tsv", lines)
    log = read_results_log(path)
    assert log.columns["description"] == "remark"
    assert log.rows[2].description == "加入标签平滑系数零点一"
    assert not any("no free-text column" in r for r in log.repairs)  # prose, not a terse name


# --- statuses met on public logs outside the dev folders (session 11) -----------------------


@pytest.mark.parametrize("raw", ["duplicate", "inconclusive", "proposed", "candidate", "stopped"])
def test_statuses_that_decide_nothing_are_other(raw: str) -> None:
    assert map_status(raw) == "other"


def test_two_rows_of_a_stray_word_beside_one_pole_are_not_a_decision(tmp_path: Path) -> None:
    """The one other value beside only discard words reads as the keep from its third row on:
    two strays on a log's first rows ('shelved' x2) stay 'other'."""
    statuses = ["discard", "shelved", "discard", "shelved", "discard"]
    lines = ["commit\tscore\tstatus\tdescription"] + [
        f"c{i}\t0.{i}\t{s}\tidea {i}" for i, s in enumerate(statuses)
    ]
    path = _write(tmp_path, "strays.tsv", lines)
    assert _statuses(read_results_log(path)) == ["discard", "other", "discard", "other", "discard"]
    with path.open("a", encoding="utf-8") as out:
        out.write("c5\t0.5\tshelved\tidea 5\n")
    assert _statuses(read_results_log(path))[1] == "keep"
