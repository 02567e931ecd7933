"""proceed / caution / avoid from a cell's posterior, with the reasons.

The rule (documented in README.md, "How the verdict is made"):

- **avoid** only on strong evidence: the same change already failed under the same kept
  configuration (an exact repeat), or the cell's keep rate is very likely far below the
  session's base rate: P(rate < base) >= `avoid_prob_below` AND the posterior predictive
  keep probability is at most `avoid_ratio` x base, with at least `min_evidence` weighted
  experiments in the cell itself (a prior alone never says avoid);
- **caution** when the rate is probably below base (P >= `caution_prob_below`), the
  crash probability is high, or a near-repeat of a failure exists;
- **proceed** otherwise.

An adopted NK record for exactly this route whose recommended action is `abandon_route` or
`change_method` makes the verdict at least caution (`heed_adopted_records`); a rejected one
does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

VERDICT_EXIT_CODES = {"proceed": 0, "caution": 1, "avoid": 2}


class CellEvidence(Protocol):
    p_keep: float
    prob_below_base: float
    base_rate: float
    p_crash: float
    n_weighted: float


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the verdict; the defaults are the documented rule."""

    avoid_prob_below: float = 0.95
    avoid_ratio: float = 0.6
    min_evidence: float = 3.0
    caution_prob_below: float = 0.75
    caution_crash: float = 0.4


def decide(
    evidence: CellEvidence,
    *,
    exact_repeat: bool = False,
    near_repeats: int = 0,
    rule: DecisionRule = DecisionRule(),
) -> tuple[str, str]:
    """Return (verdict, reason) for one proposal's cell evidence."""
    below = evidence.prob_below_base
    base = evidence.base_rate
    summary = (
        f"P(keep)={evidence.p_keep:.2f} vs session base rate {base:.2f};"
        f" P(cell rate < base)={below:.2f} on {evidence.n_weighted:.1f} weighted experiments"
    )
    if exact_repeat:
        return (
            "avoid",
            "the same change already failed under the same kept configuration; " + summary,
        )
    strong = (
        below >= rule.avoid_prob_below
        and evidence.p_keep <= rule.avoid_ratio * base
        and evidence.n_weighted >= rule.min_evidence
    )
    if strong:
        return (
            "avoid",
            "this kind of change is very likely far below the session's keep rate: " + summary,
        )
    if below >= rule.caution_prob_below:
        return (
            "caution",
            "this kind of change is probably below the session's keep rate: " + summary,
        )
    if evidence.p_crash >= rule.caution_crash:
        return "caution", f"high crash risk (P(crash)={evidence.p_crash:.2f}); " + summary
    if near_repeats:
        return "caution", f"{near_repeats} similar change(s) already failed; " + summary
    return "proceed", "no strong evidence against this change: " + summary


def heed_adopted_records(
    verdict: str,
    reason: str,
    adopted: Sequence[Mapping[str, Any]],
    rejected: Sequence[Mapping[str, Any]] = (),
) -> tuple[str, str]:
    """The verdict at least caution when the agent adopted a record saying to abandon this
    route or change method (its id and rationale join the reason); rejected ones are named
    with the rejection's reason and change nothing."""
    notes = [
        f"adopted NK record {r['id']} says {r['action']}: {r['rationale']}" for r in adopted
    ] + [
        f"NK record {r['id']} ({r['action']}) was rejected by {r['decided_by']}:"
        f" {r['decision_reason']}"
        for r in rejected
    ]
    if not notes:
        return verdict, reason
    if adopted and verdict == "proceed":
        return "caution", "; ".join(notes) + "; " + reason
    return verdict, reason + "; " + "; ".join(notes)
