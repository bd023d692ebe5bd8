"""Explicit, versioned schema for both backends; applied at start, recorded in ``schema_migrations``.

Append new migrations; never edit an applied one. Uniqueness on ``ticket_id`` (decisions) and on
``action_key`` (human actions) is what makes the writes idempotent.
"""

from __future__ import annotations

# One DDL text per migration; the dialects differ only in column types, filled in per backend.
_TYPES: dict[str, dict[str, str]] = {
    "postgres": {"float": "DOUBLE PRECISION", "ts": "TIMESTAMPTZ", "now": "now()", "json": "JSONB"},
    "sqlite": {"float": "REAL", "ts": "TEXT", "now": "CURRENT_TIMESTAMP", "json": "TEXT"},
}

_MIGRATION_TEMPLATES: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE IF NOT EXISTS decisions (
            audit_id TEXT PRIMARY KEY,
            ticket_id TEXT NOT NULL UNIQUE,
            content_hash TEXT NOT NULL,
            channel TEXT NOT NULL,
            bundle_version TEXT,
            intent TEXT,
            route TEXT NOT NULL,
            score {float} NOT NULL,
            trace_id TEXT,
            created_at {ts} NOT NULL,
            recorded_at {ts} NOT NULL DEFAULT {now},
            record {json} NOT NULL
        );
        CREATE TABLE IF NOT EXISTS human_actions (
            action_key TEXT PRIMARY KEY,
            audit_id TEXT NOT NULL,
            ticket_id TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            edited_draft TEXT,
            corrected_intent TEXT,
            team TEXT,
            note TEXT,
            created_at {ts} NOT NULL
        );
        CREATE INDEX IF NOT EXISTS human_actions_ticket ON human_actions (ticket_id);
        """,
    ),
    (
        2,
        # status: auto_resolved | pending_review | completed (set when a completing human action lands).
        # pii_vault: the raw ticket text and PII map live here, never in graph state or checkpoints,
        # and are purged by `python -m src.audit.retention` once the ticket is finished.
        """
        ALTER TABLE decisions ADD COLUMN status TEXT NOT NULL DEFAULT 'pending_review';
        UPDATE decisions SET status = 'auto_resolved' WHERE route = 'auto_resolve';
        ALTER TABLE decisions ADD COLUMN completed_at {ts};
        CREATE INDEX IF NOT EXISTS decisions_status_route ON decisions (status, route, created_at);
        CREATE TABLE IF NOT EXISTS pii_vault (
            ticket_id TEXT PRIMARY KEY,
            raw_text TEXT,
            subject TEXT,
            metadata {json},
            pii_map {json},
            created_at {ts} NOT NULL,
            purged_at {ts}
        )
        """,
    ),
    (
        5,
        # H4 (service, src/api/store.py): API keys (hashed), intake records (the durable queue of
        # record: written before 202), Idempotency-Key claims, webhook delivery dedupe. Times: epoch s.
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            key_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            salt TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            created_at {float} NOT NULL,
            revoked_at {float}
        );
        CREATE TABLE IF NOT EXISTS intake (
            ticket_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            source_id TEXT,
            state TEXT NOT NULL,
            payload {json} NOT NULL,
            nonce TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            accepted_at {float} NOT NULL,
            updated_at {float} NOT NULL,
            decided_at {float},
            route TEXT,
            status TEXT,
            last_error TEXT,
            writeback TEXT
        );
        CREATE INDEX IF NOT EXISTS intake_state ON intake (state, updated_at);
        CREATE TABLE IF NOT EXISTS idempotency_keys (
            scope_key TEXT PRIMARY KEY,
            ticket_id TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            created_at {float} NOT NULL
        );
        CREATE TABLE IF NOT EXISTS webhook_deliveries (
            provider TEXT NOT NULL,
            delivery_key TEXT NOT NULL,
            nonce TEXT NOT NULL,
            received_at {float} NOT NULL,
            PRIMARY KEY (provider, delivery_key)
        )
        """,
    ),
    (
        7,
        # H8 (model lifecycle, docs/lifecycle.md): a reviewer can mark a ticket as a bad example (never
        # used for training or the knowledge base); a candidate bundle's shadow scores of live tickets.
        """
        ALTER TABLE human_actions ADD COLUMN bad_example INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE IF NOT EXISTS shadow_scores (
            ticket_id TEXT NOT NULL,
            candidate_version TEXT NOT NULL,
            serving_version TEXT,
            serving_intent TEXT,
            serving_confidence {float},
            serving_route TEXT,
            candidate_intent TEXT,
            candidate_confidence {float},
            candidate_route TEXT,
            created_at {ts} NOT NULL,
            PRIMARY KEY (ticket_id, candidate_version)
        )
        """,
    ),
]

MIGRATIONS: dict[str, list[tuple[int, str]]] = {
    dialect: [(version, sql.format(**types)) for version, sql in _MIGRATION_TEMPLATES]
    for dialect, types in _TYPES.items()
}

SCHEMA_MIGRATIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
)


def pending(dialect: str, applied: set[int]) -> list[tuple[int, str]]:
    """Migrations of ``dialect`` not yet applied, in order."""
    return [(v, sql) for v, sql in sorted(MIGRATIONS[dialect]) if v not in applied]


def statements(sql: str) -> list[str]:
    """Split a migration into single statements (no semicolons inside our DDL)."""
    return [s.strip() for s in sql.split(";") if s.strip()]


DECISION_COLUMNS = (
    "audit_id", "ticket_id", "content_hash", "channel", "bundle_version", "intent",
    "route", "score", "trace_id", "created_at", "record", "status",
)  # fmt: skip
ACTION_COLUMNS = (
    "action_key", "audit_id", "ticket_id", "actor", "action", "edited_draft",
    "corrected_intent", "team", "note", "created_at", "bad_example",
)  # fmt: skip
ACTION_READ_COLUMNS = tuple(c for c in ACTION_COLUMNS if c not in ("audit_id", "ticket_id"))


def insert_sql(table: str, columns: tuple[str, ...], placeholder: str, *, conflict: str | None) -> str:
    """``INSERT ... ON CONFLICT DO NOTHING`` (Postgres) or ``INSERT OR IGNORE`` (SQLite, conflict=None)."""
    cols = ", ".join(columns)
    values = ", ".join([placeholder] * len(columns))
    if conflict is None:
        return f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({values})"
    return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({conflict}) DO NOTHING"
