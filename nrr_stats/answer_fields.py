"""What `Checker.check` adds around one change's answer (check.py calls these; nothing else).

A proposal that changes several values is answered for its riskiest change with every change
listed, the answer says how the proposal was read, an empty bank says it answers from the prior
alone, and the JSON carries the Negative Result Repository prototype's field names beside
nrr-stats' own. `brief` renders an answer in a few lines for an LLM's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the fields are named here; their types come with the check
    from nrr_stats.bank import Bank
    from nrr_stats.proposal import Proposal

# Worst first: the riskiest change of a multi-change proposal is the first in this order.
SEVERITY = {"avoid": 2, "caution": 1, "proceed": 0}

EMPTY_BANK_NOTE = (
    "the bank holds no experiments yet, so this answer is the prior alone"
    " (store a log with `nrr ingest results.tsv`)"
)

# NRR's field names (t46/negative-result-repository `nrr check`) and the nrr-stats field each
# one mirrors; similar_failures items get experiment_id, accuracy_delta and lesson.
NRR_ALIASES: dict[str, str] = {
    "estimated_success_probability": "p_keep",
    "relevant_patterns": "patterns",
    "parsed_description": "read_as.description",
    "parsed_config_changes": "read_as.changes (every KEY = value set)",
    "database": "bank.url",
}
NRR_SIMILAR_FAILURE_ALIASES: dict[str, str] = {
    "experiment_id": "the log's experiment id (commit hash) of the row `id`",
    "accuracy_delta": "delta",
    "lesson": "the curated NK record's rationale, else the outcome and delta",
}


def with_description(text: str, description: str | None) -> str:
    """The proposal with its description lines replaced by `description` (when given)."""
    if not description:
        return text
    from nrr_stats.proposal import read_proposal

    own = {line.number for line in read_proposal(text).lines if line.use == "description"}
    kept = [line for number, line in enumerate(text.splitlines(), 1) if number not in own]
    return "\n".join([description.strip(), *kept])


def change_summary(change: Any, answer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "parameter": change.key,
        "from": change.old,
        "to": change.new,
        "category": answer["category"],
        "direction": answer["direction"],
        "verdict": answer["verdict"],
        "p_keep": answer["p_keep"],
        "interval": answer["interval"],
        "n": answer["n"],
        "k": answer["k"],
    }


def add_nrr_fields(answer: dict[str, Any], proposal: Proposal, bank: Bank) -> None:
    """Add the NRR prototype's field names beside nrr-stats' own (NRR_ALIASES)."""
    answer["estimated_success_probability"] = answer["p_keep"]
    answer["relevant_patterns"] = [_nrr_pattern(cell) for cell in answer["patterns"]]
    answer["parsed_description"] = proposal.description
    answer["parsed_config_changes"] = dict(proposal.new_values)
    answer["database"] = answer["bank"]["url"]
    notes = bank.experiment_notes([item["id"] for item in answer["similar_failures"]])
    for item in answer["similar_failures"]:
        note = notes.get(int(item["id"]), {})
        item["experiment_id"] = note.get("experiment_id")
        item["accuracy_delta"] = item.get("delta")
        item["lesson"] = _lesson(note, item)


def _nrr_pattern(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A cell as an NRR pattern: its rule states the keep rate with its interval and counts;
    confidence is P(the cell's keep rate is below the session's base rate)."""
    low, high = cell["interval"]
    below = cell["prob_below_base"]
    rule = (
        f"{cell['category']}/{cell['direction']}: keep rate {cell['mean']:.2f}"
        f" [{low:.2f}, {high:.2f}] over {cell['n']} experiments ({cell['k']} kept)"
        + (f"; P(below the base rate) {below:.2f}" if below is not None else "")
    )
    return {
        "pattern_id": f"{cell['category']}/{cell['direction']}",
        "rule": rule,
        "confidence": below,
        "num_experiments": cell["n"],
    }


def _lesson(note: Mapping[str, Any], item: Mapping[str, Any]) -> str:
    import json

    record = json.loads(note["record_json"]) if note.get("record_json") else None
    if record and record.get("rationale"):
        return str(record["rationale"])
    delta = item.get("delta")
    shown = f", delta {delta:+.4g}" if isinstance(delta, int | float) else ""
    return f"{item.get('outcome') or 'failed'}{shown}: {item.get('description', '')}"[:300]


def brief(answer: Mapping[str, Any], limit: int = 1000) -> str:
    """The answer in a few lines for an LLM's context (under `limit` bytes): verdict, P(keep)
    with interval and counts, base rate, the nearest failure and the NK advice."""
    low, high = answer["interval"]
    lines = [
        f"verdict: {answer['verdict']} ({answer['category']}/{answer['direction']}"
        + (f", {answer['parameter']}" if answer.get("parameter") else "")
        + ")",
        f"P(keep) {answer['p_keep']:.2f} [{low:.2f}, {high:.2f}] from {answer['n']}"
        f" experiments in its cell ({answer['k']} kept); session base rate "
        + (f"{answer['base_rate']:.2f}" if answer.get("base_rate") is not None else "unknown"),
        f"reason: {answer['reason']}",
    ]
    if answer["similar_failures"]:
        top = answer["similar_failures"][0]
        delta = top.get("delta")
        lines.append(
            f"nearest failure: {top['description'][:160]!r} ({top.get('outcome')}"
            + (f", delta {delta:+.4g}" if isinstance(delta, int | float) else "")
            + f", similarity {top['similarity']:.2f})"
        )
    for record in answer.get("nk_records", [])[:1]:
        body = record.get("record", record)
        action = (body.get("failure") or {}).get("recommended_action")
        alternative = body.get("recommended_alternative")
        advice = "; ".join(
            part
            for part in (action and f"action {action}", alternative and f"try {alternative}")
            if part
        )
        if advice:
            lines.append(f"NK advice: {advice}"[:320])
    out = "\n".join(lines)
    while len(out.encode("utf-8")) > limit and len(lines) > 1:
        lines[2] = (
            lines[2][: max(40, len(lines[2]) - (len(out.encode("utf-8")) - limit) - 4)] + "..."
        )
        out = "\n".join(lines)
        if len(out.encode("utf-8")) > limit:
            lines.pop()
            out = "\n".join(lines)
    return out
