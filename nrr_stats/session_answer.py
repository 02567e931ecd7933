"""The answer for one session from the population prior: the engine `nrr backtest` validates.

A bank without a fit of its own answers from the shipped population prior. Then `nrr check`
runs exactly the engine the backtest scores (benchmarks/ablation.md): the session's offset
integrated on a grid per prior draw, its rows weighted by the session dynamics (evidence
discounted as the kept configuration moves, plateau term) and by their curated evidence
weights. Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nrr_stats.parser import ParsedChange

PREDICTED_STATUSES = ("keep", "discard", "crash")


@dataclass(frozen=True)
class SessionAnswer:
    """The grid engine's answer with the counts `nrr check` reports beside it."""

    p_keep: float
    mean: float
    interval: tuple[float, float]
    p_crash: float
    prob_below_base: float
    base_rate: float
    n: int  # this session's experiments in the cell
    k: int  # their keeps
    n_weighted: float
    level: str
    source: str
    stale: bool
    ess_share: float
    n_new: int  # the session's experiments, all new evidence for the prior


def _stored_weights(history: Sequence[Mapping[str, Any]]) -> list[float]:
    return [float(row.get("evidence_weight") or 1.0) for row in history]


def session_engine(prior: Any, session_key: str) -> Any:
    """The backtest's engine for one session under `prior`, weighting rows by their stored
    curated weights. Keep it between checks of the session: it updates only changed leaves."""
    from nrr_stats.models.engine import SessionEngine

    return SessionEngine(prior, session_key, evidence_weights=_stored_weights)


def session_answers(
    prior: Any,
    session_key: str,
    rows: Sequence[Mapping[str, Any]],
    change: ParsedChange,
    other_cells: Sequence[tuple[str, str]] = (),
    engine: Any = None,
) -> tuple[SessionAnswer, list[tuple[tuple[str, str], SessionAnswer]]]:
    """Answer `change` for the session whose bank rows are `rows` (their curated weights
    included), and the mean rate of each of `other_cells` under the same session update.

    `engine` is a `session_engine(prior, session_key)` kept from an earlier call, or None."""
    history = [row for row in rows if row["status"] in PREDICTED_STATUSES]
    engine = engine if engine is not None else session_engine(prior, session_key)
    answer = _summary(engine.predict(history, change), history, change.category, change.direction)
    # The session's counts are now set on the grid: each further cell is one cheap answer.
    cells = [
        (
            (category, direction),
            _summary(engine.grid.answer(category, direction, ""), history, category, direction),
        )
        for category, direction in other_cells
    ]
    return answer, cells


def _summary(
    answer: Any, history: list[dict[str, Any]], category: str, direction: str
) -> SessionAnswer:
    in_cell = [
        row for row in history if (row["category"], row["direction"]) == (category, direction)
    ]
    return SessionAnswer(
        p_keep=float(answer.p_keep),
        mean=float(answer.mean),
        interval=(float(answer.interval[0]), float(answer.interval[1])),
        p_crash=float(answer.p_crash),
        prob_below_base=float(answer.prob_below_base),
        base_rate=float(answer.base_rate),
        n=len(in_cell),
        k=sum(row["status"] == "keep" for row in in_cell),
        n_weighted=float(answer.n_weighted),
        level="session on the population prior",
        source=answer.source,
        stale=bool(answer.stale),
        ess_share=float(answer.ess_share),
        n_new=len(history),
    )
