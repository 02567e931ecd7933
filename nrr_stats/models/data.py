"""The data contract of the models: one row per predicted experiment, and its sufficient statistics.

Every fit and every answer works on weighted counts per group (`cell_counts`), so the cost of
a fit grows with the number of groups, never with the number of experiments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from nrr_stats.errors import NrrInputError

PREDICTED_STATUSES = ("keep", "discard", "crash")

# Grouping levels of `cell_counts`: the key columns each level groups by.
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "leaf": ("session", "category", "direction", "parameter"),
    "parameter": ("category", "direction", "parameter"),
    "cell": ("category", "direction"),
    "category": ("category",),
    "session_category": ("session", "category"),
    "session_cell": ("session", "category", "direction"),
    "session": ("session",),
    "global": (),
}


@dataclass(frozen=True)
class ExperimentTable:
    """One row per predicted-kind experiment (status keep/discard/crash), in bank order."""

    session: np.ndarray  # int64 codes 0..S-1
    category: np.ndarray  # str (object) TAXONOMY category
    direction: np.ndarray  # str
    parameter: np.ndarray  # str, "" when none
    kept: np.ndarray  # bool
    crashed: np.ndarray  # bool
    weight: np.ndarray  # float64 in (0, 1], evidence weight (power likelihood); 1 by default
    position: np.ndarray  # int64 0-based index of the row within its session
    session_names: tuple[str, ...]

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> ExperimentTable:
        """Build a table from mappings with keys session, category, direction, parameter, status,
        and optionally weight and position; rows whose status is not keep/discard/crash are skipped."""
        session_codes: dict[str, int] = {}
        columns: dict[str, list] = {
            name: []
            for name in (
                "session",
                "category",
                "direction",
                "parameter",
                "kept",
                "crashed",
                "weight",
                "position",
            )
        }
        next_position: dict[int, int] = {}
        for index, record in enumerate(records):
            status = str(record.get("status", "")).strip().lower()
            if status not in PREDICTED_STATUSES:
                continue
            try:
                session_name = str(record["session"])
                category = str(record["category"])
                direction = str(record["direction"])
            except KeyError as missing:
                raise NrrInputError(
                    f"experiment record {index} has no {missing.args[0]!r}"
                ) from None
            parameter = record.get("parameter") or ""
            weight = float(record.get("weight", 1.0) if record.get("weight") is not None else 1.0)
            if not (0.0 < weight <= 1.0) or not np.isfinite(weight):
                raise NrrInputError(f"experiment record {index} has weight {weight}, not in (0, 1]")
            code = session_codes.setdefault(session_name, len(session_codes))
            position = record.get("position")
            if position is None:
                position = next_position.get(code, 0)
            next_position[code] = max(next_position.get(code, 0), int(position)) + 1
            columns["session"].append(code)
            columns["category"].append(category)
            columns["direction"].append(direction)
            columns["parameter"].append(str(parameter))
            columns["kept"].append(status == "keep")
            columns["crashed"].append(status == "crash")
            columns["weight"].append(weight)
            columns["position"].append(int(position))
        return cls(
            session=np.asarray(columns["session"], dtype=np.int64),
            category=_object_array(columns["category"]),
            direction=_object_array(columns["direction"]),
            parameter=_object_array(columns["parameter"]),
            kept=np.asarray(columns["kept"], dtype=bool),
            crashed=np.asarray(columns["crashed"], dtype=bool),
            weight=np.asarray(columns["weight"], dtype=np.float64),
            position=np.asarray(columns["position"], dtype=np.int64),
            session_names=tuple(session_codes),
        )

    def __len__(self) -> int:
        return int(self.session.shape[0])

    def select(self, mask: np.ndarray) -> ExperimentTable:
        """The rows where `mask` is true, keeping every session name (codes stay valid)."""
        return ExperimentTable(
            session=self.session[mask],
            category=self.category[mask],
            direction=self.direction[mask],
            parameter=self.parameter[mask],
            kept=self.kept[mask],
            crashed=self.crashed[mask],
            weight=self.weight[mask],
            position=self.position[mask],
            session_names=self.session_names,
        )

    def session_column(self) -> np.ndarray:
        """Session names per row (object array)."""
        names = _object_array(list(self.session_names))
        return names[self.session] if len(self) else _object_array([])


def _object_array(values: list) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


@dataclass(frozen=True)
class GroupCounts:
    """Sufficient statistics per group: weighted and raw keeps, crashes and trials.

    `keys` maps each key column of the level to one value per group (session as its name);
    groups are sorted by key; the weighted counts are the power-likelihood counts sum(w*y), sum(w).
    """

    level: str
    keys: dict[str, np.ndarray]
    keeps_w: np.ndarray
    crashes_w: np.ndarray
    trials_w: np.ndarray
    keeps: np.ndarray
    crashes: np.ndarray
    trials: np.ndarray

    def __len__(self) -> int:
        return int(self.trials.shape[0])

    def key_tuples(self) -> list[tuple[str, ...]]:
        """One tuple of key values per group, in the level's key order."""
        names = LEVEL_KEYS[self.level]
        if not names:
            return [()] * len(self)
        return list(zip(*(self.keys[name].tolist() for name in names), strict=True))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct strings and each value's code (a dict pass: 3x faster than np.unique)."""
    seen: dict[str, int] = {}
    codes = np.fromiter(
        (seen.setdefault(str(v), len(seen)) for v in values.tolist()),
        dtype=np.int64,
        count=len(values),
    )
    names = list(seen)
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    uniques = _object_array([names[i] for i in order])
    return uniques, rank[codes] if len(codes) else codes


