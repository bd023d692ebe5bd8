"""Postgres audit store: the shared SQL store on a pooled, health-checked ``PostgresDatabase``.

Connections come from a ``psycopg_pool`` pool that checks each one before use, so a Postgres
restart (or a killed backend) is healed on the next call; migrations run once when the store is
opened. Connection/server failures raise ``AuditUnavailable`` (the outbox keeps the record).
"""

from __future__ import annotations

from src.audit.db import PostgresDatabase
from src.audit.sql_store import SqlAuditStore


class PostgresAuditStore(SqlAuditStore):
    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        connect_timeout: int = 3,
        pool_size: int = 10,
        pool_timeout: float | None = None,
    ) -> None:
        db = PostgresDatabase(
            url,
            schema=schema,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
        )
        super().__init__(db)
        self.schema = schema

    def drop_schema(self) -> None:
        """Remove this store's schema (tests use a throwaway schema per run)."""
        self.db.drop_schema()  # type: ignore[attr-defined]
