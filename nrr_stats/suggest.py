"""`nrr suggest`: which kinds of change are most likely to be kept next, with their intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def suggest_cells(cells: Sequence[Any], count: int = 5, min_experiments: int = 0) -> list[Any]:
    """The cells the engine is surest are good: lowest P(rate < base), then highest mean.

    `cells` are CellSummary rows of `nrr patterns`; cells with fewer than `min_experiments`
    observations may be excluded when an agent wants proven routes only.
    """
    eligible = [cell for cell in cells if cell.n >= min_experiments and cell.category != "other"]
    ranked = sorted(eligible, key=lambda c: (c.prob_below_base, -c.mean, c.category, c.direction))
    return ranked[:count]