def cell_counts(table: ExperimentTable, level: str = "cell") -> GroupCounts:
    """Group the table at `level` (see LEVEL_KEYS) and sum weighted and raw counts per group."""
    if level not in LEVEL_KEYS:
        raise ValueError(f"unknown level {level!r}; choose from {sorted(LEVEL_KEYS)}")
    key_names = LEVEL_KEYS[level]
    n_rows = len(table)
    sessions = _object_array(list(table.session_names))
    codes_per_key: list[np.ndarray] = []
    uniques_per_key: list[np.ndarray] = []
    for name in key_names:
        if name == "session":
            values = sessions[table.session] if n_rows else _object_array([])
        else:
            values = getattr(table, name)
        uniques, codes = _factorize(values)
        uniques_per_key.append(uniques)
        codes_per_key.append(codes)
    if key_names:
        shape = tuple(max(len(u), 1) for u in uniques_per_key)
        flat = (
            np.ravel_multi_index(tuple(codes_per_key), shape)
            if n_rows
            else np.zeros(0, dtype=np.int64)
        )
        group_ids, group_index = np.unique(flat, return_inverse=True)
        group_index = group_index.reshape(-1)
        unravelled = np.unravel_index(group_ids, shape)
        keys = {
            name: _object_array(list(uniques_per_key[i][unravelled[i]]))
            for i, name in enumerate(key_names)
        }
        n_groups = len(group_ids)
    else:
        group_index = np.zeros(n_rows, dtype=np.int64)
        keys = {}
        n_groups = 1
    weight = table.weight

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group_index, weights=values, minlength=n_groups).astype(np.float64)

    return GroupCounts(
        level=level,
        keys=keys,
        keeps_w=total(weight * table.kept),
        crashes_w=total(weight * table.crashed),
        trials_w=total(weight),
        keeps=total(table.kept.astype(np.float64)).round().astype(np.int64),
        crashes=total(table.crashed.astype(np.float64)).round().astype(np.int64),
        trials=np.bincount(group_index, minlength=n_groups).astype(np.int64),
    )


def table_hash(table: ExperimentTable) -> str:
    """A hash of the table's content that does not depend on row order within a session."""
    import hashlib

    counts = cell_counts(table, "leaf")
    digest = hashlib.sha256()
    for key, kw, cw, nw, n in zip(
        counts.key_tuples(),
        counts.keeps_w,
        counts.crashes_w,
        counts.trials_w,
        counts.trials,
        strict=True,
    ):
        digest.update(
            repr(
                (key, round(float(kw), 9), round(float(cw), 9), round(float(nw), 9), int(n))
            ).encode()
        )
    return digest.hexdigest()[:16]
