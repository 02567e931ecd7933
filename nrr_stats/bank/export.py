"""Write a stored session back out as a results log (the inverse of ingest)."""

from __future__ import annotations

import json

from nrr_stats.bank.store import Bank
from nrr_stats.errors import NrrInputError


def export_session_tsv(bank: Bank, session_id: int) -> str:
    """The session's rows as TSV under its original header, every field as it was read."""
    session = bank.session(session_id)
    if session is None:
        raise NrrInputError(f"no session {session_id} in the bank", path=bank.location.display)
    header = json.loads(session["header_json"])
    lines = ["\t".join(header)]
    for row in bank.experiments(session_id):
        fields = json.loads(row["fields_json"])
        lines.append("\t".join(fields.get(name, "") for name in header))
    return "\n".join(lines) + "\n"
