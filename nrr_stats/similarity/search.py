"""The past experiments most like a proposal: one feature row, one top-k pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from nrr_stats.similarity.features import FeatureSpace
from nrr_stats.similarity.kernel import row_scores, top_k
from nrr_stats.similarity.repeats import (
    FAILED_STATUSES,
    NEAR_REPEAT_SIMILARITY,
    field_text,
    find_repeats,
)

# Failures from other sessions considered as near repeats: the most similar this many.
NEAR_CANDIDATES = 50
# A held search keeps a copy of the snapshot's failure rows by column (top_failures) while
# the copy stays under this size; above it every query is scored through the mask.
MAX_FAILURE_COPY_BYTES = 64 << 20
# ... copied this many rows per query (~10 ms of one check at 128 features), from a snapshot's
# second query on: a 100k bank's failures take three checks.
BUILD_ROWS_PER_QUERY = 32768
_TILE_ROWS = 1024
# The candidates' threshold is the k-th best bound of every this-many-th failure row (see
# kth_lower_bound): a cheaper selection, about this many times k rows scored exactly.
THRESHOLD_STRIDE = 8


def similar_experiments(
    space: FeatureSpace,
    matrix: np.ndarray,
    query_description: str,
    query_fields: Mapping[str, str],
    k: int,
    mask: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """(row index, cosine similarity) of the k rows most like the proposal, best first.

    `matrix` must come from the same `space`; `mask` keeps only the rows where it is True.
    """
    query = space.transform([query_description], [query_fields])[0]
    indices, scores = top_k(matrix, query, k, mask=mask)
    return [(int(i), float(np.clip(s, -1.0, 1.0))) for i, s in zip(indices, scores, strict=True)]


def proposal_vector(space: FeatureSpace, description: str, change: Any) -> np.ndarray:
    """The feature row of a proposal: its words and its parsed change (no outcome yet)."""
    fields = {
        "category": change.category,
        "direction": change.direction,
        "parameter": change.parameter,
        "from": change.from_value,
        "to": change.to_value,
        "outcome": "",
    }
    return space.transform([description], [fields])[0]


def similar_failures_in_bank(
    bank: Any,
    description: str,
    change: Any,
    config: Mapping[str, str] | None,
    history: Sequence[Mapping[str, Any]],
    *,
    k: int = 5,
    search: FailureSearch | None = None,
) -> tuple[list[dict[str, Any]], bool, int]:
    """The k failures most like the proposal, whether it repeats one exactly, how many nearly.

    `change` has category, direction, parameter, from_value, to_value; `history` is the
    session's rows (exact repeats are judged within the session, under `config`). `search`
    is the state a loop keeps between checks (see FailureSearch); None: a fresh one.
    """
    search = search if search is not None else FailureSearch()
    snapshot = search.snapshot(bank)
    query = proposal_vector(snapshot.space, description, change)
    rows, scores = search.top_failures(query, max(k, NEAR_CANDIDATES))
    similarity = dict(
        zip(snapshot.ids[rows].tolist(), np.clip(scores, -1.0, 1.0).tolist(), strict=True)
    )

    # The session's failures that could repeat the proposal: the same cell (exact or near
    # repeats) or a similarity at the near-repeat threshold; only those reach find_repeats.
    session = search.session_rows(history)
    session_scores = np.clip(row_scores(session.matrix, query), -1.0, 1.0)
    cell = (field_text(change.category), field_text(change.direction))
    possible = session.failed & (
        (session.cells == hash(cell)) | (session.known & (session_scores >= NEAR_REPEAT_SIMILARITY))
    )
    candidates = [
        dict(history[i], similarity=float(session_scores[i]) if session.known[i] else None)
        for i in np.flatnonzero(possible)
    ]
    in_session = set(session.ids.tolist())
    details = search.rows_by_id(bank, list(similarity))
    for row_id, score in similarity.items():
        row = details.get(row_id)
        if row is None or row_id in in_session:
            continue
        # Another session's row: never exact, and only the same cell or a near-repeat score
        # can make it a near repeat (what find_repeats would test).
        if (
            score >= NEAR_REPEAT_SIMILARITY
            or (field_text(row.get("category")), field_text(row.get("direction"))) == cell
        ):
            candidates.append(dict(row, config_before=None, similarity=score))
    repeats = find_repeats(
        {
            "category": change.category,
            "direction": change.direction,
            "parameter": change.parameter,
            "to": change.to_value,
            "description": description,
        },
        candidates,
        config,
    )
    kind = {row["id"]: "near" for row in repeats["near"]} | {
        row["id"]: "exact" for row in repeats["exact"]
    }

    similar = []
    for row_id in list(similarity)[:k]:
        row = details.get(row_id, {})
        similar.append(
            {
                "id": row_id,
                "description": row.get("description", ""),
                "outcome": row.get("outcome"),
                "delta": row.get("delta"),
                "similarity": round(similarity[row_id], 4),
                "session_id": row.get("session_id"),
                "repeat": kind.get(row_id),
            }
        )
    return similar, repeats["exact_repeat"], len(repeats["near"])


def row_filter(
    bank: Any,
    snapshot: Any,
    *,
    failures_only: bool = False,
    session_id: int | None = None,
    cell: tuple[str, str] | None = None,
) -> np.ndarray | None:
    """The snapshot's rows to search (a bool per row; None: all of them), for the kernel's
    `mask`: the matrix itself is never copied. A cell's rows come from the bank by id."""
    masks = []
    if failures_only:
        masks.append(snapshot.status_mask(*FAILED_STATUSES))
    if session_id is not None:
        masks.append(snapshot.session_id == int(session_id))
    if cell is not None:
        masks.append(np.isin(snapshot.ids, bank.experiment_ids_in_cell(*cell)))
    return np.logical_and.reduce(masks) if masks else None


