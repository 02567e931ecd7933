"""The engine for one session: the answer `nrr check` gives and `nrr backtest` scores.

A session's rows update a prior (the bank's own fit, else the shipped population prior) with
the session dynamics the dev ablation selected (benchmarks/ablation.md): each row's evidence is
discounted by 0.7 per configuration move since it ran (a keep), and a plateau term moves the
prior centre of the session's offset; the offset itself is integrated on a grid per prior draw
(models/session_grid.py). Without any prior the rows feed the conjugate form. Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nrr_stats.models.evidence import Evidence

# Centre of the phase term: the mean of log(1 + position) over the dev corpus's predicted rows,
# so the term averages to about zero over a session and the fitted global rate keeps its meaning.
PHASE_CENTRE = 3.95
# Centre of the plateau term: the mean of log(1 + rows since the last keep) over the same rows.
PLATEAU_CENTRE = 2.2
# The statuses a session's engine counts (a reference row, status "other", is no experiment).
COUNTED_STATUSES = ("keep", "discard", "crash")


@dataclass(frozen=True)
class Dynamics:
    """Session dynamics of the engine (models/README.md): evidence discounts and a phase term."""

    # weight of a row = keep_discount ** (configuration moves since it ran); 1 = off
    keep_discount: float = 1.0
    # weight of a row = forgetting ** (rows since it ran); 1 = off (a drifting session rate)
    forgetting: float = 1.0
    # prior centre of the session offset at position t: phase * (PHASE_CENTRE - log(1 + t))
    phase: float = 0.0
    # ... plus plateau * (PLATEAU_CENTRE - log(1 + rows since the last keep))
    plateau: float = 0.0

    def weights(self, kept: Sequence[bool]) -> np.ndarray:
        """Evidence weight of each history row: a row ran under the configuration before it, so
        every keep at or after it (itself included) moved the configuration away from that one;
        and a row `a` rows old counts forgetting ** a."""
        kept_arr = np.asarray(kept, dtype=bool)
        weights = np.ones(kept_arr.shape[0])
        if self.keep_discount < 1.0 and kept_arr.size:
            moves = np.cumsum(kept_arr[::-1])[::-1]
            weights *= self.keep_discount**moves
        if self.forgetting < 1.0 and kept_arr.size:
            age = np.arange(kept_arr.shape[0], 0, -1)
            weights *= self.forgetting**age
        return np.maximum(weights, 1e-6)

    def prior_centre(self, kept: Sequence[bool]) -> float:
        """Centre of the session offset's prior before the next row, given the rows so far:
        the phase term (position) plus the plateau term (rows since the last keep)."""
        centre = 0.0
        if self.phase:
            centre += self.phase * (PHASE_CENTRE - float(np.log1p(len(kept))))
        if self.plateau:
            since = next((i for i, k in enumerate(reversed(kept)) if k), len(kept))
            centre += self.plateau * (PLATEAU_CENTRE - float(np.log1p(since)))
        return centre


# The dynamics the dev ablation supports (benchmarks/ablation.md): among the candidates,
# evidence discounted by 0.7 per configuration move plus a plateau term of 0.3 had the lowest
# log loss over all dev rows, and nested cross-validation chose it on 4 folds of 5.
DEFAULT_DYNAMICS = Dynamics(keep_discount=0.7, plateau=0.3)

# history rows -> evidence weight per row in (0, 1] (the curator's diagnosis); None: all 1
EvidenceWeights = Callable[[list[dict[str, Any]]], np.ndarray]


def stored_evidence_weights(history: Sequence[dict[str, Any]]) -> np.ndarray:
    """The curated evidence weight stored with each bank row (1 when none was set)."""
    return np.array([float(row.get("evidence_weight") or 1.0) for row in history])


class SessionEngine:
    """Answers proposals of one session from its rows under a prior (or none).

    `update(history)` sets the session's weighted counts; `answer(...)` reads one change's
    rate under them. Keep one engine per session between checks: the grid recomputes only the
    leaves whose weighted counts moved. History rows carry status, category, direction and
    parameter; rows of another status than keep, discard or crash are not counted.
    """

    def __init__(
        self,
        prior: Any,
        session: str,
        dynamics: Dynamics = DEFAULT_DYNAMICS,
        evidence_weights: EvidenceWeights | None = None,
    ):
        self.prior, self.session = prior, session
        self.dynamics, self.evidence_weights = dynamics, evidence_weights
        self.source = prior_source(prior)
        self.grid = None
        if prior is not None:
            from nrr_stats.models.session_grid import SessionGrid

            self.grid = SessionGrid(prior)
        self._table: Any = None
        self._cells: dict[tuple[str, str], tuple[int, int, float]] = {}
        self._leaves: dict[tuple[str, str, str], tuple[int, int, float]] = {}
        self._counted = 0
        self._totals: tuple[int, int, int, float] = (0, 0, 0, 0.0)
        self._answers: dict[tuple[str, str, str], Any] = {}  # until the next update

    def weights(self, history: list[dict[str, Any]]) -> np.ndarray:
        """Each row's evidence weight: dynamics times the curator's weight, in [1e-6, 1]."""
        kept = [r["status"] == "keep" for r in history]
        weights = self.dynamics.weights(kept)
        if self.evidence_weights is not None and history:
            weights = weights * np.asarray(self.evidence_weights(history), dtype=float)
        return np.clip(weights, 1e-6, 1.0)

    def update(self, history: Sequence[dict[str, Any]]) -> None:
        """Set the session's weighted counts (and the prior centre) from its rows so far."""
        history = [row for row in history if row["status"] in COUNTED_STATUSES]
        self._answers.clear()
        weights = self.weights(history)
        self._counted = len(history)
        cells: dict[tuple[str, str], list[float]] = {}
        leaves: dict[tuple[str, str, str], list[float]] = {}
        crashes: dict[str, list[float]] = {}
        for row, w in zip(history, weights, strict=True):
            kept = row["status"] == "keep"
            key = (row["category"], row["direction"], row["parameter"] or "")
            for counts in (
                leaves.setdefault(key, [0, 0, 0.0, 0.0]),
                cells.setdefault(key[:2], [0, 0, 0.0, 0.0]),
            ):
                counts[0] += 1
                counts[1] += kept
                counts[2] += w
                counts[3] += w * kept
            crash = crashes.setdefault(row["category"], [0.0, 0.0])
            crash[0] += w * (row["status"] == "crash")
            crash[1] += w
        statuses = [row["status"] for row in history]
        self._totals = (
            len(history),
            statuses.count("keep"),
            statuses.count("crash"),
            float(np.sum(weights)) if history else 0.0,
        )
        self._cells = {k: (v[0], v[1], v[2]) for k, v in cells.items()}
        self._leaves = {k: (v[0], v[1], v[2]) for k, v in leaves.items()}
        if self.grid is None:
            self._table = Evidence.from_table(_weighted_table(self.session, history, weights))
            return
        self.grid.set_all({k: (v[3], v[2]) for k, v in leaves.items()})
        self.grid.set_crash_counts({k: (v[0], v[1]) for k, v in crashes.items()})
        kept = [row["status"] == "keep" for row in history]
        self.grid.set_phase(self.dynamics.prior_centre(kept))

    def counts(self, category: str, direction: str) -> tuple[int, int, float]:
        """This session's (experiments, keeps, weighted experiments) in a cell."""
        return self._cells.get((category, direction), (0, 0, 0.0))

    def totals(self) -> tuple[int, int, int, float]:
        """This session's counted (experiments, keeps, crashes, weighted experiments)."""
        return self._totals

    def base_rate(self) -> Any:
        """The distribution of the session's base keep rate (the base of every answer's
        P(rate < base)) under the last `update`: over the grid, or the conjugate Beta."""
        if self.grid is not None:
            return self.grid.base_rate()
        from nrr_stats.models.posterior import session_base_beta
        from nrr_stats.models.rate import BetaMixture

        if self._table is None:
            self.update([])
        a, b = session_base_beta(self._table, self.session)
        return BetaMixture.of([a], [b])

    def answer(self, category: str, direction: str, parameter: str = "") -> Any:
        """The answer (a KeepAnswer) for a change, under the counts of the last `update`
        (kept until the next one: a loop often asks about the same cells again)."""
        query = (category, direction, parameter or "")
        if query not in self._answers:
            self._answers[query] = self._answer(*query)
        return self._answers[query]

    def _answer(self, category: str, direction: str, parameter: str) -> Any:
        from nrr_stats.models.posterior import STALE_ESS_SHARE, KeepAnswer, predict_keep

        if self.grid is None:
            if self._table is None:
                self.update([])
            table = self._table
            return predict_keep(None, table, self.session, category, direction, parameter)
        n, k, n_weighted = self.counts(category, direction)
        ess = self.grid.ess_share()
        return KeepAnswer.of(
            self.grid.rate(category, direction, parameter),
            p_crash=self.grid.p_crash(category),
            n=n,
            k=k,
            n_weighted=n_weighted,
            level=self.level(category, direction, parameter),
            source=self.source,
            stale=ess < STALE_ESS_SHARE,
            ess_share=ess,
            n_new=self._counted,
        )

    def level(self, category: str, direction: str, parameter: str = "") -> str:
        """The most specific level of a query with data, in the session's rows or the prior's
        fitted columns: "parameter", "cell", "category" or "global"."""
        names = self.prior.column_index
        if parameter and (
            (category, direction, parameter) in self._leaves
            or (category, direction, parameter) in names["parameters"]
        ):
            return "parameter"
        if (category, direction) in self._cells or (category, direction) in names["cells"]:
            return "cell"
        if any(c == category for c, _ in self._cells) or category in names["categories"]:
            return "category"
        return "global"

    def predict(self, history: list[dict[str, Any]], proposal: Any) -> Any:
        """The answer for `proposal` (category, direction, parameter) after `history`."""
        self.update(history)
        return self.answer(proposal.category, proposal.direction, proposal.parameter)


def prior_source(prior: Any) -> str:
    """Where an answer's prior comes from: "fit" (the bank's own), "population-prior" (the
    shipped one) or "conjugate" (none: the empirical-Bayes form)."""
    if prior is None:
        return "conjugate"
    return "population-prior" if prior.meta.get("kind") == "population_prior" else "fit"


def _weighted_table(session: str, history: Sequence[dict[str, Any]], weights: Sequence[float]):
    from nrr_stats.models.data import ExperimentTable

    return ExperimentTable.from_records(
        {
            "session": session,
            "category": row["category"],
            "direction": row["direction"],
            "parameter": row["parameter"],
            "status": row["status"],
            "weight": float(w),
        }
        for row, w in zip(history, weights, strict=True)
    )
