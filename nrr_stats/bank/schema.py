"""The bank's versioned schema: one list of migrations, applied in order on open.

Portable SQL where it can be (SQLite and PostgreSQL read the same statements); `{id}` is
replaced by the backend's auto-increment primary key type. A migration that needs each
backend's own SQL (triggers) maps backend name to statements.
"""

from __future__ import annotations

SCHEMA_VERSION = 4
# PostgreSQL advisory lock held by every transaction that inserts experiments (see migration 3),
# as (this key, hash of the bank's schema): banks in other schemas of the database do not wait.
INSERT_LOCK_KEY = 0x6E727269

# What each migration does, said before an older bank is upgraded (SQLite) or refused
# (PostgreSQL, until `nrr migrate`): agents on an older nrr-stats cannot open it afterwards.
MIGRATION_NOTES = {
    1: "creates the bank's tables",
    2: "adds each session's stored config-tracker state",
    3: "adds the evidence revision, its triggers, a sessions index and the insert lock",
    4: "adds the fit_posteriors table: fitted posteriors stored in the bank (bank/fits.py)",
}


def upgrade_summary(version: int, target: int = SCHEMA_VERSION) -> str:
    """What upgrading a bank of schema `version` to `target` does, in one phrase."""
    notes = (MIGRATION_NOTES.get(v, f"schema v{v}") for v in range(version + 1, target + 1))
    return "; ".join(notes)