class _SessionRows(NamedTuple):
    """A session's rows as the similarity search reads them, prepared once per snapshot."""

    ids: np.ndarray  # bank id per row
    known: np.ndarray  # the store holds the row's features
    matrix: np.ndarray  # (rows, dim) feature rows (zeros where not known)
    failed: np.ndarray  # discard or crash
    cells: np.ndarray  # hash of the normalised (category, direction)


class FailureSearch:
    """What the failure search keeps between checks, for one similarity snapshot at a time:
    the snapshot's failure mask, its failure rows by column (top_failures), the session rows
    prepared against it and bank rows read by id. A new snapshot (a commit of the store) drops
    them all."""

    def __init__(self, max_copy_bytes: int = MAX_FAILURE_COPY_BYTES) -> None:
        self.max_copy_bytes = max_copy_bytes
        self._snapshot: Any = None
        self._failed: np.ndarray | None = None
        self._columns: _FailureColumns | None = None  # the failure rows by column, per snapshot
        self._queries = 0  # top_failures calls on the current snapshot
        self._session: tuple[Sequence, int, _SessionRows] | None = None
        self._details: dict[int, dict[str, Any]] = {}

    def snapshot(self, bank: Any) -> Any:
        """The bank's current feature snapshot (synced first when the bank has new rows)."""
        from nrr_stats.similarity.store import bank_features

        previous = self._snapshot
        snapshot = bank_features(
            bank, previous if previous is not None and previous.ids.size else None
        )
        if snapshot is not self._snapshot:
            self._snapshot, self._failed, self._session, self._details = snapshot, None, None, {}
            self._columns, self._queries = None, 0
        return snapshot

    def failure_mask(self) -> np.ndarray:
        """Rows of the snapshot that are failures (discard, crash)."""
        if self._failed is None:
            self._failed = self._snapshot.status_mask(*FAILED_STATUSES)
        return self._failed

    def top_failures(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(snapshot row index, score) of the k failures most like `query`, best first: the
        kernel's `top_k(matrix, query, k, mask=failure_mask())`, the same rows and scores.

        From a snapshot's second query on, its failure rows are copied column by column
        (`_FailureColumns`, at most `max_copy_bytes`), BUILD_ROWS_PER_QUERY rows per query so
        no one check pays for the whole copy; once complete, each query bounds its scores from
        the columns it does not zero (fewer bytes read than the rows) and the kernel scores
        only the rows that can reach the k best, so the answer is the kernel's own. A snapshot
        asked once (a one-shot check, a loop that ingests before every check) copies nothing."""
        matrix, failed = self._snapshot.matrix, self.failure_mask()
        self._queries += 1
        columns = self._columns
        if columns is not None and columns.ready:
            batch = np.asarray(query, dtype=np.result_type(matrix.dtype, np.float32))
            candidates = columns.candidates(batch, k)
            if candidates is not None:
                found, scores = top_k(np.asarray(matrix[candidates]), query, k)
                return candidates[found], scores
        result = top_k(matrix, query, k, mask=failed)
        if self._queries >= 2:
            if columns is None:
                columns = self._columns = _FailureColumns(matrix, failed, self.max_copy_bytes)
            columns.build(matrix, BUILD_ROWS_PER_QUERY)
        return result

    def session_rows(self, history: Sequence[Mapping[str, Any]]) -> _SessionRows:
        """The session's rows prepared against the snapshot (again when the list changed)."""
        entry = self._session
        if entry is None or entry[0] is not history or entry[1] != len(history):
            entry = self._session = (history, len(history), _prepare(self._snapshot, history))
        return entry[2]

    def rows_by_id(self, bank: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Bank rows by id (a row's details change only with a new commit of the store)."""
        missing = [i for i in ids if i not in self._details]
        if missing:
            self._details.update((int(row["id"]), row) for row in bank.experiment_details(missing))
        return {i: self._details[i] for i in ids if i in self._details}


class _FailureColumns:
    """A snapshot's failure rows copied column by column (feature j of every failure row is
    one contiguous run), to bound a query's scores from its nonzero features alone. Filled a
    slice of rows at a time (`build`); read once `ready`."""

    def __init__(self, matrix: np.ndarray, failed: np.ndarray, max_bytes: int):
        self.index = np.flatnonzero(failed)  # snapshot row of each failure row
        size = self.index.size * matrix.shape[1] * matrix.dtype.itemsize
        # (dim, failures); None: too large to copy, or a row is not finite
        self.columns = (
            np.empty((matrix.shape[1], self.index.size), dtype=matrix.dtype)
            if size <= max_bytes
            else None
        )
        self.filled = 0  # failure rows copied so far
        self.norm = 0.0  # the largest L2 norm of a copied row

    @property
    def ready(self) -> bool:
        return self.columns is not None and self.filled == self.index.size

    def build(self, matrix: np.ndarray, rows: int) -> None:
        """Copy the next `rows` failure rows (in tiles that stay in cache while transposed)."""
        stop = min(self.filled + rows, self.index.size)
        for start in range(self.filled, stop, _TILE_ROWS):
            if self.columns is None:
                return
            end = min(start + _TILE_ROWS, stop)
            tile = np.asarray(matrix[self.index[start:end]])
            if not bool(np.isfinite(tile).all()):
                self.columns = None  # the bound needs finite rows: the mask answers instead
                return
            self.columns[:, start:end] = tile.T
            norms = np.sqrt(np.einsum("ij,ij->i", tile, tile, dtype=np.float64))
            self.norm = max(self.norm, float(norms.max()) if norms.size else 0.0)
            self.filled = end

    def candidates(self, query: np.ndarray, k: int) -> np.ndarray | None:
        """Snapshot rows (ascending) that hold every row of the kernel's k best for `query`;
        None when the bound is not available (no complete copy, a non-finite query)."""
        columns = self.columns
        if not self.ready or k < 1 or not bool(np.isfinite(query).all()):
            return None
        count = self.index.size
        if count <= k:
            return self.index
        approx = np.zeros(count, dtype=columns.dtype)
        term = np.empty_like(approx)
        for j in np.flatnonzero(query):
            np.multiply(columns[j], query[j], out=term)
            approx += term
        # The kernel's score and this sum are each within `error` = gamma_n * |m| |q| of the
        # exact dot product (n terms, unit roundoff u; sum_j |m_j q_j| <= |m| |q|), so they
        # differ by at most 2 * error, and a row of the kernel's k best scores at least the
        # k-th best sum here minus 4 * error; the margin is doubled for the threshold's own
        # rounding.
        u = float(np.finfo(columns.dtype).eps) / 2.0
        n = columns.shape[0] + 1
        error = n * u / (1.0 - n * u) * self.norm * float(np.linalg.norm(query.astype(np.float64)))
        return self.index[np.flatnonzero(approx >= kth_lower_bound(approx, k) - 8.0 * error)]


def kth_lower_bound(values: np.ndarray, k: int) -> float:
    """A value at most the k-th largest of `values` (1 <= k <= values.size): the k-th largest of
    every THRESHOLD_STRIDE-th value when that subset holds at least 8k of them. Its k largest
    are values of the whole, so the whole has k values at or above it; selecting from the
    subset costs 1/stride of the whole, and the threshold admits about stride x k rows."""
    if values.size >= 8 * k * THRESHOLD_STRIDE:
        values = values[::THRESHOLD_STRIDE]
    return float(np.partition(values, values.size - k)[values.size - k])


def _prepare(snapshot: Any, history: Sequence[Mapping[str, Any]]) -> _SessionRows:
    ids = np.array([int(row["id"]) for row in history], dtype=np.int64)
    positions = np.minimum(np.searchsorted(snapshot.ids, ids), max(snapshot.ids.size - 1, 0))
    known = snapshot.ids[positions] == ids if snapshot.ids.size else np.zeros(ids.size, bool)
    matrix = np.zeros((ids.size, snapshot.matrix.shape[1]), dtype=np.float32)
    matrix[known] = np.asarray(snapshot.matrix[positions[known]])
    return _SessionRows(
        ids=ids,
        known=known,
        matrix=matrix,
        failed=np.array(
            [field_text(row.get("status")) in FAILED_STATUSES for row in history], dtype=bool
        ),
        cells=np.array(
            [
                hash((field_text(row.get("category")), field_text(row.get("direction"))))
                for row in history
            ],
            dtype=np.int64,
        ),
    )


def similar_experiments_in_bank(
    bank: Any,
    description: str,
    k: int = 5,
    *,
    failures_only: bool = True,
    session_id: int | None = None,
    cell: tuple[str, str] | None = None,
    rules: Any = None,
) -> list[dict[str, Any]]:
    """The k stored experiments most like a description, best first, with their similarity;
    only failures, one session's rows or one (category, direction) cell's rows when asked."""
    from nrr_stats.parser import parse_description

    search = FailureSearch()
    snapshot = search.snapshot(bank)
    change = parse_description(description, rules=rules)
    query = proposal_vector(snapshot.space, description, change)
    mask = row_filter(bank, snapshot, failures_only=failures_only, session_id=session_id, cell=cell)
    rows, scores = top_k(snapshot.matrix, query, k, mask=mask)
    details = search.rows_by_id(bank, [int(snapshot.ids[r]) for r in rows])
    return [
        {
            "id": int(snapshot.ids[r]),
            "similarity": round(float(np.clip(s, -1.0, 1.0)), 4),
            **{
                key: details.get(int(snapshot.ids[r]), {}).get(key)
                for key in (
                    "description",
                    "status",
                    "outcome",
                    "delta",
                    "category",
                    "direction",
                    "session_id",
                )
            },
        }
        for r, s in zip(rows, scores, strict=True)
    ]
