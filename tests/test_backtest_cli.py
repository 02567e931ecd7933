"""`nrr backtest`: outputs, the population-prior switch, and every error path (exit 3, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nrr_stats.cli import main
from nrr_stats.models.population import load_population_prior

FIXTURES = Path(__file__).parent / "fixtures" / "backtest"
SEED = FIXTURES / "seed_results.tsv"
DEV_LOG = FIXTURES / "ArikMarik__budget-aware-dpo.tsv"
needs_prior = pytest.mark.skipif(load_population_prior() is None, reason="no prior in models/")


def _json_run(capsys, *args: str) -> dict:
    assert main(["backtest", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@needs_prior
def test_no_population_prior_changes_the_source(capsys, tmp_path: Path):
    default = _json_run(capsys, str(SEED), "--jsonl", str(tmp_path / "c.jsonl"))
    assert [log["prior"] for log in default["logs"]] == ["evidence shipped"]
    with_prior = _json_run(
        capsys, str(SEED), "--jsonl", str(tmp_path / "a.jsonl"), "--no-similarity"
    )
    without = _json_run(
        capsys,
        str(SEED),
        "--jsonl",
        str(tmp_path / "b.jsonl"),
        "--no-population-prior",
        "--no-similarity",
    )
    assert [log["prior"] for log in with_prior["logs"]] == ["shipped"]
    assert [log["prior"] for log in without["logs"]] == ["none"]
    a = [json.loads(x)["p_keep"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x)["p_keep"] for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(a) == len(b) == with_prior["scores"]["engine"]["rows"]
    assert a != b


def test_summary_table_plot_and_jsonl(capsys, tmp_path: Path):
    out, plot = tmp_path / "out.jsonl", tmp_path / "rel.png"
    code = main(
        [
            "backtest",
            str(SEED),
            str(DEV_LOG),
            "--jsonl",
            str(out),
            "--plot",
            str(plot),
            "--no-population-prior",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    for word in ("log loss", "Brier", "ECE", "engine", "running_laplace", "wall time"):
        assert word in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    files = {json.loads(line)["file"] for line in out.read_text().splitlines()}
    assert files == {SEED.name, DEV_LOG.name}


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("nrr: ") and "\n" not in err
    return err


def test_missing_log_exits_3(capsys, tmp_path: Path):
    err = _error(capsys, ["backtest", str(tmp_path / "nope.tsv"), "--jsonl", str(tmp_path / "o")])
    assert "nope.tsv" in err


def test_missing_jsonl_option_exits_3(capsys):
    assert "--jsonl" in _error(capsys, ["backtest", str(SEED)])


def test_jsonl_in_missing_folder_exits_3(capsys, tmp_path: Path):
    target = tmp_path / "no" / "such" / "out.jsonl"
    assert "folder" in _error(capsys, ["backtest", str(SEED), "--jsonl", str(target)])


def test_log_without_experiments_exits_3(capsys, tmp_path: Path):
    log = tmp_path / "only_baseline.tsv"
    log.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\na1\t1.0\t1\tkeep\tbaseline\n")
    err = _error(
        capsys,
        ["backtest", str(log), "--jsonl", str(tmp_path / "o.jsonl"), "--no-population-prior"],
    )
    assert "no predicted rows" in err


def test_unreadable_log_exits_3_naming_it(capsys, tmp_path: Path):
    log = tmp_path / "empty.tsv"
    log.write_text("")
    assert "empty.tsv" in _error(capsys, ["backtest", str(log), "--jsonl", str(tmp_path / "o")])


@needs_prior
def test_seen_log_without_corpus_exits_3(capsys, tmp_path: Path):
    err = _error(
        capsys,
        [
            "backtest",
            str(DEV_LOG),
            "--jsonl",
            str(tmp_path / "o"),
            "--corpus",
            str(tmp_path),
            "--no-similarity",
        ],
    )
    assert "corpus" in err and DEV_LOG.name in err


def test_unwritable_plot_exits_3(capsys, tmp_path: Path):
    plot = tmp_path / "missing" / "rel.png"
    err = _error(
        capsys,
        [
            "backtest",
            str(SEED),
            "--jsonl",
            str(tmp_path / "o"),
            "--plot",
            str(plot),
            "--no-population-prior",
        ],
    )
    assert "plot" in err
