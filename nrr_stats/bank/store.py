"""The bank: durable store of sessions, experiments, NK records, fits and decisions.

One class over a DB-API connection. SQL is written once with `?` placeholders; the
dialect turns them into the backend's style, so SQLite and PostgreSQL share every query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nrr_stats.bank.location import BankLocation
from nrr_stats.bank.nk_records import NkRecordTables
from nrr_stats.bank.schema import MIGRATIONS, SCHEMA_VERSION
from nrr_stats.errors import BankStorageError, NrrInputError

EXPERIMENT_COLUMNS = (
    "session_id",
    "ordinal",
    "row_number",
    "line_number",
    "experiment_id",
    "metric",
    "status",
    "raw_status",
    "description",
    "category",
    "direction",
    "parameter",
    "from_value",
    "to_value",
    "outcome",
    "delta",
    "config_before",
    "evidence_weight",
    "fields_json",
    "ingested_at",
)

# What a parse of a description sets on its row (`Bank.update_parsed`).
PARSED_COLUMNS = ("category", "direction", "parameter", "from_value", "to_value", "config_before")


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, the bank's one time format."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Bank(NkRecordTables):
    """A connection to one bank, with the queries every part of nrr-stats shares."""

    def __init__(self, location: BankLocation, connection: Any, *, placeholder: str = "?"):
        self.location = location
        self._connection = connection
        self._placeholder = placeholder
        self._depth = 0

    # -- plumbing ---------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement if self._placeholder == "?" else statement.replace("?", self._placeholder)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (inside the current transaction, if any) and return the cursor."""
        cursor = self._connection.cursor()
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows as dicts."""
        cursor = self.execute(statement, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[Bank]:
        """All statements inside commit together or not at all (nested calls join the outer one)."""
        with self._framed(self._begin) as bank:
            yield bank

    @contextmanager
    def snapshot(self) -> Iterator[Bank]:
        """Reads inside see one consistent state of the bank, whatever other processes commit meanwhile.

        A fit reads its data through this (PostgreSQL: REPEATABLE READ, READ ONLY; SQLite: one read transaction).
        """
        with self._framed(self._connection.begin_read) as bank:
            yield bank

    @contextmanager
    def _framed(self, begin: Callable[[], None]) -> Iterator[Bank]:
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        begin()
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._connection.rollback()
            raise
        else:
            self._connection.commit()
        finally:
            self._depth = 0

    def _begin(self) -> None:
        self._connection.begin()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Bank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files beside the bank --------------------------------------------------------------

    @property
    def posterior_path(self) -> Path:
        """The stored posterior of the last fit (ArviZ netCDF)."""
        return self.location.artifact(".posterior.nc")

    @property
    def evidence_path(self) -> Path:
        """The bank's leaf sums saved by the last process that read them all (.npz)."""
        return self.location.artifact(".evidence.npz")

    @property
    def features_path(self) -> Path:
        """The similarity feature matrix (memory-mapped .npy)."""
        return self.location.artifact(".features.npy")

    # -- schema -----------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The schema version recorded in the bank (the meta table must exist)."""
        rows = self.query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0]["value"]) if rows else 0

    def migrate(self, id_type: str) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction; refuse a newer bank."""
        with self.transaction():
            self.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise NrrInputError(
                    f"bank schema version {current} is newer than this nrr-stats ({SCHEMA_VERSION}); upgrade nrr-stats",
                    path=self.location.display,
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                statements = MIGRATIONS[version]
                if isinstance(statements, dict):
                    statements = statements[self.location.backend]
                for statement in statements:
                    self.execute(statement.format(id=id_type))
            if current != SCHEMA_VERSION:
                from nrr_stats import __version__

                self.execute("DELETE FROM meta WHERE key IN ('schema_version', 'nrr_version')")
                self.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('nrr_version', ?)",
                    (str(SCHEMA_VERSION), __version__),
                )

    # -- sessions and experiments -----------------------------------------------------------

    def upsert_session(self, session: Mapping[str, Any]) -> tuple[int, bool]:
        """Insert a session unless its key is known; return (id, created)."""
        now = utc_now()
        inserted = self.execute(
            "INSERT INTO sessions (session_key, name, source_path, metric_name, metric_direction,"
            " direction_source, header_json, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_key) DO NOTHING",
            (
                session["session_key"],
                session["name"],
                session["source_path"],
                session["metric_name"],
                session["metric_direction"],
                session["direction_source"],
                json.dumps(session["header"], ensure_ascii=False),
                now,
                now,
            ),
        ).rowcount
        row = self.query(
            "SELECT id FROM sessions WHERE session_key = ?", (session["session_key"],)
        )[0]
        if not inserted:
            self.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now, row["id"]))
        return int(row["id"]), bool(inserted)

    def insert_experiments(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert experiment rows, skipping any (session, ordinal) already stored; return how many were new."""
        statement = (
            f"INSERT INTO experiments ({', '.join(EXPERIMENT_COLUMNS)}) VALUES"
            f" ({', '.join('?' for _ in EXPERIMENT_COLUMNS)})"
            " ON CONFLICT (session_id, ordinal) DO NOTHING"
        )
        added = 0
        for row in rows:
            added += self.execute(statement, [row[c] for c in EXPERIMENT_COLUMNS]).rowcount
        return added

    def update_outcomes(
        self, session_id: int, outcomes: Mapping[int, tuple[str | None, float | None]]
    ) -> None:
        """Refresh outcome and delta by ordinal (thresholds move as a log grows)."""
        for ordinal, (outcome, delta) in outcomes.items():
            self.execute(
                "UPDATE experiments SET outcome = ?, delta = ? WHERE session_id = ? AND ordinal = ?",
                (outcome, delta, session_id, ordinal),
            )

    def update_parsed(self, session_id: int, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store a new parse of rows (by ordinal): category, direction, parameter, from, to and
        the kept configuration before each; return how many rows were written."""
        statement = (
            "UPDATE experiments SET category = ?, direction = ?, parameter = ?, from_value = ?,"
            " to_value = ?, config_before = ? WHERE session_id = ? AND ordinal = ?"
        )
        for row in rows:
            self.execute(
                statement,
                [row[c] for c in PARSED_COLUMNS] + [session_id, row["ordinal"]],
            )
        return len(rows)

    def cached_parses(self) -> dict[str, dict[str, str]]:
        """The model parser's cached answers, by description key (`nrr_stats.parser.llm`)."""
        rows = self.query("SELECT key, value FROM meta WHERE key LIKE 'parse:%'")
        return {row["key"][len("parse:") :]: json.loads(row["value"]) for row in rows}

    def store_parses(self, answers: Mapping[str, Mapping[str, str]]) -> None:
        """Cache model parser answers (an empty answer records that the model gave none)."""
        for key, fields in answers.items():
            self.execute("DELETE FROM meta WHERE key = ?", (f"parse:{key}",))
            self.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                (f"parse:{key}", json.dumps(dict(fields), sort_keys=True, ensure_ascii=False)),
            )

    def set_tracker_state(self, session_id: int, state: Mapping[str, Any]) -> None:
        """Store what the config tracker knew after the session's last row."""
        self.execute(
            "UPDATE sessions SET tracker_state = ? WHERE id = ?",
            (json.dumps(state, sort_keys=True, ensure_ascii=False), session_id),
        )

    def sessions(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM sessions ORDER BY id")

    def session(self, session_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM sessions WHERE id = ?", (session_id,))
        return rows[0] if rows else None

    def experiments(self, session_id: int | None = None) -> list[dict[str, Any]]:
        """Experiment rows in bank order (session, then position in the log)."""
        if session_id is None:
            return self.query("SELECT * FROM experiments ORDER BY session_id, ordinal")
        return self.query(
            "SELECT * FROM experiments WHERE session_id = ? ORDER BY ordinal", (session_id,)
        )

    def experiment_table(self, session_id: int | None = None):
        """The experiments the models count (keep / discard / crash), as an ExperimentTable."""
        from nrr_stats.models.data import ExperimentTable

        rows = self.query(
            "SELECT e.session_id, s.session_key, e.ordinal, e.category, e.direction, e.parameter,"
            " e.status, e.evidence_weight FROM experiments e JOIN sessions s ON s.id = e.session_id"
            + ("" if session_id is None else " WHERE e.session_id = ?")
            + " ORDER BY e.session_id, e.ordinal",
            () if session_id is None else (session_id,),
        )
        return ExperimentTable.from_records(
            {
                "session": row["session_key"],
                "category": row["category"],
                "direction": row["direction"],
                "parameter": row["parameter"],
                "status": row["status"],
                "weight": row["evidence_weight"],
                "position": row["ordinal"],
            }
            for row in rows
        )

    def evidence_sums(self, after_id: int = 0) -> list[tuple]:
        """Sums per leaf of the counted rows (keep, discard, crash) with ids past `after_id`:
        (session key, category, direction, parameter, *evidence.SUM_FIELDS) tuples."""
        cursor = self.execute(
            "SELECT s.session_key, e.category, e.direction, e.parameter,"
            " SUM(CASE WHEN e.status = 'keep' THEN e.evidence_weight ELSE 0 END),"
            " SUM(CASE WHEN e.status = 'crash' THEN e.evidence_weight ELSE 0 END),"
            " SUM(e.evidence_weight),"
            " SUM(CASE WHEN e.status = 'keep' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN e.status = 'crash' THEN 1 ELSE 0 END),"
            " COUNT(*)"
            " FROM experiments e JOIN sessions s ON s.id = e.session_id"
            " WHERE e.id > ? AND e.status IN ('keep', 'discard', 'crash')"
            " GROUP BY s.session_key, e.category, e.direction, e.parameter",
            (after_id,),
        )
        return cursor.fetchall()

    def evidence_state(self) -> tuple[int, int]:
        """(evidence revision, last experiment id): a reading of the bank's sums holds while
        the revision stands, and rows past its last id are then all that is new.

        Both backends commit experiment ids in order (SQLite has one writer; on PostgreSQL
        every insert into experiments takes one transaction-scoped lock first, schema v3).
        """
        row = self.query(  # one statement: one round trip, one snapshot
            "SELECT (SELECT value FROM meta WHERE key = 'evidence_revision') AS revision,"
            " (SELECT MAX(id) FROM experiments) AS last"
        )[0]
        return int(row["revision"]), int(row["last"] or 0)

    def lock_inserts(self) -> None:
        """Inside a transaction: take the insert lock now, before any row lock (PostgreSQL; a
        no-op on SQLite, whose write transactions already run one at a time)."""
        if self.location.backend == "postgresql":
            from nrr_stats.bank.schema import INSERT_LOCK_KEY

            got = self.query(
                "SELECT pg_try_advisory_xact_lock(?, hashtext(current_schema())) AS got",
                (INSERT_LOCK_KEY,),
            )[0]["got"]
            if not got:
                from nrr_stats.notices import say

                say(
                    f"{self.location.display}: waiting up to"
                    f" {self._connection.lock_timeout:g} s for the bank's insert lock"
                    " (another agent is ingesting; --lock-timeout sets the wait)"
                )
                self.execute(
                    "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))",
                    (INSERT_LOCK_KEY,),
                )

    def find_session(self, reference: str | int) -> dict[str, Any] | None:
        """The session `reference` names: an id, a name, a log's path or a session key.

        None when nothing matches; an input error listing the candidates when several do (two
        loops' `results.tsv`: give the id, the path or the name set with --session-name).
        """
        found = self.find_sessions(reference)
        if len(found) > 1:
            listed = "; ".join(
                f"id {row['id']} {row['name']!r} ({row['source_path']})" for row in found[:10]
            )
            raise NrrInputError(
                f"--session {str(reference)!r} is ambiguous: {len(found)} sessions match"
                f" ({listed}); give the id or the path",
                path=self.location.display,
            )
        return found[0] if found else None

    def find_sessions(self, reference: str | int) -> list[dict[str, Any]]:
        """Every session `reference` could name, the most exact kind of match first: an id; else
        the log path as given or resolved; else the session name or key; else the file name."""
        text = str(reference).strip()
        # Only ASCII digits in a bank id's range are an id ('²', '9' * 20 are names).
        if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2**63:
            rows = self.query("SELECT * FROM sessions WHERE id = ?", (int(text),))
            if rows:
                return rows
        paths = {text}
        with suppress(OSError, RuntimeError, ValueError):  # ValueError: a NUL in it
            paths.add(str(Path(text).expanduser().resolve()))
        marks = ", ".join("?" for _ in paths)
        for statement, params in (
            (f"SELECT * FROM sessions WHERE source_path IN ({marks}) ORDER BY id", tuple(paths)),
            ("SELECT * FROM sessions WHERE name = ? OR session_key = ? ORDER BY id", (text, text)),
        ):
            rows = self.query(statement, params)
            if rows:
                return rows
        return [
            row
            for row in self.query(
                "SELECT * FROM sessions WHERE source_path LIKE ? ORDER BY id",
                (f"%{Path(text).name}",),
            )
            if Path(row["source_path"]).name == text
        ]

    def session_summaries(self) -> list[dict[str, Any]]:
        """Per session: id, name, path, rows, counted experiments, keeps, crashes, last update."""
        return self.query(
            "SELECT s.id, s.name, s.source_path, s.session_key, s.updated_at,"
            " COUNT(e.id) AS rows,"
            " SUM(CASE WHEN e.status IN ('keep', 'discard', 'crash') THEN 1 ELSE 0 END) AS experiments,"
            " SUM(CASE WHEN e.status = 'keep' THEN 1 ELSE 0 END) AS keeps,"
            " SUM(CASE WHEN e.status = 'crash' THEN 1 ELSE 0 END) AS crashes,"
            " MAX(e.ingested_at) AS last_row_at"
            " FROM sessions s LEFT JOIN experiments e ON e.session_id = s.id"
            " GROUP BY s.id, s.name, s.source_path, s.session_key, s.updated_at ORDER BY s.id"
        )

    def experiment_notes(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """By experiment row id: the log's experiment id (the commit hash), outcome, delta and
        the newest depth-1 NK record's JSON (None when not curated)."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        rows = self.query(
            "SELECT e.id, e.experiment_id, e.outcome, e.delta,"
            " (SELECT r.record_json FROM nk_records r WHERE r.experiment_id = e.id AND r.depth = 1"
            "  ORDER BY r.id DESC LIMIT 1) AS record_json"
            f" FROM experiments e WHERE e.id IN ({marks})",
            ids,
        )
        return {int(row["id"]): row for row in rows}

    def latest_session(self) -> dict[str, Any] | None:
        """The most recently updated session (ties: the newest)."""
        rows = self.query("SELECT * FROM sessions ORDER BY updated_at DESC, id DESC LIMIT 1")
        return rows[0] if rows else None

    def count_sessions(self) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM sessions")[0]["n"])

    def has_nk_records(self) -> bool:
        """Whether any NK record is stored (a check skips the curator's code when none is)."""
        return bool(self.query("SELECT 1 AS x FROM nk_records LIMIT 1"))

    def count_experiments(self, *, up_to_id: int | None = None) -> int:
        """Experiment rows (with ids up to `up_to_id`, when given)."""
        if up_to_id is None:
            return int(self.query("SELECT COUNT(*) AS n FROM experiments")[0]["n"])
        where = "SELECT COUNT(*) AS n FROM experiments WHERE id <= ?"
        return int(self.query(where, (int(up_to_id),))[0]["n"])

    def record_decision(
        self, proposal: str, session_id: int | None, answer: Mapping[str, Any]
    ) -> int | None:
        """Keep what `nrr check` answered, for audit and later calibration; return its id, or
        None when it was queued beside the bank (bank/decision_queue.py) because the write lock
        was not free within DECISION_LOCK_TIMEOUT (an ingest holds it for its whole
        transaction): a check never waits on an ingest for its bookkeeping. Queued decisions
        are folded in by the next decision that gets the lock. Raises BankStorageError when the
        decision can be neither written nor queued (full disk, read-only). What is stored is
        capped (`capped_decision`)."""
        import nrr_stats.bank.decision_queue as decision_queue

        stored_proposal, stored_answer = capped_decision(proposal, answer)
        entry = {
            "created_at": utc_now(),
            "proposal": stored_proposal,
            "session_id": session_id,
            "verdict": answer["verdict"],
            "p_keep": float(answer["p_keep"]),
            "answer_json": stored_answer,
        }
        connection = self._connection
        try:
            with (
                connection.waiting_at_most(DECISION_LOCK_TIMEOUT),
                connection.bookkeeping(),
                self.transaction(),
            ):
                decision_id = self._insert_decision(entry)
                folded = self._fold_decision_queue()
        except BankStorageError as error:
            if not error.message.startswith("gave up after"):  # not a lock wait: not queued
                raise
            try:
                decision_queue.append(self.decision_queue_path, entry)
            except OSError:
                raise error from None
            return None
        for claimed in folded:  # their lines are in the bank (and their tokens in meta)
            claimed.unlink(missing_ok=True)
        return decision_id

    @property
    def decision_queue_path(self) -> Path:
        """Decisions queued beside the bank while its write lock was held (JSON lines)."""
        return self.location.artifact(".decisions.queue")

    def queued_decisions(self) -> int:
        """Decisions queued beside the bank (on this machine) and not yet folded in."""
        import nrr_stats.bank.decision_queue as decision_queue

        return decision_queue.pending(self.decision_queue_path)

    def _insert_decision(self, entry: Mapping[str, Any]) -> int:
        # RETURNING, not MAX(id): on PostgreSQL another agent's decision may commit meanwhile.
        inserted = self.query(
            "INSERT INTO decisions (created_at, proposal, session_id, verdict, p_keep, answer_json)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            tuple(entry[c] for c in DECISION_COLUMNS),
        )
        return int(inserted[0]["id"])

    def _fold_decision_queue(self) -> list[Path]:
        """Inside a decision's write transaction: insert the queued decisions, recording each
        claim's token in meta with them; return the claimed files to delete after the commit.
        SQLite folds under its write lock; PostgreSQL under a try-lock (one folder at a time)."""
        import nrr_stats.bank.decision_queue as decision_queue

        path = self.decision_queue_path
        claims = decision_queue.claimed_files(path)
        if not claims and not path.exists():
            return []
        if self.location.backend == "postgresql":
            from nrr_stats.bank.schema import INSERT_LOCK_KEY

            got = self.query(
                "SELECT pg_try_advisory_xact_lock(?, hashtext(current_schema())) AS got",
                (INSERT_LOCK_KEY + 1,),
            )[0]["got"]
            if not got:
                return []
            claims = decision_queue.claimed_files(path)
        listed = list(claims)
        claims = claims[: decision_queue.FOLD_SEGMENTS]  # the rest: later decisions' folds
        fresh = decision_queue.claim(path) if len(claims) < decision_queue.FOLD_SEGMENTS else None
        claims += [fresh] if fresh is not None else []
        prefix = decision_queue.FOLDED_KEY + decision_queue.queue_tag(path) + "."
        folded = {
            row["key"]
            for row in self.query("SELECT key FROM meta WHERE key LIKE ?", (prefix + "%",))
        }
        keys = set()
        for claimed in claims:
            key = decision_queue.FOLDED_KEY + decision_queue.token_of(claimed)
            keys.add(key)
            if key in folded:  # folded by a process killed before it deleted the file
                self.execute("DELETE FROM meta WHERE key = ?", (key,))
                continue
            for entry in decision_queue.read_claimed(claimed):
                self._insert_decision(entry)
            self.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, utc_now()))
        keys |= {decision_queue.FOLDED_KEY + decision_queue.token_of(c) for c in listed}
        for key in folded - keys:  # their files were deleted after their fold committed
            self.execute("DELETE FROM meta WHERE key = ?", (key,))
        return claims

    # -- reads for the similarity store, the search and the report -------------------------

    def experiment_id_range(self) -> tuple[int | None, int]:
        """(last experiment id or None, number of experiments)."""
        row = self.query("SELECT MAX(id) AS last_id, COUNT(*) AS n FROM experiments")[0]
        return (None if row["last_id"] is None else int(row["last_id"])), int(row["n"])

    def feature_rows(
        self,
        *,
        session_ids: Sequence[int] | None = None,
        after_id: int | None = None,
        upto_id: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The columns the similarity store reads, in id order: every row, or those of some
        sessions, with ids past `after_id` and up to `upto_id`; at most `limit` of them."""
        clauses: list[str] = []
        params: list[Any] = []
        if session_ids is not None:
            ids = [int(s) for s in session_ids]
            clauses.append(f"session_id IN ({', '.join('?' * len(ids))})")
            params += ids
        if after_id is not None:
            clauses.append("id > ?")
            params.append(int(after_id))
        if upto_id is not None:
            clauses.append("id <= ?")
            params.append(int(upto_id))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        page = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.query(
            "SELECT id, session_id, description, category, direction, parameter, from_value,"
            " to_value, outcome, status FROM experiments" + where + " ORDER BY id" + page,
            params,
        )

    def experiment_details(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """What a similar failure shows, for these experiment ids."""
        if not ids:
            return []
        return self.query(
            "SELECT id, session_id, description, category, direction, parameter, to_value,"
            f" status, outcome, delta FROM experiments WHERE id IN ({', '.join('?' * len(ids))})",
            [int(i) for i in ids],
        )

    def experiment_ids_in_cell(self, category: str, direction: str) -> list[int]:
        """Ids of the experiments in one (category, direction) cell."""
        rows = self.query(
            "SELECT id FROM experiments WHERE category = ? AND direction = ?", (category, direction)
        )
        return [int(row["id"]) for row in rows]

    def experiments_where(self, column: str, value: Any) -> list[dict[str, Any]]:
        """Whole experiment rows whose `column` (id or experiment_id) equals `value`."""
        if column not in ("id", "experiment_id"):
            raise ValueError(f"experiments are looked up by id or experiment_id, not {column}")
        return self.query(f"SELECT * FROM experiments WHERE {column} = ? ORDER BY id", (value,))

    def recent_decisions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last recorded `nrr check` answers, newest first."""
        return self.query("SELECT * FROM decisions ORDER BY id DESC LIMIT ?", (int(limit),))


# A decision's record waits this long for the bank's write lock (none), then the decision is queued
# beside the bank (`Bank.record_decision`): queueing costs less than any wait.
DECISION_LOCK_TIMEOUT = 0.0
DECISION_COLUMNS = ("created_at", "proposal", "session_id", "verdict", "p_keep", "answer_json")
# What one decision stores at most: the proposal's first characters and the answer's JSON.
DECISION_PROPOSAL_CHARS = 4000
DECISION_ANSWER_CHARS = 16000


def capped_decision(proposal: str, answer: Mapping[str, Any]) -> tuple[str, str]:
    """The proposal and answer JSON a decision stores: a long proposal is cut (with its length
    and sha256, so repeats are still told apart) and the answer's bulky lists dropped past
    DECISION_ANSWER_CHARS, so one check never writes more than ~20 KB."""
    text = proposal
    if len(text) > DECISION_PROPOSAL_CHARS:
        import hashlib  # only for a long proposal: ~2 ms to load in a cold check

        digest = hashlib.sha256(proposal.encode("utf-8", "surrogatepass")).hexdigest()
        text = (
            proposal[:DECISION_PROPOSAL_CHARS]
            + f" [... cut: {len(proposal)} characters, sha256 {digest}]"
        )
    stored = json.dumps(answer, ensure_ascii=False)
    if len(stored) > DECISION_ANSWER_CHARS:
        slim = {k: v for k, v in answer.items() if not isinstance(v, (list, dict)) or k == "fit"}
        slim = {k: (v[:500] if isinstance(v, str) else v) for k, v in slim.items()}
        slim["cut"] = "similar_failures, patterns and nk_records dropped: over the size cap"
        stored = json.dumps(slim, ensure_ascii=False)
    return text, stored


def say_upgrade(location: BankLocation, version: int, *, allowed: bool) -> None:
    """Say what upgrading an older bank does, or refuse when upgrading is not allowed."""
    from nrr_stats import __version__
    from nrr_stats.bank.schema import upgrade_summary

    what = upgrade_summary(version, SCHEMA_VERSION)
    if not allowed:
        raise NrrInputError(
            f"bank schema v{version} is older than this nrr-stats {__version__} (v{SCHEMA_VERSION});"
            f" upgrading it ({what}) locks out agents running older nrr-stats:"
            " run `nrr migrate --bank ...` to upgrade",
            path=location.display,
        )
    from nrr_stats.notices import warn

    warn(
        f"{location.display}: upgrading the bank's schema v{version} -> v{SCHEMA_VERSION}"
        f" ({what}); nrr-stats older than {__version__} can no longer open it"
    )
