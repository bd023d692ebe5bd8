"""Checkpointer factory: SQLite file by default, Postgres when ``TRIAGE_DATABASE_URL`` is set.

The checkpointer is what lets a ticket pause for a human (``interrupt``) in one process and resume
hours later in another: thread id = ticket id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from src.config import Settings, get_settings


def sqlite_checkpointer(path: Path | str) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def postgres_checkpointer(url: str, *, schema: str | None = None) -> Any:
    """A PostgresSaver on its own autocommit connection (``schema`` isolates tests)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import sql
    from psycopg.rows import dict_row

    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if schema:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        kwargs["options"] = f"-c search_path={schema}"
    conn = psycopg.connect(url, connect_timeout=5, **kwargs)
    saver = PostgresSaver(conn)
    saver.setup()
    return saver


def make_checkpointer(settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.database_url:
        schema = None if settings.database_schema == "public" else settings.database_schema
        return postgres_checkpointer(settings.database_url, schema=schema)
    return sqlite_checkpointer(settings.checkpoint_sqlite_path)
