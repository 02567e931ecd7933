"""The bank's counted evidence: weighted keep, crash and trial sums per group, grown in place.

An answer needs sums at a few levels (its leaf, its session's category, its parameter, its
cell), never the rows. `Evidence` keeps every level of LEVEL_KEYS except "global" as a dict
index over a growing array, so rows that arrive later are added in O(new rows) and a lookup is
one dict probe. `counts(level)` gives any level as the sorted GroupCounts the fit reads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from nrr_stats.models.data import LEVEL_KEYS, ExperimentTable, GroupCounts, cell_counts

# Columns of every sums array, in this order.
SUM_FIELDS = ("keeps_w", "crashes_w", "trials_w", "keeps", "crashes", "trials")
LEAF = LEVEL_KEYS["leaf"]
LEVELS = tuple(level for level in LEVEL_KEYS if level not in ("leaf", "global"))
# Above this many rows an add sums with bincount (a pass over all groups), below with add.at.
BULK_ROWS = 4096


class _Level:
    """Sums per key of one level: a dict from key tuple to row, over an array that doubles."""

    def __init__(self, names: tuple[str, ...]):
        self.positions = [LEAF.index(name) for name in names]  # of its key columns in a leaf
        self.index: dict[tuple, int] = {}
        self._sums = np.zeros((16, len(SUM_FIELDS)))

    @property
    def sums(self) -> np.ndarray:
        return self._sums[: len(self.index)]

    def project(self, leaves: Sequence[tuple]) -> list[tuple]:
        positions = self.positions
        if len(positions) == len(LEAF):
            return list(leaves)
        if len(positions) == 1:
            return [(leaf[positions[0]],) for leaf in leaves]
        return list(map(itemgetter(*positions), leaves))

    def add(self, keys: Sequence[tuple], sums: np.ndarray) -> np.ndarray:
        """Add sums (rows aligned with keys); return each key's row."""
        index = self.index
        rows = np.fromiter(
            (index.setdefault(key, len(index)) for key in keys), dtype=np.int64, count=len(keys)
        )
        if len(index) > self._sums.shape[0]:
            grown = np.zeros((max(len(index), 2 * self._sums.shape[0]), len(SUM_FIELDS)))
            grown[: self._sums.shape[0]] = self._sums
            self._sums = grown
        if len(keys) > BULK_ROWS:
            for column in range(len(SUM_FIELDS)):
                self._sums[:, column] += np.bincount(
                    rows, weights=sums[:, column], minlength=self._sums.shape[0]
                )
        else:
            np.add.at(self._sums, rows, sums)
        return rows

    def get(self, key: tuple) -> np.ndarray:
        row = self.index.get(key)
        return self._sums[row] if row is not None else np.zeros(len(SUM_FIELDS))


