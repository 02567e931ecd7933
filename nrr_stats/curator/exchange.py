"""NK records out of a bank and into one: bare records NK's validator accepts, and imports that
store each record once (by content), on its route and, where it names one, on its experiment.

An exported record is the stored record less the bank's own ids (`experiment_id`,
`experiment_ids`), plus the portable names of its experiments: `experiment` (depth 1) or
`experiments` (depth N), their ids in the log, beside `task_id`, the session's key. Every other
field is kept (NK allows extra keys), so a record exported, imported into another bank and
exported again is the same text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.bank.store import Bank
from nrr_stats.curator.nk_files import RecordItem, content_hash
from nrr_stats.curator.schema import _CATEGORY_NAME, check_record, record_depth, validate_nk
from nrr_stats.curator.store import (
    experiment_names,
    fetch_records,
    find_named_experiment,
    imported_digests,
    imported_key,
    imported_route,
    reroute_imported,
    save_record,
)
from nrr_stats.curator.weights import WeightTable, load_weights
from nrr_stats.errors import NrrInputError
from nrr_stats.taxonomy import DIRECTIONS

IMPORTED_SOURCE = "nk"  # the source column of a record that names no nrr-stats source


def bare_record(row: Mapping[str, Any], names: Mapping[int, str]) -> dict[str, Any]:
    """One stored record (a `fetch_records` row) as a portable NK record. An imported record's
    bank ids are another bank's: they are dropped, never mapped to this bank's experiments."""
    record = dict(row["record"])
    pk = record.pop("experiment_id", None)
    pks = record.pop("experiment_ids", None)
    if imported_route(str(row.get("route_key", ""))) is not None:
        return record
    if isinstance(pks, list) and all(int(p) in names for p in pks):
        record["experiments"] = [names[int(p)] for p in pks]
    elif isinstance(pk, int) and pk in names and record_depth(record) == 1:
        record["experiment"] = names[pk]
    return record


def export_records(bank: Bank, **filters: Any) -> list[dict[str, Any]]:
    """The bank's records (filtered as `fetch_records`) as bare NK records, oldest first."""
    rows = fetch_records(bank, **filters)
    pks: set[int] = set()
    for row in rows:
        record = row["record"]
        if imported_route(str(row["route_key"])) is not None:
            continue
        if isinstance(record.get("experiment_id"), int):
            pks.add(record["experiment_id"])
        if isinstance(record.get("experiment_ids"), list):
            pks.update(int(p) for p in record["experiment_ids"])
    names = experiment_names(bank, pks)
    return [bare_record(row, names) for row in rows]


@dataclass
class ImportSummary:
    """What an import did: records read, stored, already in the bank, attached to experiments."""

    read: int = 0
    stored: int = 0
    already_stored: int = 0
    rerouted: int = 0
    attached: int = 0
    warnings: int = 0
    record_ids: list[int] = field(default_factory=list)
    routes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record_route(record: Mapping[str, Any], rules: Any = None) -> tuple[str, str, str]:
    """The (category, direction, parameter) a record is about: its own nrr-stats fields when it
    has them, else the parser's reading of its attempted route (the last round's, at depth N)."""
    category, direction = record.get("category"), record.get("direction")
    parameter = record.get("parameter", "")
    if (
        isinstance(category, str)
        and _CATEGORY_NAME.match(category)
        and direction in DIRECTIONS
        and isinstance(parameter, str)
    ):
        return category, str(direction), parameter
    from nrr_stats.parser.parse import parse_description

    route = record.get("attempted_route")
    rounds = record.get("rounds_summary")
    if not isinstance(route, str) and isinstance(rounds, list) and rounds:
        last = rounds[-1]
        route = last.get("attempted_route") if isinstance(last, Mapping) else None
    if not isinstance(route, str) or not route.strip():
        return "other", "other", ""
    parsed = parse_description(route, rules=rules)
    return parsed.category, parsed.direction, parsed.parameter or ""


def named_experiment(bank: Bank, record: Mapping[str, Any]) -> int | None:
    """The bank id of the experiment a record names (its last one at depth N), if it is here."""
    task = record.get("task_id")
    named = record.get("experiment")
    if isinstance(record.get("experiments"), list) and record["experiments"]:
        named = record["experiments"][-1]
    if isinstance(task, bool) or not isinstance(task, str | int) or named is None:
        return None
    if isinstance(named, bool) or not isinstance(named, str | int):
        return None
    return find_named_experiment(bank, str(task), str(named))


def import_records(
    bank: Bank,
    items: Sequence[RecordItem],
    *,
    weights: WeightTable | None = None,
    route: tuple[str, str, str] | None = None,
) -> ImportSummary:
    """Store NK records into the bank in one transaction; nothing is stored if one is invalid.

    A record is judged as `nrr validate` judges it (NK's rules, at the depth it declares); one
    already imported (same content) is not stored again. Each is put on its route (`route`, or
    the record's own, see `record_route`) and on the experiment it names when the bank holds
    it; its evidence weight comes from `weights` (default: the built-in table). With `route`,
    records imported before are moved onto it.
    """
    table = weights or load_weights()
    bad = [(item, check_record(item.record)) for item in items]
    bad = [(item, checked) for item, checked in bad if not checked.valid]
    if bad:
        item, checked = bad[0]
        more = f" (and {len(bad) - 1} more invalid record(s))" if len(bad) > 1 else ""
        raise NrrInputError(
            f"record {item.number}: invalid NK record: {'; '.join(checked.errors)}{more};"
            " nothing imported",
            path=item.path,
            line=item.line,
        )
    summary = ImportSummary(read=len(items))
    with bank.transaction():
        seen = imported_digests(bank)
        for item in items:
            record = item.record
            digest = content_hash(record)
            if digest in seen:
                summary.already_stored += 1
                if route is not None:  # an explicit --route moves a record imported before
                    summary.rerouted += reroute_imported(bank, digest, imported_key(*route, digest))
                continue
            seen.add(digest)
            category, direction, parameter = route or record_route(record)
            experiment_pk = named_experiment(bank, record)
            source = record.get("source")
            record_id = save_record(
                bank,
                record,
                experiment_pk=experiment_pk,
                key=imported_key(category, direction, parameter, digest),
                note=f"imported from {item.where}"[:500],
                source=source if isinstance(source, str) and source else IMPORTED_SOURCE,
                evidence_weight=table.weight(record["failure"]),
            )
            if record_id is None:  # same content under another route: already stored
                summary.already_stored += 1
                continue
            summary.stored += 1
            summary.record_ids.append(record_id)
            summary.attached += experiment_pk is not None
            name = f"{category}/{direction}" + (f"/{parameter}" if parameter else "")
            summary.routes[name] = summary.routes.get(name, 0) + 1
    return summary


def reference_table(items: Iterable[RecordItem]) -> list[dict[str, Any]]:
    """Per record: the NK reference validator's verdict and nrr-stats', side by side."""
    rows = []
    for item in items:
        checked = check_record(item.record)
        reference = validate_nk(item.record, record_depth(item.record))
        rows.append(
            {
                "where": item.where,
                "depth": record_depth(item.record),
                "nk_valid": not reference,
                "nrr_valid": checked.valid,
                "nrr_warnings": len(checked.warnings),
            }
        )
    return rows
