"""Postgres audit store (psycopg 3): explicit migrations at start, idempotent upsert-or-ignore writes.

A short-lived connection per operation keeps it robust to server restarts (no stale connection to
heal) at a cost of a few ms on a local network — negligible next to an LLM call. Any connection or
server failure becomes ``AuditUnavailable`` so the caller can fall back to the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from src.audit.errors import AuditUnavailable
from src.audit.migrations import (
    ACTION_COLUMNS,
    ACTION_READ_COLUMNS,
    DECISION_COLUMNS,
    SCHEMA_MIGRATIONS_DDL,
    insert_sql,
    pending,
    statements,
)
from src.audit.models import Decision, HumanAction, action_row, decision_row

MIGRATION_LOCK_KEY = 0x7421A6E  # advisory lock: two processes starting together migrate once


class PostgresAuditStore:
    backend = "postgres"

    def __init__(self, url: str, *, schema: str = "public", connect_timeout: int = 3) -> None:
        self.url = url
        self.schema = schema
        self.connect_timeout = connect_timeout
        self._migrated = False
        self._last_applied: list[int] = []
        # server down at start: migrate on the first successful connection (outbox meanwhile)
        with suppress(AuditUnavailable):
            self.migrate()

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        import psycopg
        from psycopg import sql

        try:
            with psycopg.connect(self.url, connect_timeout=self.connect_timeout) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
                if not self._migrated:
                    self._apply_migrations(conn)
                yield conn
        except psycopg.OperationalError as exc:
            raise AuditUnavailable(f"Postgres audit store unreachable: {exc}") from exc
        except psycopg.errors.InterfaceError as exc:  # pragma: no cover - connection dropped mid-call
            raise AuditUnavailable(f"Postgres audit store connection lost: {exc}") from exc

    def migrate(self) -> list[int]:
        """Apply pending migrations now; returns the versions applied."""
        self._migrated = False
        with self._connect():
            pass
        return self._last_applied

    def _apply_migrations(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute(SCHEMA_MIGRATIONS_DDL)
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            done = []
            for version, ddl in pending("postgres", applied):
                for stmt in statements(ddl):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now()::text)", (version,)
                )
                done.append(version)
        self._last_applied = done
        self._migrated = True

    def record_decision(self, decision: Decision) -> str:
        """Insert once per ticket id; a repeat is ignored and returns the original audit id."""
        sql_insert = insert_sql("decisions", DECISION_COLUMNS, "%s", conflict="ticket_id")
        with self._connect() as conn:
            conn.execute(sql_insert, decision_row(decision))
            row = conn.execute(
                "SELECT audit_id FROM decisions WHERE ticket_id = %s", (decision.ticket_id,)
            ).fetchone()
        return str(row[0])

    def record_action(self, action: HumanAction) -> str:
        """Insert once per idempotency key (a replayed resume is ignored)."""
        sql_insert = insert_sql("human_actions", ACTION_COLUMNS, "%s", conflict="action_key")
        with self._connect() as conn:
            conn.execute(sql_insert, action_row(action))
        return action.key()

    def get_decision(self, ticket_id: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT audit_id, record FROM decisions WHERE ticket_id = %s", (ticket_id,)
            ).fetchone()
        if row is None:
            return None
        record = row[1] if isinstance(row[1], dict) else json.loads(row[1])
        return {"audit_id": row[0], **record}

    def list_actions(self, ticket_id: str) -> list[dict]:
        cols = ACTION_READ_COLUMNS
        query = f"SELECT {', '.join(cols)} FROM human_actions WHERE ticket_id = %s ORDER BY created_at"
        with self._connect() as conn:
            rows = conn.execute(query, (ticket_id,)).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def count_decisions(self, ticket_id: str | None = None) -> int:
        with self._connect() as conn:
            if ticket_id is None:
                return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
            row = conn.execute("SELECT count(*) FROM decisions WHERE ticket_id = %s", (ticket_id,)).fetchone()
            return int(row[0])

    def feedback_rows(self) -> list[tuple[str, str]]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT d.record->>'text', a.corrected_intent, a.ticket_id FROM human_actions a"
                " JOIN decisions d ON d.ticket_id = a.ticket_id WHERE a.corrected_intent IS NOT NULL"
                " ORDER BY a.created_at"
            ).fetchall()
        latest = {ticket: (text or "", label) for text, label, ticket in rows}
        return [v for v in latest.values() if v[0]]

    def drop_schema(self) -> None:
        """Remove this store's schema (tests use a throwaway schema per run)."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def close(self) -> None:
        """Nothing held open between operations."""
