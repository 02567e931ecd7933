"""The negative-knowledge (NK) record: its closed vocabularies, caps and `validate`.

The shape is the NK paper's (hch-wang/Negative_Knowledge): depth-1 records describe one failed
attempt, depth-N records synthesise N failed rounds of one route. nrr-stats adds the fields in
NRR_FIELDS; a record without any of them is a plain NK paper record and validates too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nrr_stats.taxonomy import DIRECTIONS

LAYERS: tuple[str, ...] = ("implementation_failure", "communication_failure", "method_failure")
SCOPES: tuple[str, ...] = ("local_failure", "regime_bound_failure", "general_failure")
DEGREES: tuple[str, ...] = (
    "contradicted",
    "partial",
    "inconclusive",
    "unstable",
    "artifact_driven",
    "overclaimed",
)
ACTIONS: tuple[str, ...] = ("retry", "change_method", "narrow_claim", "abandon_route")
RISKS: tuple[str, ...] = ("low_risk_omission", "medium_risk_drift", "high_risk_false_progress")

FAILURE_VOCABULARY: dict[str, tuple[str, ...]] = {
    "layer": LAYERS,
    "scope": SCOPES,
    "degree": DEGREES,
    "recommended_action": ACTIONS,
    "risk": RISKS,
}

# The NK paper's length guidance (characters): its schema description and curator prompts ask
# for these, its validator does not enforce them, and its own published records exceed them. So
# `check_record` reports a longer text as a warning; `validate` (what nrr-stats' own curators
# must keep to) counts it as a violation. The deep-curation prompt allows 400 characters for
# `recommended_alternative`.
CAPS: dict[str, int] = {
    "rationale": 300,
    "recommended_alternative": 300,
    "synthesised_diagnosis": 400,
}
DEEP_ALTERNATIVE_CAP = 400
ROUTE_TEXT_CAP = 200  # attempted_route and observation

BASE_FIELDS: tuple[str, ...] = (
    "task_id",
    "attempted_route",
    "observation",
    "failure",
    "rationale",
    "recommended_alternative",
)
DEEP_FIELDS: tuple[str, ...] = (
    "depth",
    "rounds_summary",
    "ruled_out_routes",
    "synthesised_diagnosis",
)
NRR_FIELDS: tuple[str, ...] = (
    "experiment_id",
    "category",
    "direction",
    "parameter",
    "source",
    "evidence_weight",
)

_CATEGORY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SOURCE = re.compile(r"^(rules|llm:[A-Za-z0-9._:@/-]+)$")


def route_text_key(text: str) -> str:
    """A route's text reduced to lowercase words, so trivial spelling differences compare equal."""
    return " ".join(re.findall(r"[a-z0-9]+(?:\.[a-z0-9]+)*", text.casefold()))


# The NK reference implementation's names for the same schema, for a user of that project.
SCHEMA_BASE_FIELDS = BASE_FIELDS
SCHEMA_DEEP_EXTRA = DEEP_FIELDS
FAILURE_SUBFIELDS: tuple[str, ...] = tuple(FAILURE_VOCABULARY)
RECOMMENDED_ACTIONS = ACTIONS


def validate_nk(record: Any, depth: int = 1) -> list[str]:
    """The NK reference validator's verdict on `record` at `depth`: its violations, [] when valid.

    Same rules as hch-wang/Negative_Knowledge's `validate_nk`: depth 1 requires the six base
    fields; depth >= 2 drops the top-level attempted_route and observation and requires `depth`
    (equal to `depth`), `rounds_summary` (`depth` objects with attempted_route and observation),
    `ruled_out_routes` (a list of at least two) and `synthesised_diagnosis`; the failure block's
    five fields must come from the closed vocabularies. Extra keys anywhere are allowed, text
    types and lengths are not checked. (Where the reference would crash, on a record that is
    not an object, this returns one violation instead.)
    """
    if not isinstance(record, Mapping):
        return [f"record is not a dict ({type(record).__name__})"]
    required = (
        BASE_FIELDS
        if depth == 1
        else tuple(name for name in BASE_FIELDS if name not in ("attempted_route", "observation"))
    )
    issues = [f"missing base field: {name}" for name in required if name not in record]
    failure = record.get("failure", {})
    if isinstance(failure, Mapping):
        issues += [f"failure.{name} missing" for name in FAILURE_VOCABULARY if name not in failure]
        for name, vocabulary in FAILURE_VOCABULARY.items():
            if failure.get(name) not in vocabulary:
                issues.append(f"failure.{name} not in {vocabulary}: {failure.get(name)!r}")
    else:
        issues.append("failure block is not a dict")
    if depth >= 2:
        issues += [f"missing deep field: {name}" for name in DEEP_FIELDS if name not in record]
        if record.get("depth") != depth:
            issues.append(f"depth field {record.get('depth')!r} != expected {depth}")
        rounds = record.get("rounds_summary")
        if not isinstance(rounds, list) or len(rounds) != depth:
            issues.append(f"rounds_summary should be a list of {depth} entries")
        else:
            for index, entry in enumerate(rounds):
                if not isinstance(entry, Mapping):
                    issues.append(f"rounds_summary[{index}] not a dict")
                    continue
                issues += [
                    f"rounds_summary[{index}].{name} missing"
                    for name in ("attempted_route", "observation")
                    if name not in entry
                ]
        routes = record.get("ruled_out_routes")
        if not isinstance(routes, list) or len(routes) < 2:
            issues.append("ruled_out_routes should be a list of >= 2 entries")
    return issues


