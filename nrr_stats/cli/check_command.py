"""`nrr check`'s body, shared by the typer command and the fast path (cli/fast.py): the
proposal read, the answer printed, the verdict's exit code returned. No typer import here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nrr_stats.errors import NrrInputError


def read_proposal_text(proposal: str | None, proposal_file: Path | None) -> str:
    """The proposal from an argument, a file, or stdin (`-`, or piped with no argument)."""
    if proposal is not None and proposal_file is not None:
        raise NrrInputError("give the proposal as an argument or with --proposal-file, not both")
    if proposal_file is not None and str(proposal_file) != "-":
        try:
            return Path(proposal_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise NrrInputError(
                f"cannot read the proposal: {reason}", path=str(proposal_file)
            ) from None
    if proposal is not None and proposal != "-":
        return _utf8_text(proposal, "the proposal argument")
    if proposal is None and proposal_file is None and sys.stdin.isatty():
        raise NrrInputError(
            "no proposal: give it as an argument, with --proposal-file F, or on stdin with -"
        )
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream without bytes beneath (tests, embedding)
        return _utf8_text(sys.stdin.read(), "stdin")
    try:
        return stream.read().decode("utf-8")
    except UnicodeDecodeError as error:
        raise NrrInputError(
            f"cannot read the proposal: not UTF-8 text (byte {error.start})", path="stdin"
        ) from None


def _utf8_text(text: str, where: str) -> str:
    """`text` when it is valid Unicode (argv and stdin carry undecodable bytes as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise NrrInputError(
            f"cannot read the proposal: not UTF-8 text (character {error.start})", path=where
        ) from None
    return text


def run_check(
    proposal: str | None = None,
    proposal_file: Path | None = None,
    description: str | None = None,
    bank: str | None = None,
    session: str | None = None,
    rules: Path | None = None,
    no_population_prior: bool = False,
    brief: bool = False,
    no_record: bool = False,
) -> int:
    """Print the answer (JSON, or the brief text) and return the verdict's exit code."""
    from nrr_stats.answer_fields import EMPTY_BANK_NOTE
    from nrr_stats.answer_fields import brief as brief_text
    from nrr_stats.check import Checker
    from nrr_stats.decide import VERDICT_EXIT_CODES

    if description is not None and proposal is None and proposal_file is None:
        text = ""
    else:
        text = read_proposal_text(proposal, proposal_file)
    from nrr_stats.parser.rules import configured_rules_path, load_rules

    chosen = configured_rules_path(rules, bank)  # --rules, $NRR_RULES, nrr.toml beside the bank
    parsed_rules = load_rules(chosen) if chosen is not None else None
    with Checker(bank, rules=parsed_rules, use_population_prior=not no_population_prior) as checker:
        answer = checker.check(text, session=session, description=description, record=not no_record)
    if answer["empty_bank"]:
        print(f"nrr: warning: {EMPTY_BANK_NOTE}", file=sys.stderr)
    from nrr_stats.secrets import redact_text

    print(redact_text(brief_text(answer) if brief else json.dumps(answer, ensure_ascii=False)))
    return VERDICT_EXIT_CODES[answer["verdict"]]
