"""Output people like: -h and --version on the root, an example in every command's help,
progress on stderr for long commands, no third-party warnings on the terminal."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from core_helpers import run_nrr

from nrr_stats import __version__

FIXTURE_LOG = Path(__file__).parent / "fixtures" / "backtest" / "seed_results.tsv"


def _commands() -> list[str]:
    from nrr_stats.cli import _typer_main  # registers every command module

    assert _typer_main is not None
    from nrr_stats.cli import backtest, core, curate, loop, models, parse  # noqa: F401
    from nrr_stats.cli.app import app

    return sorted(c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands)


def test_root_help_and_version() -> None:
    for flag in ("-h", "--help"):
        run = run_nrr(flag)
        assert run.code == 0 and "check" in run.out and "Example" in run.out
    for flag in ("--version", "-V"):
        run = run_nrr(flag)
        assert run.code == 0 and run.out.strip() == f"nrr-stats {__version__}"


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_an_example_in_its_help(command: str) -> None:
    run = run_nrr(command, "-h")
    assert run.code == 0, run.err
    assert "Example" in run.out and f"nrr {command.split('-')[0]}" in run.out.replace("\n", " ")


def test_backtest_reports_progress_per_log_on_stderr(tmp_path: Path) -> None:
    run = run_nrr(
        "backtest",
        str(FIXTURE_LOG),
        "--jsonl",
        str(tmp_path / "b.jsonl"),
        "--no-population-prior",
        "--progress",
    )
    assert run.code == 0, run.err
    assert FIXTURE_LOG.name in run.err and run.err.startswith("nrr: ")


def test_third_party_warnings_are_kept_off_the_terminal(monkeypatch) -> None:
    from nrr_stats.cli import _quiet_third_parties

    monkeypatch.delenv("NRR_DEBUG", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet_third_parties()
        warnings.warn("old API", FutureWarning, stacklevel=1)
        warnings.warn_explicit("g++ not available", UserWarning, "x.py", 1, module="pytensor.link")
        warnings.warn("nrr's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["nrr's own"]
