"""`nrr check` without typer: the in-loop command's plain arguments read by hand, so a cold
process builds neither the typer application (typer's pydantic adapters alone cost ~0.2 s) nor
an argparse parser (argparse, gettext and locale: a few ms more).

Only plain uses take this path: the proposal (or `-`), the options below as `--name value` or
`--name=value` (`-f value`), the flags. Anything else (`-h`, an unknown or abbreviated option,
`--`, `-fVALUE`, a second proposal) falls back to the typer command, which owns the help text
and the error messages. What this path accepts it reads as argparse, its former parser, did (a
test compares the two), and the options mirror `nrr_stats.cli.core.check` (a test runs both on
the same arguments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Options taking a value: option string -> keyword of run_check.
_VALUED = {
    "--proposal-file": "proposal_file",
    "-f": "proposal_file",
    "--description": "description",
    "--bank": "bank",
    "--session": "session",
    "--rules": "rules",
}
_PATHS = ("proposal_file", "rules")
_FLAGS = {
    "--no-population-prior": "no_population_prior",
    "--brief": "brief",
    "--no-record": "no_record",
}


def _argument(arg: str) -> bool:
    """Whether argparse reads `arg` as an argument (a value or the proposal), not an option:
    no leading dash, `-`, a negative number, or text with a space that names no option (a diff
    given as the proposal). Anything unsure counts as an option: typer then decides."""
    if not arg.startswith("-") or arg == "-":
        return True
    name = arg.partition("=")[0]
    if name in _VALUED or name in _FLAGS or arg[1] != "-" and arg.startswith("-f"):
        return False
    whole, dot, fraction = arg[1:].partition(".")
    if arg[1:].isdecimal() or dot and fraction.isdecimal() and (not whole or whole.isdecimal()):
        return True  # argparse's negative number, ^-\d+$|^-\d*\.\d+$
    return " " in arg


def parse_plain(argv: list[str]) -> dict[str, Any] | None:
    """run_check's keywords from `argv`, or None when it is not a plain use (see above)."""
    found: dict[str, Any] = dict.fromkeys(("proposal", *_VALUED.values()))
    found.update(dict.fromkeys(_FLAGS.values(), False))
    proposal_given = False
    at = 0
    while at < len(argv):
        arg = argv[at]
        name, equals, value = arg.partition("=")
        if arg in _FLAGS:
            found[_FLAGS[arg]] = True
        elif arg in _VALUED:
            if at + 1 == len(argv) or not _argument(argv[at + 1]):
                return None
            at += 1
            found[_VALUED[arg]] = argv[at]
        elif equals and name.startswith("--") and name in _VALUED:
            found[_VALUED[name]] = value
        elif _argument(arg):
            if proposal_given:
                return None
            found["proposal"], proposal_given = arg, True
        else:
            return None
        at += 1
    for key in _PATHS:
        if found[key] is not None:
            found[key] = Path(found[key])
    return found


def fast_check(argv: list[str]) -> int | None:
    """Run `nrr check ARGS` and return its exit code, or None to let typer handle `argv`."""
    if any(arg in ("-h", "--help") for arg in argv):
        return None
    args = parse_plain(argv)
    if args is None:
        return None
    from nrr_stats.cli.check_command import run_check

    return run_check(**args)
