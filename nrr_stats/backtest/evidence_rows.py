"""A log's predicted rows as the similarity-evidence model reads them (models/similarity_evidence.py).

Row t's proposal features come from its scrubbed description and its parse; once it has run, its
history features come from the same scrubbed text (a proposal is compared with what earlier
rows proposed, not with their result words) and the stored parse, as a bank row holds it. The same function serves the backtest and the CV benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nrr_stats.models.similarity_evidence import (
    SessionRows,
    evidence_features,
    evidence_words,
    history_fields,
    proposal_fields,
)

PREDICTED = ("keep", "discard", "crash")


@dataclass(frozen=True)
class EvidenceRows:
    """The model's input for one log plus what the walk reports beside it."""

    session: SessionRows
    rows: tuple[int, ...]  # EVALUATION.md row numbers of the predicted rows
    statuses: tuple[str, ...]


def evidence_rows(items: list[Any]) -> EvidenceRows:
    """SessionRows of the predicted walk items (backtest/walk.py's WalkItem list)."""
    chosen = [item for item in items if item.status in PREDICTED]
    texts = [item.description for item in chosen]
    session = SessionRows(
        y=np.array([item.status == "keep" for item in chosen], dtype=float),
        categories=tuple(item.proposal.category for item in chosen),
        proposal_features=evidence_features(
            texts, [proposal_fields(i.proposal, i.config_before) for i in chosen]
        ),
        history_features=evidence_features(texts, [history_fields(i.record) for i in chosen]),
        words=tuple(evidence_words(i.description, i.proposal) for i in chosen),
    )
    return EvidenceRows(
        session=session,
        rows=tuple(item.row for item in chosen),
        statuses=tuple(item.status for item in chosen),
    )
