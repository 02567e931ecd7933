"""Reading proposals (description, KEY = value, diff lines) and the verdict rule."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from nrr_stats.decide import DecisionRule, decide
from nrr_stats.parser import ConfigTracker
from nrr_stats.proposal import proposal_change, read_proposal


def test_description_assignments_and_diff_lines_are_separated() -> None:
    proposal = read_proposal(
        "Try a larger matrix LR\nMATRIX_LR = 0.06\n--- a/train.py\n+++ b/train.py\n"
        "@@ -1 +1 @@\n-WARMUP_RATIO = 0.0\n+WARMUP_RATIO = 0.1\n+    x = f(y)\n"
    )
    assert proposal.description == "Try a larger matrix LR"
    assert proposal.new_values == {"MATRIX_LR": "0.06", "WARMUP_RATIO": "0.1"}
    assert proposal.old_values == {"WARMUP_RATIO": "0.0"}


def test_assignment_alone_is_compared_with_the_kept_config() -> None:
    tracker = ConfigTracker.from_state({"current": {"EMBEDDING_LR": "0.6"}})
    change = proposal_change(read_proposal("EMBEDDING_LR = 0.8"), tracker)
    assert (change.category, change.direction, change.parameter) == (
        "learning_rate",
        "increase",
        "EMBEDDING_LR",
    )
    assert (change.from_value, change.to_value) == ("0.6", "0.8")


@given(st.text(max_size=300))
def test_any_text_reads_without_error(text: str) -> None:
    proposal = read_proposal(text)
    assert isinstance(proposal.description, str)


@dataclass
class Evidence:
    p_keep: float
    prob_below_base: float
    base_rate: float
    p_crash: float
    n_weighted: float


unit = st.floats(0.0, 1.0)


@given(unit, unit, st.floats(0.01, 1.0), unit, st.floats(0.0, 200.0))
def test_avoid_needs_a_low_probability_on_the_sessions_own_rows(p_keep, below, base, crash, n):
    """Avoid (without a repeat) only below the floor, and never on a prior alone."""
    rule = DecisionRule()
    verdict, reason = decide(Evidence(p_keep, below, base, crash, n), rule=rule)
    assert reason
    if verdict == "avoid":
        assert p_keep < rule.avoid_below and n >= rule.min_history


@given(unit, unit, st.floats(0.01, 1.0), unit, st.floats(0.0, 200.0))
def test_an_exact_repeat_is_never_proceed_and_says_so(p_keep, below, base, crash, n) -> None:
    verdict, reason = decide(Evidence(p_keep, below, base, crash, n), exact_repeat=True)
    assert verdict in ("caution", "avoid") and "same change already failed" in reason
    assert verdict == decide(Evidence(p_keep, below, base, crash, n))[0] or verdict == "caution"


@given(unit, unit, st.floats(0.01, 1.0), st.floats(0.0, 0.3), st.floats(0.0, 200.0))
def test_a_lower_probability_never_softens_the_verdict(p_keep, lower, base, crash, n) -> None:
    order = {"proceed": 0, "caution": 1, "avoid": 2}
    low = min(p_keep, lower)
    higher = decide(Evidence(p_keep, 0.5, base, crash, n))[0]
    lowered = decide(Evidence(low, 0.5, base, crash, n))[0]
    assert order[lowered] >= order[higher]


def test_the_reason_tells_the_proposals_own_evidence_from_a_plateaued_session() -> None:
    own = decide(Evidence(0.01, 0.9, 0.20, 0.0, 30))
    plateau = decide(Evidence(0.01, 0.9, 0.012, 0.0, 30))
    assert own[0] == plateau[0] == "avoid"
    assert "own evidence" in own[1] and "propose something else" in own[1]
    assert "plateaued" in plateau[1] and "change strategy" in plateau[1]


def test_diff_old_values_complete_the_kept_config() -> None:
    change = proposal_change(read_proposal("-WARMUP_RATIO = 0.0\n+WARMUP_RATIO = 0.1\n"))
    assert (change.direction, change.from_value, change.to_value) == ("increase", "0.0", "0.1")