class Evidence:
    """Sums of the counted experiments (status keep, discard or crash) at every level.

    Build it from an ExperimentTable or from leaf sums (what the bank's GROUP BY returns), then
    `add` later leaves; `version` counts the changes, so answers derived from it can be cached.
    """

    def __init__(self) -> None:
        self.leaves = _Level(LEAF)
        self.levels = {level: _Level(LEVEL_KEYS[level]) for level in LEVELS}
        self.version = 0
        self._counts: dict[str, tuple[int, GroupCounts]] = {}
        self._derived: dict = {}  # derived(), until the next add

    @classmethod
    def from_table(cls, table: ExperimentTable) -> Evidence:
        """The table's evidence (its leaf sums, and every level above them)."""
        counts = cell_counts(table, "leaf")
        evidence = cls()
        evidence.add(counts.key_tuples(), np.column_stack([getattr(counts, f) for f in SUM_FIELDS]))
        return evidence

    @classmethod
    def from_leaf_sums(cls, rows: Iterable[Sequence]) -> Evidence:
        """Evidence from (session, category, direction, parameter, *SUM_FIELDS) rows, one per
        distinct leaf (what the bank's GROUP BY returns)."""
        rows = list(rows)
        values, codes = [], []
        for i in range(len(LEAF)):
            index: dict[str, int] = {}
            column = (row[i] or "" for row in rows)  # no parameter is ""
            codes.append(
                np.fromiter((index.setdefault(v, len(index)) for v in column), np.int64, len(rows))
            )
            values.append(list(index))
        sums = np.array([r[4:10] for r in rows], dtype=np.float64).reshape(-1, len(SUM_FIELDS))
        return cls.from_codes(values, codes, sums)

    @classmethod
    def from_codes(
        cls, values: Sequence[Sequence[str]], codes: Sequence[np.ndarray], sums: np.ndarray
    ) -> Evidence:
        """Evidence of distinct leaves given per key column of LEAF as its distinct values and a
        code per leaf. The levels above the leaves are grouped on the codes, so only their
        groups, not every leaf, cost a Python step."""
        evidence = cls()
        sums = np.asarray(sums, dtype=np.float64).reshape(-1, len(SUM_FIELDS))
        if not sums.shape[0]:
            return evidence
        columns = [_object_column(list(v)) for v in values]
        codes = [np.asarray(c, dtype=np.int64) for c in codes]
        per_leaf = [column[c].tolist() for column, c in zip(columns, codes, strict=True)]
        leaves = list(zip(*per_leaf, strict=True))
        evidence.leaves.add(leaves, sums)
        for level in evidence.levels.values():
            shape = tuple(len(columns[i]) for i in level.positions)
            flat = np.ravel_multi_index(tuple(codes[i] for i in level.positions), shape)
            groups, inverse = np.unique(flat, return_inverse=True)
            grouped = np.column_stack(
                [
                    np.bincount(inverse.reshape(-1), weights=sums[:, j], minlength=groups.size)
                    for j in range(len(SUM_FIELDS))
                ]
            )
            parts = np.unravel_index(groups, shape)
            per_group = [
                columns[i][p].tolist() for i, p in zip(level.positions, parts, strict=True)
            ]
            keys = list(zip(*per_group, strict=True))
            level.add(keys, grouped)
        evidence.version += 1
        return evidence

    def add_leaf_rows(self, rows: Iterable[Sequence]) -> list[tuple[str, str, str, str]]:
        """Add (session, category, direction, parameter, *SUM_FIELDS) rows; return their leaves."""
        rows = list(rows)
        keys = [(r[0], r[1], r[2], r[3] or "") for r in rows]
        sums = np.array([r[4:10] for r in rows], dtype=np.float64).reshape(-1, len(SUM_FIELDS))
        self.add(keys, sums)
        return keys

    def add(self, leaves: Sequence[tuple[str, str, str, str]], sums: np.ndarray) -> None:
        """Add sums per leaf (rows of SUM_FIELDS aligned with `leaves`) at every level."""
        if not len(leaves):
            return
        sums = np.asarray(sums, dtype=np.float64).reshape(len(leaves), len(SUM_FIELDS))
        self.leaves.add(leaves, sums)
        for level in self.levels.values():
            level.add(level.project(leaves), sums)
        self.version += 1
        self._derived.clear()

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Counted experiments."""
        return int(round(self.levels["session"].sums[:, 5].sum()))

    def sums(self, level: str, key: tuple) -> np.ndarray:
        """SUM_FIELDS of one group (zeros when it has no rows)."""
        return (self.leaves if level == "leaf" else self.levels[level]).get(key)

    def has(self, level: str, key: tuple) -> bool:
        return key in (self.leaves if level == "leaf" else self.levels[level]).index

    def keys(self, level: str) -> list[tuple]:
        return list((self.leaves if level == "leaf" else self.levels[level]).index)

    def sessions(self) -> set[str]:
        return {key[0] for key in self.levels["session"].index}

    def derived(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()`, kept under `key` until the evidence changes (e.g. a fitted prior)."""
        if key not in self._derived:
            self._derived[key] = compute()
        return self._derived[key]

    def counts(self, level: str) -> GroupCounts:
        """One level as GroupCounts sorted by key, equal to `cell_counts` of the same rows."""
        cached = self._counts.get(level)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        names = LEVEL_KEYS[level]
        if not names:
            totals = self.levels["session"].sums.sum(axis=0, keepdims=True)
            keys: list[tuple] = [()]
        else:
            source = self.leaves if level == "leaf" else self.levels[level]
            keys = sorted(source.index)
            totals = source.sums[[source.index[key] for key in keys]].reshape(-1, len(SUM_FIELDS))
        columns = {name: _object_column([key[i] for key in keys]) for i, name in enumerate(names)}
        counts = GroupCounts(
            level=level,
            keys=columns,
            keeps_w=totals[:, 0].copy(),
            crashes_w=totals[:, 1].copy(),
            trials_w=totals[:, 2].copy(),
            keeps=totals[:, 3].round().astype(np.int64),
            crashes=totals[:, 4].round().astype(np.int64),
            trials=totals[:, 5].round().astype(np.int64),
        )
        self._counts[level] = (self.version, counts)
        return counts


def _object_column(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def as_evidence(data: ExperimentTable | Evidence) -> Evidence:
    """Evidence as given, or built from a table."""
    return data if isinstance(data, Evidence) else Evidence.from_table(data)
