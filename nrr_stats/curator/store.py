"""NK records and their adoption events in the bank (tables nk_records and record_events).

Keys: a depth-1 record's route_key is `exp/<experiment pk>`; a depth-N record's is
`route/<session id>/<category>/<direction>/<parameter>`; an imported record's is
`nk/<category>/<direction>/<parameter>#<content hash>` (its experiment, when this bank holds
the one it names, in experiment_id; NULL otherwise). (route_key, depth, source) is unique,
so a finished record is never curated twice. An experiment's evidence weight follows its own
depth-1 record, a model's record preferred over the rules' one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nrr_stats.bank.store import Bank, utc_now
from nrr_stats.curator.schema import record_depth
from nrr_stats.errors import NrrInputError

if TYPE_CHECKING:
    from nrr_stats.curator.weights import WeightTable

ACTIONS = ("adopt", "reject")


def fits_bank_id(value: Any) -> bool:
    """True for an integer a bank id can be (a positive signed 64-bit integer): anything else
    names no row, and must not reach the database driver (which overflows)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def experiment_key(experiment_pk: int) -> str:
    """route_key of the depth-1 record of one experiment."""
    return f"exp/{experiment_pk}"


def route_key(session_id: int, category: str, direction: str, parameter: str) -> str:
    """route_key of a depth-N record: one route (cell and parameter) within one session."""
    return f"route/{session_id}/{category}/{direction}/{parameter}"


def save_record(
    bank: Bank,
    record: Mapping[str, Any],
    *,
    experiment_pk: int | None,
    key: str,
    note: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    replace: bool = False,
    source: str | None = None,
    evidence_weight: float | None = None,
) -> int | None:
    """Store a record and set its experiment's evidence weight, in one transaction.

    `experiment_pk` is None for a record imported without an experiment in this bank; `source`
    and `evidence_weight` default to the record's own fields. Returns the record id, or None
    when a record with the same key, depth and source exists and `replace` is false (it is left
    as it was).
    """
    depth = record_depth(record)
    source = source if source is not None else record["source"]
    row = {
        "experiment_id": experiment_pk,
        "route_key": key,
        "depth": depth,
        "source": source,
        "record_json": json.dumps(record, ensure_ascii=False, sort_keys=True),
        "evidence_weight": float(
            evidence_weight if evidence_weight is not None else record["evidence_weight"]
        ),
        "note": note,
        "input_tokens": int(input_tokens),
        "output_tokens": int(output_tokens),
        "created_at": utc_now(),
    }
    return bank.save_nk_record(row, replace=replace)


def apply_weights(bank: Bank, table: WeightTable | None = None) -> int:
    """Recompute every record's weight from `table` (default: the built-in one) and every
    experiment's evidence weight from its records (1.0 without one); return records updated."""
    from nrr_stats.curator.weights import load_weights

    table = table or load_weights()

    def reweigh(record_id: int, record_json: str) -> tuple[int, str, float]:
        record = json.loads(record_json)
        weight = table.weight(record["failure"])
        if "evidence_weight" in record:  # a bare imported NK record keeps its content
            record["evidence_weight"] = weight
        return record_id, json.dumps(record, ensure_ascii=False, sort_keys=True), weight

    return bank.reweigh_nk_records(reweigh)


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["record"] = json.loads(out.pop("record_json"))
    return out


def fetch_records(
    bank: Bank,
    *,
    session_id: int | None = None,
    experiment_pk: int | None = None,
    source: str | None = None,
    depth: int | None = None,
) -> list[dict[str, Any]]:
    """Stored records (row columns plus the parsed `record`), oldest first, optionally filtered."""
    if any(v is not None and not fits_bank_id(v) for v in (session_id, experiment_pk, depth)):
        return []  # no row has such an id (or depth)
    rows = bank.nk_records(
        session_id=session_id, experiment_pk=experiment_pk, source=source, depth=depth
    )
    return [_decode(row) for row in rows]


def get_record(bank: Bank, record_id: int) -> dict[str, Any]:
    """One stored record by id, with its adoption history; a one-line error when there is none."""
    row = bank.nk_record(record_id) if fits_bank_id(record_id) else None
    if row is None:
        raise NrrInputError(f"no NK record with id {record_id} (see `nrr records`)")
    out = _decode(row)
    out["history"] = events_for(bank, [record_id]).get(record_id, [])
    return out


def record_event(
    bank: Bank, record_id: int, action: str, actor: str, reason: str = ""
) -> dict[str, Any]:
    """Record that `actor` adopts or rejects a record, with when and why; return the event."""
    if action not in ACTIONS:
        raise NrrInputError(f"action must be adopt or reject, not {action!r}")
    if not actor.strip():
        raise NrrInputError("the actor must not be empty")
    if action == "reject" and not reason.strip():
        raise NrrInputError("a rejection needs a reason (--reason)")
    get_record(bank, record_id)
    event = {"action": action, "actor": actor, "reason": reason, "created_at": utc_now()}
    bank.add_record_event(record_id, action, actor, reason, event["created_at"])
    return {"record_id": record_id, **event}


