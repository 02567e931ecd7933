"""`nrr parse`: arguments or stdin in, one JSON object per line out; a bad rules file exits 3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nrr_stats.cli.parse  # noqa: F401  (registers the command even before the CLI imports it)
from nrr_stats.cli import main

KEYS = ["category", "direction", "parameter", "from", "to"]


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    code = "import sys, nrr_stats.cli.parse; from nrr_stats.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_arguments_give_one_json_object_each(capsys) -> None:
    assert main(["parse", "Reduce batch size to 64", "Switch optimizer from SGD to AdamW"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [list(line) for line in lines] == [KEYS, KEYS]
    assert lines[0] == {
        "category": "batch_size",
        "direction": "decrease",
        "parameter": "BATCH_SIZE",
        "from": "",
        "to": "64",
    }
    assert (lines[1]["category"], lines[1]["from"], lines[1]["to"]) == ("optimizer", "SGD", "AdamW")


def test_stdin_gives_one_json_object_per_line() -> None:
    done = run(
        ["parse"], stdin="Add dropout of 0.3\nUse mixed precision training\r\n\nDEPTH 4->6\n"
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["category"], line["direction"]) for line in lines] == [
        ("regularization", "add"),
        ("systems", "add"),
        ("other", "other"),
        ("model_depth", "increase"),
    ]


def test_rules_file_adds_a_category(tmp_path: Path, capsys) -> None:
    rules = tmp_path / "trading.toml"
    rules.write_text('[categories.risk]\nwords = ["stop loss"]\n', encoding="utf-8")
    assert main(["parse", "--rules", str(rules), "widen the stop loss to 3%"]) == 0
    assert json.loads(capsys.readouterr().out)["category"] == "risk"


def test_bad_rules_file_exits_3_with_one_line_naming_it(tmp_path: Path) -> None:
    rules = tmp_path / "broken.toml"
    rules.write_text('[categories.risk]\nwords = ["stop loss"\n', encoding="utf-8")
    done = run(["parse", "--rules", str(rules), "anything"])
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(rules) in lines[0] and "Traceback" not in done.stderr
