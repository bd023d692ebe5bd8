"""Embedded SQLite audit store (the offline default): the shared SQL store on one locked connection."""

from __future__ import annotations

from pathlib import Path

from src.audit.db import SqliteDatabase
from src.audit.sql_store import SqlAuditStore


class SqliteAuditStore(SqlAuditStore):
    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteDatabase(path))
        self.path = Path(path)
