"""The SQL of the NK-record tables (nk_records, record_events), as named `Bank` methods.

`Bank` inherits these; the curator (curator/store.py) keeps the meaning of keys, records and
adoption, and calls these for every read and write. Statements use `?` placeholders, which
`Bank.execute` rewrites for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# An update of one record: (record id, its new JSON, its new evidence weight).
RecordUpdate = tuple[int, str, float]


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class NkRecordTables:
    """The NK-record statements of a bank (mixed into `Bank`, which supplies execute / query /
    transaction / location)."""

    execute: Callable[..., Any]
    query: Callable[..., list[dict[str, Any]]]
    transaction: Callable[..., Any]
    location: Any

    def save_nk_record(self, row: Mapping[str, Any], *, replace: bool = False) -> int | None:
        """Store one record row (experiment_id, route_key, depth, source, record_json,
        evidence_weight, note, input_tokens, output_tokens, created_at) and refresh its
        experiment's evidence weight, in one transaction. Returns the record id, or None when
        (route_key, depth, source) is taken and `replace` is false (left as it was)."""
        columns = (
            "experiment_id",
            "route_key",
            "depth",
            "source",
            "record_json",
            "evidence_weight",
            "note",
            "input_tokens",
            "output_tokens",
            "created_at",
        )
        conflict = (
            " DO UPDATE SET experiment_id = excluded.experiment_id,"
            " record_json = excluded.record_json, evidence_weight = excluded.evidence_weight,"
            " note = excluded.note, input_tokens = excluded.input_tokens,"
            " output_tokens = excluded.output_tokens, created_at = excluded.created_at"
            if replace
            else " DO NOTHING"
        )
        with self.transaction():
            written = self.execute(
                f"INSERT INTO nk_records ({', '.join(columns)}) VALUES ({_marks(columns)})"
                f" ON CONFLICT (route_key, depth, source){conflict}",
                [row[c] for c in columns],
            ).rowcount
            if not written:
                return None
            if int(row["depth"]) == 1 and row["experiment_id"] is not None:
                self.refresh_experiment_weight(int(row["experiment_id"]))
            rows = self.query(
                "SELECT id FROM nk_records WHERE route_key = ? AND depth = ? AND source = ?",
                (row["route_key"], row["depth"], row["source"]),
            )
            return int(rows[0]["id"])

    def refresh_experiment_weight(self, experiment_pk: int) -> None:
        """Set an experiment's evidence weight from its own depth-1 records (a model's record
        preferred over the rules' one, the newest of each); unchanged when it has none."""
        rows = self.query(
            "SELECT source, evidence_weight, id FROM nk_records"
            " WHERE experiment_id = ? AND depth = 1",
            (experiment_pk,),
        )
        if not rows:
            return
        preferred = max(rows, key=lambda r: (r["source"] != "rules", r["id"]))
        self.execute(
            "UPDATE experiments SET evidence_weight = ? WHERE id = ?",
            (float(preferred["evidence_weight"]), experiment_pk),
        )

    def reweigh_nk_records(self, reweigh: Callable[[int, str], RecordUpdate]) -> int:
        """In one transaction: replace every record by `reweigh(id, record_json)`, then set every
        experiment's evidence weight from its records (1.0 without one). Returns records seen."""
        with self.transaction():
            rows = self.query("SELECT id, record_json FROM nk_records ORDER BY id")
            for row in rows:
                record_id, record_json, weight = reweigh(int(row["id"]), row["record_json"])
                self.execute(
                    "UPDATE nk_records SET record_json = ?, evidence_weight = ? WHERE id = ?",
                    (record_json, weight, record_id),
                )
            self.execute("UPDATE experiments SET evidence_weight = 1.0")
            for row in self.query(
                "SELECT DISTINCT experiment_id FROM nk_records"
                " WHERE depth = 1 AND experiment_id IS NOT NULL"
            ):
                self.refresh_experiment_weight(int(row["experiment_id"]))
        return len(rows)

    def nk_records(
        self,
        *,
        session_id: int | None = None,
        experiment_pk: int | None = None,
        source: str | None = None,
        depth: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored record rows (with session_id, log_experiment_id, session_key), oldest first."""
        where, params = [], []
        for column, value in (
            ("e.session_id", session_id),
            ("r.experiment_id", experiment_pk),
            ("r.source", source),
            ("r.depth", depth),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return self.query(
            "SELECT r.*, e.session_id AS session_id, e.experiment_id AS log_experiment_id,"
            " s.session_key AS session_key FROM nk_records r"
            " LEFT JOIN experiments e ON e.id = r.experiment_id"
            f" LEFT JOIN sessions s ON s.id = e.session_id{clause} ORDER BY r.id",
            params,
        )

    def nk_record(self, record_id: int) -> dict[str, Any] | None:
        """One record row by id (None when there is none)."""
        rows = self.query("SELECT * FROM nk_records WHERE id = ?", (record_id,))
        return rows[0] if rows else None

    def add_record_event(
        self, record_id: int, action: str, actor: str, reason: str, created_at: str
    ) -> None:
        """Store one adoption event (adopt / reject) of a record."""
        with self.transaction():
            self.execute(
                "INSERT INTO record_events (record_id, action, actor, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (record_id, action, actor, reason, created_at),
            )

    def record_events(self, record_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The adoption events of these records, oldest first."""
        if not record_ids:
            return []
        return self.query(
            "SELECT record_id, action, actor, reason, created_at FROM record_events"
            f" WHERE record_id IN ({_marks(record_ids)}) ORDER BY id",
            list(record_ids),
        )

    _ROUTE_COLUMNS = (
        "r.id, r.experiment_id, r.depth, r.source, r.record_json, r.evidence_weight, r.note,"
        " r.created_at"
    )

    def nk_records_in_cell(
        self,
        category: str,
        direction: str,
        parameter: str | None,
        session_id: int | None,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        """Records of experiments in the cell (and of `parameter` or none, when given; of one
        session, when given), deepest and newest first, at most `limit`."""
        where = ["e.category = ?", "e.direction = ?"]
        params: list[Any] = [category, direction]
        if parameter:
            where.append("(e.parameter = ? OR e.parameter = '')")
            params.append(parameter)
        if session_id is not None:
            where.append("e.session_id = ?")
            params.append(session_id)
        return self.query(
            f"SELECT {self._ROUTE_COLUMNS}, e.session_id, e.category, e.direction, e.parameter"
            " FROM nk_records r JOIN experiments e ON e.id = r.experiment_id"
            f" WHERE {' AND '.join(where)} ORDER BY r.depth DESC, r.id DESC"
            + (f" LIMIT {int(limit)}" if limit is not None else ""),
            params,
        )

    def imported_nk_records(self, prefixes: Iterable[str]) -> list[dict[str, Any]]:
        """Records with no experiment in this bank whose route_key starts with one of
        `prefixes` (with their route_key)."""
        conditions = [self._starts_with("r.route_key", prefix) for prefix in prefixes]
        if not conditions:
            return []
        return self.query(
            f"SELECT {self._ROUTE_COLUMNS}, r.route_key FROM nk_records r"
            " WHERE r.experiment_id IS NULL AND ("
            + " OR ".join(sql for sql, _ in conditions)
            + ")",
            [value for _, values in conditions for value in values],
        )

    def _starts_with(self, column: str, prefix: str) -> tuple[str, list[str]]:
        """SQL true when `column` starts with `prefix`, as a range the route_key index serves
        (in byte order: PostgreSQL compares in the "C" collation, whatever the database's)."""
        collate = ' COLLATE "C"' if self.location.backend == "postgresql" else ""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return f"({column}{collate} >= ? AND {column}{collate} < ?)", [prefix, upper]

    def nk_route_keys_starting(self, prefix: str) -> list[dict[str, Any]]:
        """(id, route_key) of every record whose route_key starts with `prefix`."""
        return self.query(
            "SELECT id, route_key FROM nk_records WHERE substr(route_key, 1, ?) = ?",
            (len(prefix), prefix),
        )

    def set_nk_route_key(self, record_id: int, key: str) -> None:
        """Move one record onto another route_key."""
        self.execute("UPDATE nk_records SET route_key = ? WHERE id = ?", (key, record_id))

    def experiments_named(self, session_key: str, experiment_id: str) -> list[int]:
        """Bank ids of the experiments with this log id in the session with this key."""
        rows = self.query(
            "SELECT e.id FROM experiments e JOIN sessions s ON s.id = e.session_id"
            " WHERE s.session_key = ? AND e.experiment_id = ?",
            (session_key, experiment_id),
        )
        return [int(row["id"]) for row in rows]

    def experiment_log_ids(self, ids: Sequence[int]) -> dict[int, str]:
        """The log's own id of each experiment (bank id -> experiment_id)."""
        if not ids:
            return {}
        rows = self.query(
            f"SELECT id, experiment_id FROM experiments WHERE id IN ({_marks(ids)})", list(ids)
        )
        return {int(row["id"]): str(row["experiment_id"]) for row in rows}

    def nk_record_bodies(
        self, keys: Sequence[str], source: str, depth: int
    ) -> list[dict[str, Any]]:
        """(route_key, record_json) of the records of this source and depth on these keys,
        oldest first (500 keys a statement)."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            out += self.query(
                "SELECT route_key, record_json FROM nk_records WHERE depth = ? AND source = ?"
                f" AND route_key IN ({_marks(chunk)}) ORDER BY id",
                [depth, source, *chunk],
            )
        return out

    def nk_route_keys(
        self, source: str, depth: int, *, note_starting: str | None = None
    ) -> set[str]:
        """route_keys holding a record of this source and depth (whose note starts with
        `note_starting`, when given)."""
        if note_starting is None:
            rows = self.query(
                "SELECT route_key FROM nk_records WHERE source = ? AND depth = ?", (source, depth)
            )
        else:
            rows = self.query(
                "SELECT route_key FROM nk_records WHERE source = ? AND depth = ?"
                " AND substr(note, 1, ?) = ?",
                (source, depth, len(note_starting), note_starting),
            )
        return {row["route_key"] for row in rows}
