"""A log rewritten in other dialects (CRLF, literal tabs, rules, comments, CSV, padding, trailing
delimiters, lost newlines) reads back as the same experiments."""

from __future__ import annotations

import csv
import io
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nrr_stats.ingest import read_results_log

LOGS = Path(__file__).resolve().parent / "fixtures" / "logs"
BASES = [
    "kept_yes_no.tsv",
    "keep_column_yes_no.tsv",
    "status_last_column.tsv",
    "change_and_notes.tsv",
    "uppercase_statuses.tsv",
    "experiment_desc_and_notes.tsv",
    "crlf.tsv",
    "header_after_rows.tsv",
    "comment_lower_is_better.tsv",
    "many_status_columns.tsv",
]


def _split(text: str) -> tuple[list[str], list[str]]:
    lines = text.replace("\r\n", "\n").split("\n")
    comments = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    return comments, body


def _join(comments: list[str], body: list[str]) -> str:
    return "\n".join(comments + body) + "\n"


def literal_tabs(text: str, rng: random.Random) -> str:
    comments, body = _split(text)
    header = next(
        i
        for i, line in enumerate(body)
        if "description" in line or "desc" in line or "change" in line
    )
    return _join(
        comments,
        [
            line.replace("\t", "\\t") if i > header and rng.random() < 0.4 else line
            for i, line in enumerate(body)
        ],
    )


def separators(text: str, rng: random.Random) -> str:
    comments, body = _split(text)
    out = []
    for line in body:
        out.append(line)
        if rng.random() < 0.3:
            out.append(rng.choice(["---", "=====", "|---|---|", "-" * 30]))
    return _join(comments, out)


def more_comments(text: str, rng: random.Random) -> str:
    return "# written by the loop\n\n# another note\n" + text


def padding(text: str, rng: random.Random) -> str:
    comments, body = _split(text)
    return _join(
        comments,
        [
            "\t".join(f" {c} " if rng.random() < 0.5 else c for c in line.split("\t"))
            for line in body
        ],
    )


def trailing_tabs(text: str, rng: random.Random) -> str:
    comments, body = _split(text)
    return _join(comments, [line + "\t" * rng.randint(0, 2) for line in body])


def as_csv(text: str, rng: random.Random) -> str:
    comments, body = _split(text)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for line in body:
        writer.writerow(line.split("\t"))
    return "\n".join(comments) + ("\n" if comments else "") + buffer.getvalue()


def crlf(text: str, rng: random.Random) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


REWRITES = {
    "literal_tabs": literal_tabs,
    "separators": separators,
    "more_comments": more_comments,
    "padding": padding,
    "trailing_tabs": trailing_tabs,
    "as_csv": as_csv,
    "crlf": crlf,
}
# CSV quoting would turn TSV quote marks into content; padding and literal tabs are TSV-only.
EXCLUSIVE = {"as_csv": {"literal_tabs", "padding", "trailing_tabs"}}


def _experiments(path: Path) -> list[tuple]:
    return [
        (r.status, r.description, r.metric, r.experiment_id) for r in read_results_log(path).rows
    ]


@given(
    st.sampled_from(BASES),
    st.sets(st.sampled_from(sorted(REWRITES)), min_size=1),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=120, deadline=None)
def test_rewritten_logs_read_the_same_experiments(base: str, rewrites: set[str], seed: int) -> None:
    if "as_csv" in rewrites:
        rewrites -= EXCLUSIVE["as_csv"]
    rng = random.Random(seed)
    text = (LOGS / base).read_bytes().decode("utf-8")
    for name in sorted(rewrites, key=list(REWRITES).index):
        text = REWRITES[name](text, rng)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / base
        path.write_bytes(text.encode("utf-8"))
        assert _experiments(path) == _experiments(LOGS / base)


@pytest.mark.parametrize("base", BASES)
def test_lost_newlines_keep_every_experiment(tmp_path: Path, base: str) -> None:
    """Every pair of consecutive data rows glued into one line still reads as two experiments."""
    comments, body = _split((LOGS / base).read_bytes().decode("utf-8"))
    want = _experiments(LOGS / base)
    header = next(i for i, line in enumerate(body) if line.split("\t")[0] in ("commit", "experiment_id", "timestamp", "iter", "exp", "commit_hash", "id", "iteration", "exp_id", "experiment", "run_id"))  # fmt: skip
    for index in range(header + 1, len(body) - 1):
        glued = body[:index] + [body[index] + body[index + 1]] + body[index + 2 :]
        path = tmp_path / f"glued-{index}.tsv"
        path.write_text(_join(comments, glued), encoding="utf-8")
        got = _experiments(path)
        assert [g[:3] for g in got] == [w[:3] for w in want], index