def record_depth(record: Any) -> int:
    """The depth a record declares (1 when it declares none or an unusable one)."""
    declared = record.get("depth", 1) if isinstance(record, Mapping) else 1
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        return 1
    return declared


@dataclass(frozen=True)
class RecordCheck:
    """One record's verdict: errors (structure, vocabulary) make it invalid; warnings (NK's
    length guidance, empty texts, a recommended alternative among the ruled-out routes) do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def check_record(record: Any, *, depth: int | None = None) -> RecordCheck:
    """Check an NK record (nrr-stats' or the NK paper's own) as the NK reference does, and more.

    Errors are everything the reference validator rejects, at the depth the record declares,
    plus what no reader can use: a text field that is not a string, a `depth` that is not an
    integer >= 1, a depth other than `depth` when it is given, and malformed nrr-stats fields
    on a record nrr-stats wrote (one with a `source` of rules or llm:<model>). Extra keys are
    allowed, inside `failure` too. NK's length guidance and the rest are warnings.
    """
    if not isinstance(record, Mapping):
        return RecordCheck(errors=[f"record must be a JSON object, not {type(record).__name__}"])
    errors: list[str] = []
    warnings: list[str] = []
    declared = record.get("depth", 1)
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        errors.append(f"depth must be an integer >= 1, not {declared!r}")
    if depth is not None and record_depth(record) != depth:
        errors.append(f"depth is {record_depth(record)}, expected {depth}")
    declared = record_depth(record)
    deep = declared >= 2

    required = [f for f in BASE_FIELDS if not (deep and f in ("attempted_route", "observation"))]
    errors += [f"missing field: {name}" for name in required if name not in record]
    texts = ["attempted_route", "observation", "rationale", "recommended_alternative"]
    if deep:
        texts.append("synthesised_diagnosis")
        errors += [f"missing field: {name}" for name in DEEP_FIELDS if name not in record]
    for name in texts:
        if name in record:
            _text(record[name], name, errors, warnings)
    if "task_id" in record and (
        isinstance(record["task_id"], bool) or not isinstance(record["task_id"], str | int)
    ):
        errors.append("task_id must be a string")
    caps = {**CAPS, "attempted_route": ROUTE_TEXT_CAP, "observation": ROUTE_TEXT_CAP}
    if deep:
        caps["recommended_alternative"] = DEEP_ALTERNATIVE_CAP
    for name, cap in caps.items():
        value = record.get(name)
        if isinstance(value, str) and len(value) > cap:
            warnings.append(f"{name} is {len(value)} characters, NK's guidance is at most {cap}")

    if "failure" in record:
        errors += _failure(record["failure"])
    if deep:
        _rounds(record, declared, errors, warnings)
    if "ruled_out_routes" in record:
        # At depth 1 the reference ignores the key, so a malformed list is only a warning there.
        _ruled_out(record, errors if deep else warnings, warnings)
    if _written_by_nrr(record):
        errors += _nrr_fields(record)
    return RecordCheck(errors, warnings)


def validate(record: Any, *, depth: int | None = None) -> list[str]:
    """The violations of a record nrr-stats writes (empty when valid): `check_record`'s errors
    and its warnings, so nrr-stats' own curators keep to NK's length guidance; `depth` forces
    the expected depth. A record with one nrr-stats field must carry them all."""
    checked = check_record(record, depth=depth)
    problems = checked.errors + checked.warnings
    if isinstance(record, Mapping) and any(name in record for name in NRR_FIELDS):
        problems += [
            f"missing field: {name}"
            for name in NRR_FIELDS
            if name not in record and name != "experiment_id"
        ]
        if not _written_by_nrr(record):
            problems += _nrr_fields(record)
    return problems


def _written_by_nrr(record: Mapping[str, Any]) -> bool:
    source = record.get("source")
    return isinstance(source, str) and (source == "rules" or source.startswith("llm:"))


def _text(value: Any, name: str, errors: list[str], warnings: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"{name} must be a string")
    elif not value.strip():
        warnings.append(f"{name} is empty")


def _failure(failure: Any) -> list[str]:
    if not isinstance(failure, Mapping):
        return ["failure must be an object"]
    problems = []
    for name, vocabulary in FAILURE_VOCABULARY.items():
        if name not in failure:
            problems.append(f"missing field: failure.{name}")
        elif not isinstance(failure[name], str) or failure[name] not in vocabulary:
            problems.append(
                f"failure.{name} {failure[name]!r} is not one of {', '.join(vocabulary)}"
            )
    return problems


def _rounds(record: Mapping[str, Any], depth: int, errors: list[str], warnings: list[str]) -> None:
    if "rounds_summary" not in record:
        return
    rounds = record["rounds_summary"]
    if not isinstance(rounds, list) or len(rounds) != depth:
        errors.append(f"rounds_summary must list {depth} rounds (one per round of depth {depth})")
        return
    for index, entry in enumerate(rounds):
        if not isinstance(entry, Mapping):
            errors.append(f"rounds_summary[{index}] must be an object")
            continue
        for name in ("attempted_route", "observation"):
            if name not in entry:
                errors.append(f"missing field: rounds_summary[{index}].{name}")
            else:
                _text(entry[name], f"rounds_summary[{index}].{name}", errors, warnings)


def _ruled_out(record: Mapping[str, Any], errors: list[str], warnings: list[str]) -> None:
    routes = record["ruled_out_routes"]
    if not isinstance(routes, list) or not all(isinstance(r, str) and r.strip() for r in routes):
        errors.append("ruled_out_routes must be a list of non-empty strings")
        return
    if len(routes) < 2:
        errors.append(f"ruled_out_routes lists {len(routes)} route(s), at least 2 required")
        return
    alternative = record.get("recommended_alternative")
    if isinstance(alternative, str):
        ruled_out = {route_text_key(r) for r in routes}
        if route_text_key(alternative) in ruled_out:
            warnings.append("recommended_alternative is one of the ruled_out_routes")


def _nrr_fields(record: Mapping[str, Any]) -> list[str]:
    """The nrr-stats fields a record holds, each checked (none is required here)."""
    problems = []
    value = record.get("experiment_id")
    if "experiment_id" in record and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        problems.append(f"experiment_id must be a positive integer (bank id), not {value!r}")
    category = record.get("category")
    if "category" in record and not (isinstance(category, str) and _CATEGORY_NAME.match(category)):
        problems.append(f"category {category!r} is not a snake_case category name")
    if "direction" in record and (
        not isinstance(record["direction"], str) or record["direction"] not in DIRECTIONS
    ):
        problems.append(f"direction {record['direction']!r} is not one of {', '.join(DIRECTIONS)}")
    if "parameter" in record and not isinstance(record["parameter"], str):
        problems.append("parameter must be a string (empty when none)")
    source = record.get("source")
    if "source" in record and not (isinstance(source, str) and _SOURCE.match(source)):
        problems.append(f"source {source!r} must be 'rules' or 'llm:<model>'")
    weight = record.get("evidence_weight")
    if "evidence_weight" in record and (
        isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 < weight <= 1.0
    ):
        problems.append(f"evidence_weight {weight!r} must be a number in (0, 1]")
    return problems


def model_fields_schema(depth: int) -> dict[str, Any]:
    """The JSON schema of what a model writes (the paper's fields), for a depth-1 or depth-N record."""
    text = {"type": "string", "minLength": 1}
    failure = {
        "type": "object",
        "properties": {
            name: {"type": "string", "enum": list(v)} for name, v in FAILURE_VOCABULARY.items()
        },
        "required": list(FAILURE_VOCABULARY),
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "task_id": {"type": "string"},
        "attempted_route": {**text, "maxLength": ROUTE_TEXT_CAP},
        "observation": {**text, "maxLength": ROUTE_TEXT_CAP},
        "failure": failure,
        "rationale": {
            **text,
            "maxLength": CAPS["rationale"],
            "description": "mechanism-level explanation",
        },
        "recommended_alternative": {
            **text,
            "maxLength": DEEP_ALTERNATIVE_CAP if depth >= 2 else CAPS["recommended_alternative"],
            "description": "one specific, concrete next step; never one of the ruled-out routes",
        },
    }
    required = list(BASE_FIELDS)
    if depth >= 2:
        route = {
            "type": "object",
            "properties": {"attempted_route": text, "observation": text},
            "required": ["attempted_route", "observation"],
        }
        properties.update(
            {
                "depth": {"type": "integer", "enum": [depth]},
                "rounds_summary": {
                    "type": "array",
                    "items": route,
                    "minItems": depth,
                    "maxItems": depth,
                },
                "ruled_out_routes": {"type": "array", "items": text, "minItems": 2},
                "synthesised_diagnosis": {**text, "maxLength": CAPS["synthesised_diagnosis"]},
            }
        )
        required += list(DEEP_FIELDS)
    return {"type": "object", "properties": properties, "required": required}