MIGRATIONS: dict[int, list[str] | dict[str, list[str]]] = {
    1: [
        """CREATE TABLE sessions (
            id {id},
            session_key TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            source_path TEXT NOT NULL,
            metric_name TEXT NOT NULL,
            metric_direction TEXT NOT NULL,
            direction_source TEXT NOT NULL,
            header_json TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE experiments (
            id {id},
            session_id INTEGER NOT NULL REFERENCES sessions(id),
            ordinal INTEGER NOT NULL,
            row_number INTEGER NOT NULL,
            line_number INTEGER NOT NULL,
            experiment_id TEXT NOT NULL,
            metric DOUBLE PRECISION,
            status TEXT NOT NULL,
            raw_status TEXT NOT NULL,
            description TEXT NOT NULL,
            category TEXT NOT NULL,
            direction TEXT NOT NULL,
            parameter TEXT NOT NULL,
            from_value TEXT NOT NULL,
            to_value TEXT NOT NULL,
            outcome TEXT,
            delta DOUBLE PRECISION,
            config_before TEXT NOT NULL,
            evidence_weight DOUBLE PRECISION NOT NULL DEFAULT 1.0,
            fields_json TEXT NOT NULL,
            ingested_at TEXT NOT NULL,
            UNIQUE (session_id, ordinal)
        )""",
        "CREATE INDEX experiments_cell ON experiments (category, direction)",
        """CREATE TABLE decisions (
            id {id},
            created_at TEXT NOT NULL,
            proposal TEXT NOT NULL,
            session_id INTEGER REFERENCES sessions(id),
            verdict TEXT NOT NULL,
            p_keep DOUBLE PRECISION NOT NULL,
            answer_json TEXT NOT NULL
        )""",
        """CREATE TABLE fits (
            id {id},
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            model_version TEXT NOT NULL,
            n_experiments INTEGER NOT NULL,
            data_hash TEXT NOT NULL,
            passed INTEGER NOT NULL,
            diagnostics_json TEXT NOT NULL
        )""",
        """CREATE TABLE nk_records (
            id {id},
            experiment_id INTEGER REFERENCES experiments(id),
            route_key TEXT NOT NULL,
            depth INTEGER NOT NULL,
            source TEXT NOT NULL,
            record_json TEXT NOT NULL,
            evidence_weight DOUBLE PRECISION NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            UNIQUE (route_key, depth, source)
        )""",
        """CREATE TABLE record_events (
            id {id},
            record_id INTEGER NOT NULL REFERENCES nk_records(id),
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ],
    2: [
        # What the config tracker knew after the session's last row, so `nrr check` resumes it
        # without re-parsing the whole log.
        "ALTER TABLE sessions ADD COLUMN tracker_state TEXT NOT NULL DEFAULT '{{}}'",
    ],
    3: {
        # The evidence revision counts every change to a counted row other than an insert:
        # a reader that cached the bank's sums rereads them all when it moves, and otherwise
        # reads only the rows with ids past the last it saw.
        "sqlite": [
            "INSERT INTO meta (key, value) VALUES ('evidence_revision', '0')",
            # `nrr check` without --session answers for the most recently updated session.
            "CREATE INDEX sessions_updated ON sessions (updated_at, id)",
            """CREATE TRIGGER experiments_evidence_updated
            AFTER UPDATE OF session_id, status, category, direction, parameter, evidence_weight
            ON experiments
            WHEN OLD.session_id IS NOT NEW.session_id OR OLD.status IS NOT NEW.status
              OR OLD.category IS NOT NEW.category OR OLD.direction IS NOT NEW.direction
              OR OLD.parameter IS NOT NEW.parameter
              OR OLD.evidence_weight IS NOT NEW.evidence_weight
            BEGIN
              UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
              WHERE key = 'evidence_revision';
            END""",
            """CREATE TRIGGER experiments_evidence_deleted AFTER DELETE ON experiments
            BEGIN
              UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
              WHERE key = 'evidence_revision';
            END""",
        ],
        "postgresql": [
            "INSERT INTO meta (key, value) VALUES ('evidence_revision', '0')",
            "CREATE INDEX sessions_updated ON sessions (updated_at, id)",
            """CREATE FUNCTION nrr_evidence_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'evidence_revision';
              RETURN NULL;
            END $$""",
            """CREATE TRIGGER experiments_evidence_changed
            AFTER UPDATE OF session_id, status, category, direction, parameter, evidence_weight
            OR DELETE OR TRUNCATE ON experiments
            FOR EACH STATEMENT EXECUTE FUNCTION nrr_evidence_changed()""",
            # Inserts into experiments take one transaction-scoped lock before their ids are
            # drawn, so ids commit in order (as SQLite's single writer gives): a reader that
            # has seen id N has seen every row up to N, and reads only the rows past it.
            f"""CREATE FUNCTION nrr_insert_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_advisory_xact_lock({INSERT_LOCK_KEY}, hashtext(TG_TABLE_SCHEMA));
              RETURN NULL;
            END $$""",
            """CREATE TRIGGER experiments_insert_in_order BEFORE INSERT ON experiments
            FOR EACH STATEMENT EXECUTE FUNCTION nrr_insert_in_order()""",
        ],
    },
}

# A fitted posterior stored in the bank (bank/fits.py): the .npz a check reads and the netCDF
# for ArviZ, with the evidence state it was fitted at; the newest passing row answers. The
# bytes are kept in chunks (a large bank's draws pass PostgreSQL's 1 GB value limit, and one
# chunk at a time bounds what a reader holds in memory).
_FIT_POSTERIORS = """CREATE TABLE fit_posteriors (
    id {id},
    created_at TEXT NOT NULL,
    model_version TEXT NOT NULL,
    evidence_revision BIGINT NOT NULL,
    evidence_last_id BIGINT NOT NULL,
    n_experiments INTEGER NOT NULL,
    data_hash TEXT NOT NULL,
    passed INTEGER NOT NULL,
    diagnostics_json TEXT NOT NULL,
    fit_id TEXT NOT NULL,
    npz_sha256 TEXT NOT NULL UNIQUE,
    npz_bytes BIGINT NOT NULL,
    netcdf_sha256 TEXT NOT NULL,
    netcdf_bytes BIGINT NOT NULL
)"""
_FIT_CHUNKS = """CREATE TABLE fit_posterior_chunks (
    posterior_id INTEGER NOT NULL REFERENCES fit_posteriors(id) ON DELETE CASCADE,
    part TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data {blob} NOT NULL,
    PRIMARY KEY (posterior_id, part, seq)
)"""
_FIT_POSTERIORS_NEWEST = (
    "CREATE INDEX fit_posteriors_newest"
    " ON fit_posteriors (passed, evidence_revision, evidence_last_id, id)"
)
MIGRATIONS[4] = {
    "sqlite": [_FIT_POSTERIORS, _FIT_CHUNKS.format(blob="BLOB"), _FIT_POSTERIORS_NEWEST],
    "postgresql": [
        _FIT_POSTERIORS,
        _FIT_CHUNKS.format(blob="BYTEA"),
        _FIT_POSTERIORS_NEWEST,
        # Draws are dense floats: out of line and uncompressed, read back at disk speed.
        "ALTER TABLE fit_posterior_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
    ],
}