def events_for(bank: Bank, record_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Adoption history per record id, oldest first."""
    ids = sorted(set(int(i) for i in record_ids))
    if not ids:
        return {}
    rows = bank.record_events(ids)
    history: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        history.setdefault(int(row["record_id"]), []).append(
            {k: row[k] for k in ("action", "actor", "reason", "created_at")}
        )
    return history


def applicable_records(
    bank: Bank,
    category: str,
    direction: str,
    parameter: str | None = None,
    session_id: int | None = None,
    *,
    limit: int | None = 20,
) -> list[dict[str, Any]]:
    """Records for a proposal's route, deepest and newest first, each with its adoption history.

    The route is the cell (category, direction) and, when `parameter` is given, that parameter
    (records with no parameter still apply); `session_id` keeps only that session's records.
    A route that names no one thing (category other or multiple, or direction other, without a
    parameter) has no applicable records: those cells hold unrelated changes. At most `limit`.
    """
    from nrr_stats.curator.adoption import standing
    from nrr_stats.curator.offline import identifiable_route

    if not identifiable_route(category, direction, parameter or ""):
        return []
    rows = bank.nk_records_in_cell(category, direction, parameter, session_id, limit)
    # Records imported without an experiment here apply to their route in every session.
    if parameter:
        prefixes = [imported_route_prefix(category, direction, parameter) + "#"]
        prefixes.append(imported_route_prefix(category, direction, "") + "#")
    else:
        prefixes = [imported_route_prefix(category, direction, None)]
    for row in bank.imported_nk_records(prefixes):
        route = imported_route(row["route_key"])
        if route is not None:
            rows.append({**row, "session_id": None, **route})
    rows.sort(key=lambda row: (-int(row["depth"]), -int(row["id"])))
    if limit is not None:
        rows = rows[: int(limit)]
    history = events_for(bank, [row["id"] for row in rows])
    out = []
    for row in rows:
        record = json.loads(row["record_json"])
        out.append(
            {
                **record,
                "id": int(row["id"]),
                "experiment_pk": None
                if row["experiment_id"] is None
                else int(row["experiment_id"]),
                "session_id": None if row["session_id"] is None else int(row["session_id"]),
                "route": {
                    "category": row["category"],
                    "direction": row["direction"],
                    "parameter": row["parameter"] or "",
                },
                "depth": int(row["depth"]),
                "source": row["source"],
                "evidence_weight": float(row["evidence_weight"]),
                "note": row["note"],
                "created_at": row["created_at"],
                "history": history.get(int(row["id"]), []),
                **standing(history.get(int(row["id"]), [])),
            }
        )
    return out


IMPORTED_PREFIX = "nk/"


def imported_route_prefix(category: str, direction: str, parameter: str | None) -> str:
    """The start of the route_key of records imported onto a route (any parameter when None)."""
    return f"{IMPORTED_PREFIX}{category}/{direction}/" + ("" if parameter is None else parameter)


def imported_key(category: str, direction: str, parameter: str, digest: str) -> str:
    """route_key of an imported record: its route, then the hash of its content."""
    return f"{imported_route_prefix(category, direction, parameter)}#{digest}"


def imported_route(key: str) -> dict[str, str] | None:
    """The route an imported record's route_key names (None for any other key)."""
    if not key.startswith(IMPORTED_PREFIX) or "#" not in key:
        return None
    route, _, _ = key[len(IMPORTED_PREFIX) :].rpartition("#")
    parts = route.split("/", 2)
    if len(parts) != 3:
        return None
    return {"category": parts[0], "direction": parts[1], "parameter": parts[2]}


def imported_digests(bank: Bank) -> set[str]:
    """Content hashes of every record imported into the bank (an import stores each once)."""
    rows = bank.nk_route_keys_starting(IMPORTED_PREFIX)
    return {row["route_key"].rpartition("#")[2] for row in rows if "#" in row["route_key"]}


def reroute_imported(bank: Bank, digest: str, key: str) -> bool:
    """Move the imported record with this content hash onto `key`'s route; True if it moved."""
    rows = bank.nk_route_keys_starting(IMPORTED_PREFIX)
    moved = [r for r in rows if r["route_key"].endswith("#" + digest) and r["route_key"] != key]
    for row in moved:
        bank.set_nk_route_key(int(row["id"]), key)
    return bool(moved)


def find_named_experiment(bank: Bank, task_id: str, experiment: str) -> int | None:
    """The bank id of the experiment a record names: `experiment` (its id in the log) within the
    session whose key is `task_id`; None unless exactly one experiment matches."""
    ids = bank.experiments_named(task_id, experiment)
    return ids[0] if len(ids) == 1 else None


def experiment_names(bank: Bank, experiment_pks: Iterable[int]) -> dict[int, str]:
    """The log's own id of each experiment (bank id -> experiment_id)."""
    return bank.experiment_log_ids(sorted(set(int(i) for i in experiment_pks)))


def record_artifacts(
    bank: Bank, keys: Iterable[str], source: str, depth: int = 1
) -> dict[str, list[str]]:
    """The artifact files each stored record of these route_keys was curated with (a record
    names them in its `artifacts` field; one curated from the log alone names none)."""
    keys = sorted(set(keys))
    used: dict[str, list[str]] = {}
    for row in bank.nk_record_bodies(keys, source, depth):
        files = json.loads(row["record_json"]).get("artifacts") or []
        used[row["route_key"]] = sorted(set(used.get(row["route_key"], [])) | set(files))
    return used


def curated_keys(bank: Bank, source: str, depth: int = 1) -> set[str]:
    """route_keys that already hold a record of this source and depth (finished work, for resuming)."""
    return bank.nk_route_keys(source, depth)
