"""Embedded SQLite audit store (the offline default): same interface and semantics as Postgres."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
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


class SqliteAuditStore:
    """One file, one connection guarded by a lock (the graph may write from worker threads)."""

    backend = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise AuditUnavailable(f"cannot open SQLite audit store {path}: {exc}") from exc
        self._lock = threading.Lock()
        self.migrate()

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        with self._lock, self._conn:
            self._conn.execute(SCHEMA_MIGRATIONS_DDL)
            applied = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
            done = []
            for version, sql in pending("sqlite", applied):
                for stmt in statements(sql):
                    self._conn.execute(stmt)
                self._conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, datetime.now(timezone.utc).isoformat()),
                )
                done.append(version)
        return done

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._lock, self._conn:
                return list(self._conn.execute(sql, params))
        except sqlite3.OperationalError as exc:
            raise AuditUnavailable(f"SQLite audit store {self.path}: {exc}") from exc

    def record_decision(self, decision: Decision) -> str:
        """Insert once per ticket id; a repeat is ignored and returns the original audit id."""
        self._run(insert_sql("decisions", DECISION_COLUMNS, "?", conflict=None), decision_row(decision))
        rows = self._run("SELECT audit_id FROM decisions WHERE ticket_id = ?", (decision.ticket_id,))
        return str(rows[0][0])

    def record_action(self, action: HumanAction) -> str:
        """Insert once per idempotency key (a replayed resume is ignored)."""
        self._run(insert_sql("human_actions", ACTION_COLUMNS, "?", conflict=None), action_row(action))
        return action.key()

    def get_decision(self, ticket_id: str) -> dict | None:
        rows = self._run("SELECT audit_id, record FROM decisions WHERE ticket_id = ?", (ticket_id,))
        if not rows:
            return None
        return {"audit_id": rows[0][0], **json.loads(rows[0][1])}

    def list_actions(self, ticket_id: str) -> list[dict]:
        cols = ACTION_READ_COLUMNS
        query = f"SELECT {', '.join(cols)} FROM human_actions WHERE ticket_id = ? ORDER BY created_at"
        rows = self._run(query, (ticket_id,))
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def count_decisions(self, ticket_id: str | None = None) -> int:
        if ticket_id is None:
            return int(self._run("SELECT count(*) FROM decisions")[0][0])
        return int(self._run("SELECT count(*) FROM decisions WHERE ticket_id = ?", (ticket_id,))[0][0])

    def feedback_rows(self) -> list[tuple[str, str]]:
        """(ticket text, corrected intent) for every correction; the latest correction per ticket wins."""
        rows = self._run(
            "SELECT d.record, a.corrected_intent FROM human_actions a"
            " JOIN decisions d ON d.ticket_id = a.ticket_id"
            " WHERE a.corrected_intent IS NOT NULL ORDER BY a.created_at"
        )
        latest: dict[str, tuple[str, str]] = {}
        for record, label in rows:
            rec = json.loads(record)
            latest[rec["ticket_id"]] = (rec.get("text", ""), label)
        return [v for v in latest.values() if v[0]]

    def close(self) -> None:
        self._conn.close()
