"""Where an agent stands on an NK record (adopted, rejected, open), and which records bind a
proposal's verdict: adopted records that say to abandon its route or change method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# A record with one of these recommended actions, once adopted for a proposal's route, means
# the agent itself decided not to go on as proposed.
BINDING_ACTIONS = ("abandon_route", "change_method")


def standing(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The record's standing from its adoption history: its latest event decides (adopted or
    rejected, by whom, why); a record nobody has decided on is open."""
    if not history:
        return {"standing": "open"}
    last = history[-1]
    state = "adopted" if last["action"] == "adopt" else "rejected"
    return {"standing": state, "decided_by": last["actor"], "decision_reason": last["reason"]}


def on_route(record: Mapping[str, Any], category: str, direction: str, parameter: str) -> bool:
    """True when the record is about exactly this route: the same cell and the same parameter,
    or a record that names no parameter (about the whole cell)."""
    route = record.get("route") or {}
    return (
        route.get("category") == category
        and route.get("direction") == direction
        and route.get("parameter", "") in ("", parameter or "")
    )


def binding_records(
    records: Sequence[Mapping[str, Any]], category: str, direction: str, parameter: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(adopted, rejected) records on exactly this route whose recommended action is to abandon
    the route or change method, each as {id, action, rationale, decided_by, decision_reason}."""
    adopted, rejected = [], []
    for record in records:
        failure = record.get("failure") or {}
        action = failure.get("recommended_action") if isinstance(failure, Mapping) else None
        if action not in BINDING_ACTIONS or not on_route(record, category, direction, parameter):
            continue
        state = standing(record.get("history") or [])
        entry = {
            "id": record["id"],
            "action": action,
            "rationale": str(record.get("rationale", "")),
            "decided_by": state.get("decided_by"),
            "decision_reason": state.get("decision_reason"),
        }
        if state["standing"] == "adopted":
            adopted.append(entry)
        elif state["standing"] == "rejected":
            rejected.append(entry)
    return adopted, rejected
