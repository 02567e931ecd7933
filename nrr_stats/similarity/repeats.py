"""Repeats: a proposal that already failed under the same kept configuration.

Exact repeat: a failed row (discard or crash) with the same category, direction and parameter
and the same target value (or, when neither parameter nor target is known, the same words),
whose kept configuration before it equals the configuration now. Near repeats: other failed
rows whose feature similarity reaches NEAR_REPEAT_SIMILARITY, or the same change under a
configuration that differs or was not recorded. A pure function: rows in, a dict out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nrr_stats.similarity.features import normalise_text, parse_number

# Cosine similarity of feature rows from which a failed row is listed as a near repeat. At
# 0.85 the blocks must nearly all agree: same cell and parameter and most of the words.
NEAR_REPEAT_SIMILARITY = 0.85
FAILED_STATUSES = ("discard", "crash")


def find_repeats(
    proposal_fields: Mapping[str, Any],
    history_rows: Iterable[Mapping[str, Any]],
    config: Mapping[str, Any] | str | None,
    *,
    near_threshold: float = NEAR_REPEAT_SIMILARITY,
) -> dict[str, Any]:
    """Failed rows the proposal repeats exactly, and those it nearly repeats.

    `proposal_fields`: category, direction, parameter, to (and optionally description).
    `history_rows`: bank rows (id, description, category, direction, parameter, to_value,
    status, outcome, config_before JSON, optional `similarity` from the kernel).
    `config`: the kept configuration now (dict or JSON), None when unknown.
    """
    current = _config(config)
    exact: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    proposal = _Change.of(proposal_fields)
    for row in history_rows:
        if str(row.get("status") or "").lower() not in FAILED_STATUSES:
            continue
        similarity = row.get("similarity")
        if proposal.is_repeated_by(row):
            relation = _config_relation(current, _config(row.get("config_before")))
            if relation == "same":
                exact.append(_summary(row, "same change under the same kept configuration"))
            else:
                near.append(_summary(row, f"same change, configuration {relation}"))
        elif similarity is not None and float(similarity) >= near_threshold:
            near.append(_summary(row, f"similarity {float(similarity):.2f} >= {near_threshold}"))
    near.sort(
        key=lambda item: (
            -(item["similarity"] if item["similarity"] is not None else -2.0),
            item["id"],
        )
    )
    return {
        "exact_repeat": bool(exact),
        "exact": exact,
        "near": near,
        "near_threshold": near_threshold,
    }


def _summary(row: Mapping[str, Any], reason: str) -> dict[str, Any]:
    similarity = row.get("similarity")
    return {
        "id": row.get("id"),
        "description": row.get("description") or "",
        "status": row.get("status"),
        "outcome": row.get("outcome"),
        "similarity": None if similarity is None else float(similarity),
        "reason": reason,
    }


@dataclass(frozen=True)
class _Change:
    """A proposal's fields as compared with rows: lowered text, numbers in one form."""

    category: str
    direction: str
    parameter: str
    target: str
    description: str

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> _Change:
        return cls(
            field_text(fields.get("category")),
            field_text(fields.get("direction")),
            field_text(fields.get("parameter")),
            _value(fields.get("to")),
            str(fields.get("description") or ""),
        )

    def is_repeated_by(self, row: Mapping[str, Any]) -> bool:
        """The row made the same change: same cell, parameter and target value (or, when
        neither parameter nor target is known, the same words)."""
        if not self.category or not self.direction:
            return False
        if (self.category, self.direction) != (
            field_text(row.get("category")),
            field_text(row.get("direction")),
        ):
            return False
        if self.parameter != field_text(row.get("parameter")) or self.target != _value(
            row.get("to_value")
        ):
            return False
        if self.parameter or self.target:
            return True
        words = normalise_text(self.description)
        return bool(words) and words == normalise_text(str(row.get("description") or ""))


def _config_relation(now: dict[str, str] | None, before: dict[str, str] | None) -> str:
    """How the kept configuration now relates to the one before a row: same, differs, ..."""
    if now is None or before is None:
        return "not recorded"
    if now == before:
        return "same"
    shared = now.keys() & before.keys()
    if any(now[key] != before[key] for key in shared):
        return "differs"
    return "partly known"


def _config(config: Mapping[str, Any] | str | None) -> dict[str, str] | None:
    if config is None:
        return None
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return None
        if not isinstance(config, dict):
            return None
    return {field_text(key): _value(value) for key, value in config.items()}


def field_text(value: Any) -> str:
    """A field as rows are compared on it: text, stripped, lowered ("" for none)."""
    return str(value or "").strip().lower()


def _value(value: Any) -> str:
    """A value compared by number when numeric ("0.02" == "2e-2"), else by lowered text."""
    text = field_text(value)
    number = parse_number(text)
    return repr(number) if number is not None else text


def under_current_config(
    history: Sequence[Mapping[str, Any]], config: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The session's rows, those after its last kept row marked as run under the config in force now.

    Only a kept row moves the configuration; a discarded row's `from` value teaches the tracker a
    value without changing it, so the partial record stored with such a row must not hide a repeat.
    """
    now = json.dumps(dict(config), sort_keys=True)
    last_keep = max((i for i, row in enumerate(history) if row["status"] == "keep"), default=-1)
    return [
        {**row, "config_before": now} if i > last_keep else dict(row)
        for i, row in enumerate(history)
    ]


def change_fields(change: Any, description: str) -> dict[str, Any]:
    """The fields of a parsed change that repeats are judged on."""
    return {
        "category": change.category,
        "direction": change.direction,
        "parameter": change.parameter,
        "to": change.to_value,
        "description": description,
    }


def repeat_flags(
    change: Any,
    description: str,
    config: Mapping[str, str],
    history: Sequence[Mapping[str, Any]],
) -> tuple[bool, int]:
    """(exact repeat, near repeats of the same change) from the session's rows alone, no kernel.

    The backtest uses this: it is what `nrr check` decides on, less text-similarity near-repeats.
    """
    found = find_repeats(
        change_fields(change, description), under_current_config(history, config), config
    )
    return found["exact_repeat"], len(found["near"])
