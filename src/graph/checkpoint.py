"""Checkpointer factory: SQLite file by default, Postgres when ``TRIAGE_DATABASE_URL`` is set.

The checkpointer is what lets a ticket pause for a human (``interrupt``) in one process and resume
hours later in another: thread id = ticket id. On Postgres it runs on a ``psycopg_pool`` pool whose
connections are health-checked before use, so a server restart (or a killed backend) costs one
discarded connection instead of a checkpointer that never reconnects; its tables are created once,
here, at startup.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from src.config import Settings, get_settings

SETUP_LOCK_KEY = 0x7421A6F  # advisory lock around PostgresSaver.setup()


def sqlite_checkpointer(path: Path | str) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")  # the API and a CLI --resume may share the file
    # No fsync per checkpoint write (each cost ~3 ms under the saver's lock, several per ticket): a
    # killed process loses nothing (WAL frames are in the OS cache); a power loss can roll back the
    # newest checkpoints, and then the audit row, fsynced, is the record (service._behind_row).
    conn.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def postgres_checkpointer(
    url: str, *, schema: str | None = None, pool_size: int = 10, connect_timeout: int = 5
) -> Any:
    """A PostgresSaver on a health-checked connection pool (``schema`` isolates tests and deployments).

    ``saver.conn`` is the pool: close it with ``saver.conn.close()``.
    """
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import sql
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    kwargs: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": 0,
        "row_factory": dict_row,
        "connect_timeout": connect_timeout,
        "application_name": f"triage:{schema or 'public'}",
    }
    if schema:
        with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        kwargs["options"] = f"-c search_path={schema}"
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max(1, pool_size),
        kwargs=kwargs,
        check=ConnectionPool.check_connection,
        timeout=connect_timeout + 5,
        name=f"checkpoints-{schema or 'public'}",
        open=False,
    )
    pool.open(wait=True, timeout=connect_timeout + 5)  # startup: fail clearly if Postgres is not there
    saver = PostgresSaver(pool)  # type: ignore[arg-type]
    # the checkpointer's own migrations, once at startup; serialised across processes, because two
    # workers starting together deadlocked in setup() (seen in scripts/chaos.py). The lock is polled
    # with pg_try_advisory_lock: a session *waiting* in pg_advisory_lock holds a snapshot, and the
    # CREATE INDEX CONCURRENTLY inside setup() would wait for it forever.
    with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as lock:
        while not lock.execute("SELECT pg_try_advisory_lock(%s)", (SETUP_LOCK_KEY,)).fetchone()[0]:
            time.sleep(0.1)
        saver.setup()
    return saver


def make_checkpointer(settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.database_url:
        schema = None if settings.database_schema == "public" else settings.database_schema
        size = settings.database_pool_size
        return postgres_checkpointer(settings.database_url, schema=schema, pool_size=size)
    return sqlite_checkpointer(settings.checkpoint_sqlite_path)
