"""`nrr check` without typer: the in-loop command parsed with argparse, so a cold process does
not build the whole typer application (typer's pydantic adapters alone cost ~0.2 s).

Only plain uses take this path; `-h`, an unknown option or any parse error falls back to the
typer command, which owns the help text and the error messages. The options mirror
`nrr_stats.cli.core.check` (a test runs both on the same arguments).
"""

from __future__ import annotations

import argparse
from pathlib import Path


class _Fallback(Exception):
    """The arguments are not for the fast path: let typer parse them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print and exit 2
        raise _Fallback(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nrr check", add_help=False, allow_abbrev=False)
    parser.add_argument("proposal", nargs="?")
    parser.add_argument("--proposal-file", "-f", type=Path)
    parser.add_argument("--description")
    parser.add_argument("--bank")
    parser.add_argument("--session")
    parser.add_argument("--rules", type=Path)
    parser.add_argument("--no-population-prior", action="store_true")
    parser.add_argument("--brief", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    return parser


def fast_check(argv: list[str]) -> int | None:
    """Run `nrr check ARGS` and return its exit code, or None to let typer handle `argv`."""
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    try:
        args = _parser().parse_args(argv)
    except _Fallback:
        return None
    from nrr_stats.cli.check_command import run_check

    return run_check(**vars(args))
