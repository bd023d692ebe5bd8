"""The audit store interface and the factory that picks the backend from Settings.

Postgres when ``TRIAGE_DATABASE_URL`` is set, the embedded SQLite file otherwise; either way wrapped
in the durable outbox so a database outage never loses a decision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from src.audit.errors import AuditRejected, AuditUnavailable
from src.audit.models import Decision, HumanAction
from src.config import Settings, get_settings

__all__ = ["AuditRejected", "AuditStore", "AuditUnavailable", "open_audit_store"]


@runtime_checkable
class AuditStore(Protocol):
    backend: str
    db: Any  # src.audit.db.Database: stores kept next to the audit log share it

    def record_decision(self, decision: Decision) -> str:
        """Write the decision once per ticket id; returns the audit id (same id on repeats)."""
        ...

    def record_action(self, action: HumanAction) -> str:
        """Write a reviewer action once per idempotency key (marks the decision completed)."""
        ...

    def get_decision(self, ticket_id: str) -> dict | None:
        """The decision record plus ``audit_id`` and ``status`` (auto_resolved|pending_review|completed)."""
        ...

    def list_decisions(
        self, route: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict]: ...

    def list_actions(self, ticket_id: str) -> list[dict]: ...

    def count_decisions(self, ticket_id: str | None = None) -> int: ...

    def feedback_rows(self) -> list[tuple[str, str]]: ...

    def review_log(self, since: datetime | None = None) -> list[dict]:
        """Every human action with its decision record, oldest first (labelled data with provenance)."""
        ...

    def save_private(
        self, ticket_id: str, raw_text: str, subject: str | None = None, metadata: dict | None = None
    ) -> None: ...

    def save_pii_map(self, ticket_id: str, mapping: dict[str, str]) -> None: ...

    def get_private(self, ticket_id: str) -> dict | None: ...

    def purge_private(self, before: datetime, *, dry_run: bool = False) -> dict[str, int]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def open_audit_store(settings: Settings | None = None, *, outbox: bool = True) -> AuditStore:
    """Postgres if ``settings.database_url`` is set, else SQLite at ``settings.sqlite_path``."""
    from src.audit.db import open_database
    from src.audit.outbox import OutboxAuditStore
    from src.audit.sql_store import SqlAuditStore

    settings = settings or get_settings()
    inner: Any = SqlAuditStore(open_database(settings))
    return OutboxAuditStore(inner, settings.outbox_dir) if outbox else inner
