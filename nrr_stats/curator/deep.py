"""Depth-N records: one synthesis over the N >= 2 failed rounds of one route in one session.

A route is a cell and parameter (category, direction, parameter) that names one thing
(`identifiable_route`). The record lists each round, rules out every attempted route, gives a
diagnosis across rounds, and recommends an alternative that the session has not ruled out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nrr_stats.curator.offline import (
    FAILED_STATUSES,
    FailureContext,
    clip,
    curate_offline,
    identifiable_route,
)
from nrr_stats.curator.schema import ROUTE_TEXT_CAP, route_text_key

MIN_DEPTH = 2
_OPPOSITE = {"increase": "decrease", "decrease": "increase", "add": "remove", "remove": "add"}


@dataclass(frozen=True)
class Route:
    """One route's failed rounds (experiment rows in log order) and its kept count in the session."""

    session_id: int
    category: str
    direction: str
    parameter: str
    failures: tuple[Mapping[str, Any], ...]
    kept: int

    @property
    def thing(self) -> str:
        return self.parameter or self.category


def failed_routes(
    experiments: Sequence[Mapping[str, Any]], min_depth: int = MIN_DEPTH
) -> list[Route]:
    """Routes of one session's experiments (in log order) that failed at least `min_depth` times."""
    failures: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    kept: Counter[tuple[str, str, str]] = Counter()
    for row in experiments:
        key = (
            str(row.get("category") or ""),
            str(row.get("direction") or ""),
            str(row.get("parameter") or ""),
        )
        if not identifiable_route(*key):
            continue
        if row.get("status") == "keep":
            kept[key] += 1
        elif row.get("status") in FAILED_STATUSES:
            failures.setdefault(key, []).append(row)
    return [
        Route(int(rows[0]["session_id"]), *key, failures=tuple(rows), kept=kept[key])
        for key, rows in failures.items()
        if len(rows) >= min_depth
    ]


def _ruled_out_in_session(routes: Sequence[Route]) -> set[tuple[str, str, str]]:
    return {(r.category, r.direction, r.parameter) for r in routes if not r.kept}


def curate_deep(
    route: Route,
    contexts: Sequence[FailureContext],
    all_routes: Sequence[Route],
    kept_categories: Mapping[str, int],
) -> dict[str, Any]:
    """The depth-N record (the paper's fields) for one route, from its rounds' contexts."""
    rounds = [curate_offline(context) for context in contexts]
    depth = len(rounds)
    outcomes = Counter(str(row.get("outcome") or row.get("status")) for row in route.failures)
    degrees = Counter(r["failure"]["degree"] for r in rounds)
    layers = Counter(r["failure"]["layer"] for r in rounds)
    method = outcomes["regression"] + outcomes["no_improvement"]
    failure = _synthesised_failure(route, outcomes, degrees, layers, method, depth)
    ruled_out = [
        clip(
            f"{row.get('description') or route.thing} [{row.get('experiment_id')}]", ROUTE_TEXT_CAP
        )
        for row in route.failures
    ]
    alternative = _alternative(route, all_routes, kept_categories, ruled_out)
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in outcomes.most_common())
    kept_note = (
        f"the route was kept {route.kept} time(s) elsewhere in this log, so it fails at these settings only"
        if route.kept
        else "it was never kept in this log"
    )
    diagnosis = (
        f"{depth} attempts to {route.direction if route.direction != 'other' else 'change'} {route.thing} failed ({counts}); {kept_note}. "
        + _reading(failure)
    )
    return {
        "task_id": contexts[0].task_id if contexts else "unknown",
        "attempted_route": clip(
            f"{route.direction} {route.thing} [{route.category}/{route.direction}/{route.parameter}]",
            ROUTE_TEXT_CAP,
        ),
        "observation": clip(f"{depth} failed rounds: {counts}", ROUTE_TEXT_CAP),
        "failure": failure,
        "rationale": clip(f"Across {depth} rounds: {counts}. " + _reading(failure), 300),
        "recommended_alternative": clip(alternative, 300),
        "depth": depth,
        "rounds_summary": [
            {
                "round": i + 1,
                "attempted_route": r["attempted_route"],
                "observation": r["observation"],
            }
            for i, r in enumerate(rounds)
        ],
        "ruled_out_routes": ruled_out,
        "synthesised_diagnosis": clip(diagnosis, 400),
    }


