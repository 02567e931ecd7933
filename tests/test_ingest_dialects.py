"""Each dialect quirk of real logs, on small fixtures in tests/fixtures/logs (sources in SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nrr_stats.ingest import read_results_log

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"

BOBMOLT_STATUSES = ["keep", "discard", "keep", "keep", "keep"]
BOBMOLT_IDS = ["383abb4", "c67ad2a", "909dd59", "4161af3", "5efc7aa"]
BOBMOLT_METRICS = [2.667, 2.695369, 2.588904, 2.533728, 1.807902]
BOBMOLT_DESCRIPTIONS = [
    "baseline (AdamW, default config)",
    "lower weight decay to 0.1",
    "halve total batch size to 2^16",
    "increase matrix LR to 0.04",
    "reduce depth from 8 to 4",
]


def _read(name: str, **kwargs):
    return read_results_log(LOGS / name, **kwargs)


@pytest.mark.parametrize(
    "name",
    [
        "literal_tab.tsv",
        "mixed_literal_tab.tsv",
        "aligned_columns.txt",
        "single_spaces.txt",
        "multiline_quoted.csv",
        "separator_rows.tsv",
        "same_columns.csv",
        "pipe_table.tsv",
        "lone_cr.tsv",
        "run_together.tsv",
    ],
)
def test_synthetic_dialects_read_the_same_five_rows(name: str) -> None:
    log = _read(name)
    assert [r.status for r in log.rows] == BOBMOLT_STATUSES
    assert [r.experiment_id for r in log.rows] == BOBMOLT_IDS
    assert [r.metric for r in log.rows] == pytest.approx(BOBMOLT_METRICS)
    descriptions = [r.description for r in log.rows]
    if name == "multiline_quoted.csv":
        descriptions[1] = descriptions[1].split(" (was")[0]
    assert descriptions == BOBMOLT_DESCRIPTIONS
    assert log.columns == {
        "id": "commit",
        "metric": "val_bpb",
        "status": "status",
        "description": "description",
    }
    assert (log.metric_direction, log.direction_source) == ("lower", "name")
    assert log.bad_rows == []


def test_separator_rows_are_skipped_but_keep_their_row_numbers() -> None:
    log = _read("separator_rows.tsv")
    # Lines 2, 5 and 7 are rules; EVALUATION.md numbering counts every non-blank, non-comment line.
    assert [(r.row_number, r.line_number) for r in log.rows] == [
        (2, 3),
        (3, 4),
        (5, 6),
        (7, 8),
        (8, 9),
    ]


def test_rows_run_together_with_counter_or_status_last() -> None:
    counter = _read("run_together_counter.tsv")  # Eaglw: 'iteration' first, '...capacity' + '2'
    assert [r.fields["iteration"] for r in counter.rows] == ["0", "1", "2", "3", "4"]
    assert [r.status for r in counter.rows] == ["other", "keep", "discard", "discard", "discard"]
    assert (
        counter.rows[1].description
        == "use tapering architecture 120,100,80,60,40,20 for better capacity"
    )
    assert [r.line_number for r in counter.rows] == [2, 3, 3, 4, 5]
    status_last = _read("run_together_status_last.tsv")  # aceteam: 'yes' + '002'
    assert [r.experiment_id for r in status_last.rows] == ["000", "001", "002", "003", "004"]
    assert [r.status for r in status_last.rows] == ["keep", "keep", "keep", "discard", "discard"]
    assert status_last.bad_rows == []


def test_two_ragged_rows_run_together() -> None:
    log = _read("run_together_ragged.tsv")  # kamiimeteor: 4-field rows, '...model' + '94b1b57'
    assert log.bad_rows == []
    glued = [r for r in log.rows if r.line_number == 9]
    assert [(r.experiment_id, r.status, r.metric) for r in glued] == [
        ("803407b", "keep", pytest.approx(2.216343)),
        ("94b1b57", "discard", pytest.approx(2.382889)),
    ]
    assert glued[0].description == "shrink MLP hidden dim to 1280 on 12-layer 768-dim model"
    assert all(r.fields["memory_gb"] == "" for r in glued)


def test_tabs_inside_a_description_stay_in_one_row(tmp_path: Path) -> None:
    path = tmp_path / "tabs.tsv"
    path.write_text(
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.99\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\t0.98\t44.0\tdiscard\ttry lr\tkeep it simple\tcrash course\n"
        "c3d4e5f\t0.97\t44.0\tkeep\tok\n"
    )
    log = read_results_log(path)
    assert [r.status for r in log.rows] == ["keep", "discard", "keep"]
    assert log.rows[1].description == "try lr\tkeep it simple\tcrash course"


def test_quoted_cell_across_lines_and_a_quote_that_never_closes() -> None:
    multi = _read("multiline_quoted.csv")
    assert (
        multi.rows[1].fields["description"]
        == 'lower weight decay to 0.1 (was 0.2; "wd" sweep, step 1)'
    )
    assert [r.row_number for r in multi.rows] == [1, 2, 4, 5, 6]  # the continuation line counts
    unclosed = _read("unclosed_quote.tsv")
    assert [r.description for r in unclosed.rows][1] == '"wd" 0.1 is "better'
    assert [r.experiment_id for r in unclosed.rows] == BOBMOLT_IDS


def test_rows_run_together_share_their_line() -> None:
    log = _read("run_together.tsv")
    assert [r.line_number for r in log.rows] == [2, 3, 3, 4, 4]
    assert [r.row_number for r in log.rows] == [1, 2, 2, 3, 3]


def test_csv_quoted_description_keeps_its_comma() -> None:
    log = _read("same_columns.csv")
    assert log.rows[0].fields["description"] == "baseline (AdamW, default config)"
    assert log.header == ["commit", "val_bpb", "memory_gb", "status", "description"]


def test_comment_direction_ragged_rows_and_slash_metrics() -> None:
    log = _read("comments_ragged_slash_metric.tsv")
    assert (log.metric_direction, log.direction_source) == ("higher", "comment")
    assert [r.status for r in log.rows] == [
        "other", "keep", "keep", "discard", "discard", "discard", "discard", "keep", "other",
    ]  # fmt: skip
    assert [r.raw_status for r in log.rows][-1] == "infra"
    by_line = {r.line_number: r for r in log.rows}
    assert by_line[7].metric == pytest.approx(2141.0856)  # '2141.0856/110.5249': the first number
    ragged = by_line[8]  # 6 fields for 7 columns: the missing field is placed so status still reads
    assert ragged.status == "discard" and ragged.metric == pytest.approx(79.02)
    assert ragged.description.startswith("mf 配额按 top_k")
    assert by_line[12].metric is None  # 'regime gate' in the metric column of an 'infra' row
    assert [r.row_number for r in log.rows] == list(range(1, 10))


def test_data_rows_before_the_header_are_read_with_it() -> None:
    log = _read("header_after_rows.tsv")
    assert [r.experiment_id for r in log.rows] == [
        "698d5bb",
        "ce0c635",
        "6dc5701",
        "ddd0613",
        "91a795b",
    ]
    assert [r.status for r in log.rows] == ["discard", "keep", "keep", "keep", "keep"]
    assert [r.line_number for r in log.rows] == [1, 2, 4, 5, 6]
    # EVALUATION.md counts lines after the first content line; the header line itself takes row 2.
    assert [r.row_number for r in log.rows] == [0, 1, 3, 4, 5]
    assert log.metric_name == "win_rate"


def test_padded_cells_are_stripped() -> None:
    log = _read("padded_cells.tsv")
    assert log.header[0] == "commit" and log.columns["status"] == "status"
    assert [r.status for r in log.rows] == ["keep", "discard", "keep", "discard", "keep"]
    assert log.rows[1].description == "copy tasks interleaved (4k)"
    assert log.rows[0].metric == pytest.approx(28.8)
    assert log.metric_name == "pi_score"


def test_crlf_line_endings() -> None:
    log = _read("crlf.tsv")
    assert log.rows[0].description == "baseline"
    assert all("\r" not in r.description for r in log.rows)
    assert [r.status for r in log.rows] == ["keep", "discard", "discard", "keep", "keep"]


def test_quoted_cell_with_doubled_quotes() -> None:
    log = _read("quoted_doubled_quotes.tsv")
    assert log.rows[0].fields["shapes"] == '{"16000": [934, 920], "160000": [9495, 9489]}'
    assert log.columns["description"] == "desc"
    assert log.rows[0].description.startswith("baseline")


@pytest.mark.parametrize(
    ("name", "status_column", "statuses"),
    [
        ("kept_yes_no.tsv", "kept", ["keep", "keep", "keep", "discard", "discard"]),
        ("keep_column_yes_no.tsv", "keep", ["keep", "keep", "keep", "discard", "keep"]),
        ("status_second_column.tsv", "status", ["other", "discard", "discard", "discard"]),
        ("status_last_column.tsv", "status", ["keep", "crash", "crash", "crash"]),
        (
            "uppercase_statuses.tsv",
            "status",
            ["other", "keep", "discard", "discard", "keep", "keep"],
        ),
        ("many_status_columns.tsv", "status", ["crash", "keep", "discard", "keep"]),
        ("kept_reverted_na_metric.tsv", "status", ["crash", "crash", "crash", "crash", "keep"]),
        (
            "experiment_desc_and_notes.tsv",
            "status",
            ["discard", "discard", "discard", "keep", "discard"],
        ),
    ],
)
def test_status_columns_and_synonyms(name: str, status_column: str, statuses: list[str]) -> None:
    log = _read(name)
    assert log.columns["status"] == status_column
    assert [r.status for r in log.rows] == statuses
    assert log.bad_rows == []


@pytest.mark.parametrize(
    ("name", "description_column", "first_description"),
    [
        (
            "change_and_notes.tsv",
            "change",
            "baseline DISCO (reconstruction collapse, low-rank Sigma_r, lr=0.2)",
        ),
        ("experiment_desc_and_notes.tsv", "experiment_desc", "baseline (seqs=4)"),
        (
            "status_last_column.tsv",
            "model_description",
            "Baseline OLS: growth_pct -> valuation_multiple",
        ),
        ("kept_yes_no.tsv", "description", "baseline (unmodified engine)"),
        ("many_status_columns.tsv", "description", "baseline dataset yaml path bug"),
    ],
)
def test_description_column_is_the_one_that_says_what_changed(
    name: str, description_column: str, first_description: str
) -> None:
    log = _read(name)
    assert log.columns["description"] == description_column
    assert log.rows[0].description == first_description


def test_metric_columns_by_name() -> None:
    assert _read("many_status_columns.tsv").metric_name == "val_map50_95"
    assert _read("status_last_column.tsv").metric_name == "composite"
    assert _read("kept_yes_no.tsv").metric_name == "total_time_s"
    assert _read("status_second_column.tsv").metric_name == "S"


def test_missing_metric_markers_are_none_not_bad_rows() -> None:
    log = _read("experiment_desc_and_notes.tsv")  # 'OOM' and 'crash' in decode_tps on reverted rows
    assert [r.metric for r in log.rows][1] is None and log.rows[4].metric is None
    crashes = _read("kept_reverted_na_metric.tsv")  # 'N/A' on crash rows
    assert [r.metric for r in crashes.rows][:4] == [None] * 4


def test_crash_rows_with_zero_metric_store_none() -> None:
    log = _read("status_last_column.tsv")  # 'error' rows with composite 0.000000
    assert [r.metric for r in log.rows[1:]] == [None, None, None]


def test_comment_lines_before_the_header() -> None:
    log = _read("leading_comments.tsv")
    assert log.header[0] == "commit" and log.rows[0].line_number == 6
    assert log.rows[0].row_number == 1
    lower = _read("comment_lower_is_better.tsv")
    assert (lower.metric_direction, lower.direction_source) == ("lower", "comment")


def test_flags_override_inference() -> None:
    log = _read("crlf.tsv", metric="memory_gb", direction="higher")
    assert log.metric_name == "memory_gb"
    assert (log.metric_direction, log.direction_source) == ("higher", "flag")
    assert log.rows[0].metric == pytest.approx(6.4)


def test_fields_hold_every_column_by_header_name() -> None:
    log = _read("ragged_missing_middle.tsv")
    assert all(list(r.fields) == log.header for r in log.rows)
    late = log.rows[5]
    assert late.fields == {
        "commit": "local-baseline",
        "val_bpb": "2.384811",
        "memory_gb": "",
        "status": "keep",
        "description": "first local run on M4 32GB",
    }


def test_semicolon_csv_with_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "commit;val_bpb;memory_gb;status;description\n"
        "a1b2c3d;0,9979;44,0;keep;baseline\n"
        "b2c3d4e;0,9932;44,2;keep;increase LR to 0,04\n"
        "c3d4e5f;1,0050;44,0;discard;switch to GeLU activation\n"
    )
    log = read_results_log(path)
    assert [r.metric for r in log.rows] == pytest.approx([0.9979, 0.9932, 1.005])
    assert log.rows[1].description == "increase LR to 0,04"
