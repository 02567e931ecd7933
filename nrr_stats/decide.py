"""proceed / caution / avoid from the calibrated P(keep), with the reason.

The rule (README.md, "How the verdict is made"; the floor is chosen on the cross-validated
trade-off curve of benchmarks/similarity_evidence_cv.json, avoid recall against keep-block rate):

- **avoid** when P(keep) is below `avoid_below` and the session has at least `min_history`
  earlier experiments (a prior alone never says avoid);
- **caution** on an exact repeat of a failure under the same kept configuration, when P(keep)
  is in the band [avoid_below, caution_below), the crash probability is high, or a near-repeat
  of a failure exists. (Avoiding every exact repeat as well cost keep-blocks: on the CV, exact
  repeat + floor reached avoid recall 0.353 at keep-block 0.032, the floor alone 0.381 at
  0.029; benchmarks/similarity_evidence_verdicts.json.)
- **proceed** otherwise.

The reason says why the probability is low: this proposal's own evidence (it resembles earlier
failures, or repeats one: propose something else) or the session as a whole (its discounted
keep rate has plateaued: change strategy, not only this proposal).

An adopted NK record for exactly this route whose recommended action is `abandon_route` or
`change_method` makes the verdict at least caution (`heed_adopted_records`); a rejected one
does not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

VERDICT_EXIT_CODES = {"proceed": 0, "caution": 1, "avoid": 2}

# P(keep) at most this share of the session's own rate: the proposal's evidence, not the session's
OWN_EVIDENCE_RATIO = 0.75


class CellEvidence(Protocol):
    p_keep: float
    base_rate: float
    p_crash: float
    n_weighted: float


@dataclass(frozen=True)
class DecisionRule:
    """Thresholds of the verdict; the defaults are the documented, cross-validated rule."""

    # the highest floor whose pooled out-of-fold keep-block rate is <= 0.03 (CV: recall 0.364 at
    # keep-block 0.024; 0.06 would block 0.033); benchmarks/similarity_evidence_cv.json
    avoid_below: float = 0.05
    caution_below: float = 0.10  # twice the floor
    min_history: float = 3.0
    caution_crash: float = 0.4


def decide(
    evidence: CellEvidence,
    *,
    exact_repeat: bool = False,
    near_repeats: int = 0,
    rule: DecisionRule = DecisionRule(),
) -> tuple[str, str]:
    """Return (verdict, reason) for one proposal's evidence.

    `evidence` may carry `session_rate` (the session's discounted keep rate before this proposal's
    own evidence), `history_rows` (earlier experiments in the session) and `max_fail_similarity`;
    without them the cell's base rate and weighted count stand in.
    """
    p = float(evidence.p_keep)
    session = float(getattr(evidence, "session_rate", evidence.base_rate))
    history = float(getattr(evidence, "history_rows", evidence.n_weighted))
    # The reason quotes the answer's own `base_rate` (what `nrr check` and `nrr patterns` print);
    # `session` (the evidence model's shrunk discounted rate) only tells why P(keep) is low.
    summary = f"P(keep)={p:.3f} vs the session's base rate {float(evidence.base_rate):.3f}"
    similar = getattr(evidence, "max_fail_similarity", None)
    if similar is not None and similar > 0:
        summary += f"; closest earlier failure at similarity {similar:.2f}"
    summary += f"; {history:.0f} earlier experiments"
    repeat = (
        "this proposal's own evidence: the same change already failed under the same kept"
        " configuration; propose something else. "
    )
    if p < rule.avoid_below and history >= rule.min_history:
        return "avoid", (repeat if exact_repeat else _why_low(p, session)) + summary
    if exact_repeat:
        return "caution", repeat + summary
    if p < rule.caution_below:
        return "caution", "P(keep) is low: " + _why_low(p, session) + summary
    if evidence.p_crash >= rule.caution_crash:
        return "caution", f"high crash risk (P(crash)={evidence.p_crash:.2f}); " + summary
    if near_repeats:
        return "caution", f"{near_repeats} similar change(s) already failed; " + summary
    return "proceed", "no strong evidence against this change: " + summary


def _why_low(p: float, session: float) -> str:
    if p <= OWN_EVIDENCE_RATIO * session:
        return (
            "this proposal's own evidence: it resembles earlier failures of this session more"
            " than its keeps; propose something else. "
        )
    return (
        "the session as a whole has plateaued: its recent experiments are rarely kept; change"
        " strategy, not only this proposal. "
    )


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
