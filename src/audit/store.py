"""The audit store interface and the factory that picks the backend from Settings.

Postgres when ``TRIAGE_DATABASE_URL`` is set, the embedded SQLite file otherwise; either way wrapped
in the durable outbox so a database outage never loses a decision.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from src.audit.errors import AuditUnavailable
from src.audit.models import Decision, HumanAction
from src.config import Settings, get_settings

__all__ = ["AuditStore", "AuditUnavailable", "open_audit_store"]


@runtime_checkable
class AuditStore(Protocol):
    backend: str

    def record_decision(self, decision: Decision) -> str:
        """Write the decision once per ticket id; returns the audit id (same id on repeats)."""
        ...

    def record_action(self, action: HumanAction) -> str:
        """Write a reviewer action once per idempotency key; returns the key."""
        ...

    def get_decision(self, ticket_id: str) -> dict | None: ...

    def list_actions(self, ticket_id: str) -> list[dict]: ...

    def count_decisions(self, ticket_id: str | None = None) -> int: ...

    def feedback_rows(self) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


def open_audit_store(settings: Settings | None = None, *, outbox: bool = True) -> AuditStore:
    """Postgres if ``settings.database_url`` is set, else SQLite at ``settings.sqlite_path``."""
    from src.audit.outbox import OutboxAuditStore

    settings = settings or get_settings()
    inner: AuditStore
    if settings.database_url:
        from src.audit.postgres_store import PostgresAuditStore

        inner = PostgresAuditStore(settings.database_url, schema=settings.database_schema)
    else:
        from src.audit.sqlite_store import SqliteAuditStore

        inner = SqliteAuditStore(settings.sqlite_path)
    return OutboxAuditStore(inner, settings.outbox_dir) if outbox else inner