def _synthesised_failure(
    route: Route,
    outcomes: Counter[str],
    degrees: Counter[str],
    layers: Counter[str],
    method: int,
    depth: int,
) -> dict[str, str]:
    if method >= 2:
        return {
            "layer": "method_failure",
            "scope": "regime_bound_failure" if route.kept else "general_failure",
            "degree": "contradicted" if outcomes["regression"] else "partial",
            "recommended_action": "narrow_claim" if route.kept else "abandon_route",
            "risk": "medium_risk_drift",
        }
    if degrees["unstable"] and degrees["unstable"] + method >= 2:
        return {
            "layer": "method_failure",
            "scope": "regime_bound_failure",
            "degree": "unstable",
            "recommended_action": "narrow_claim",
            "risk": "medium_risk_drift",
        }
    if outcomes["marginal"] * 2 >= depth:
        return {
            "layer": "method_failure",
            "scope": "regime_bound_failure",
            "degree": "inconclusive",
            "recommended_action": "change_method",
            "risk": "high_risk_false_progress",
        }
    if layers["method_failure"] * 2 < depth:
        artifact = degrees["artifact_driven"] * 2 >= depth
        return {
            "layer": "communication_failure"
            if layers["communication_failure"] * 2 > depth
            else "implementation_failure",
            "scope": "local_failure",
            "degree": "artifact_driven" if artifact else "inconclusive",
            "recommended_action": "change_method",
            "risk": "low_risk_omission",
        }
    return {
        "layer": "method_failure",
        "scope": "local_failure",
        "degree": "inconclusive",
        "recommended_action": "change_method",
        "risk": "medium_risk_drift",
    }


def _reading(failure: Mapping[str, str]) -> str:
    layer, scope, degree = failure["layer"], failure["scope"], failure["degree"]
    if layer != "method_failure":
        return "The rounds failed in the implementation or the harness, so they say little about the idea."
    if degree == "inconclusive":
        return "The effects stay within noise or unknown: no round showed a gain."
    if degree == "unstable":
        return "Training diverged in some rounds: the route is unstable at these settings."
    if scope == "general_failure":
        return "Clean runs kept losing to the best kept configuration: treat the route as a dead end here."
    return "Clean runs lost to the best kept configuration at these settings."


def _alternative(
    route: Route,
    all_routes: Sequence[Route],
    kept_categories: Mapping[str, int],
    ruled_out: Sequence[str],
) -> str:
    dead = _ruled_out_in_session(all_routes)
    ruled_keys = {route_text_key(text) for text in ruled_out}
    candidates = []
    opposite = _OPPOSITE.get(route.direction)
    if opposite and (route.category, opposite, route.parameter) not in dead:
        candidates.append(
            f"{opposite.capitalize()} {route.thing} from its kept value instead, one moderate step."
        )
    others = [
        c
        for c, n in sorted(kept_categories.items(), key=lambda kv: -kv[1])
        if c not in (route.category, "other", "multiple") and n > 0
    ]
    if others:
        listed = ", ".join(f"{c} ({kept_categories[c]} kept)" for c in others[:3])
        candidates.append(
            f"Leave {route.thing} at its kept value; spend the next rounds on categories that kept before: {listed}."
        )
    candidates.append(
        f"Leave {route.thing} at its kept value and change a different category of the setup."
    )
    for text in candidates:
        if route_text_key(text) not in ruled_keys:
            return text
    return candidates[-1]
