"""Curator evidence weights for the backtest: the offline rules curator's diagnosis of each
failed history row, turned into its power-likelihood weight (kept rows weigh 1).

Prequential: a failure's weight uses that row and the rows before it, plus the log's scale
(median |delta| of discards) over the history so far; nothing after the row being predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class OfflineCuratorWeights:
    """history rows -> evidence weight per row, from `nrr_stats.curator`'s offline rules."""

    def __init__(self, weights_path: str | None = None):
        from nrr_stats.curator import load_weights

        self.table = load_weights(weights_path) if weights_path else load_weights()
        self._cache: dict[tuple[str, int, float | None], float] = {}

    def __call__(self, history: Sequence[dict[str, Any]]) -> np.ndarray:
        from nrr_stats.curator.offline import (
            FailureContext,
            curate_offline,
            is_failure,
            route_history,
            session_scale,
        )

        scale = session_scale(history)
        weights = np.ones(len(history))
        for index, row in enumerate(history):
            if not is_failure(row):
                continue
            key = (str(row.get("log", row.get("session", ""))), int(row["row_number"]), scale)
            if key not in self._cache:
                record = curate_offline(
                    FailureContext(
                        experiment=row,
                        task_id=str(row.get("session", "backtest")),
                        scale=scale,
                        history=route_history(history, index),
                    )
                )
                self._cache[key] = float(self.table.weight(record["failure"]))
            weights[index] = self._cache[key]
        return weights
