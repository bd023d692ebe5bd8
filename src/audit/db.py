"""One small dialect-aware database helper for everything kept next to the audit log.

Postgres goes through a ``psycopg_pool.ConnectionPool`` whose connections are checked before each
use (``check=ConnectionPool.check_connection``), so a server restart or a killed backend costs one
discarded connection, not an outage; SQLite goes through one connection guarded by a lock (the
graph writes from worker threads). Both speak the same small API — ``placeholder``, ``execute``,
``fetchall``/``fetchone``, ``transaction()`` — and apply the schema migrations once, when the
database is opened (or, if Postgres is down at start, on the first connection that works).

Errors are translated for the outbox: connection/server trouble -> ``AuditUnavailable`` (keep the
record, retry later); integrity/data errors about one record -> ``AuditRejected`` (dead-letter it).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from src.audit.errors import AuditRejected, AuditUnavailable
from src.audit.migrations import SCHEMA_MIGRATIONS_DDL, pending, statements

Dialect = Literal["postgres", "sqlite"]
Params = Sequence[Any]

MIGRATION_LOCK_KEY = 0x7421A6E  # advisory lock: two processes starting together migrate once
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class Tx(Protocol):
    """What ``transaction()`` yields: the same three calls, inside one transaction."""

    def execute(self, sql: str, params: Params = ()) -> int: ...

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...


class _Cursorish:
    """Adapts a DB-API connection (psycopg or sqlite3) to ``Tx``."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        cur = self.conn.execute(sql, tuple(params))
        return int(cur.rowcount or 0)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(sql, tuple(params)).fetchall()]

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else tuple(row)


class Database:
    """The shared API; ``PostgresDatabase`` and ``SqliteDatabase`` differ only in connections."""

    dialect: Dialect
    placeholder: str
    description: str

    @contextmanager
    def transaction(self) -> Iterator[Tx]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; returns the row count."""
        with self.transaction() as tx:
            return tx.execute(sql, params)

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.fetchall(sql, params)

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        with self.transaction() as tx:
            return tx.fetchone(sql, params)

    def ping(self) -> None:
        """Raise ``AuditUnavailable`` unless the database answers (for readiness checks)."""
        self.fetchone("SELECT 1")

    def migrate(self) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def applied_migrations(self) -> list[int]:
        return sorted(int(r[0]) for r in self.fetchall("SELECT version FROM schema_migrations"))

    @staticmethod
    def load_json(value: Any) -> Any:
        """JSON columns come back parsed from Postgres (JSONB) and as text from SQLite."""
        if value is None or isinstance(value, (dict, list)):
            return value
        return json.loads(value)

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_pending(self, tx: Tx) -> list[int]:
        tx.execute(SCHEMA_MIGRATIONS_DDL)
        applied = {int(r[0]) for r in tx.fetchall("SELECT version FROM schema_migrations")}
        done = []
        ph = self.placeholder
        for version, ddl in pending(self.dialect, applied):
            for stmt in statements(ddl):
                tx.execute(stmt)
            tx.execute(
                f"INSERT INTO schema_migrations (version, applied_at) VALUES ({ph}, {ph})",
                (version, datetime.now(timezone.utc).isoformat()),
            )
            done.append(version)
        return done


# --- Postgres --------------------------------------------------------------------------------


def _pg_error(exc: Exception, what: str) -> Exception:
    import psycopg

    if isinstance(exc, (psycopg.IntegrityError, psycopg.DataError)):
        return AuditRejected(f"{what} rejected the record: {type(exc).__name__}: {exc}")
    return AuditUnavailable(f"{what} unavailable: {type(exc).__name__}: {exc}")


class PostgresDatabase(Database):
    dialect: Dialect = "postgres"
    placeholder = "%s"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        pool_size: int = 10,
        connect_timeout: int = 3,
        pool_timeout: float | None = None,
        migrate: bool = True,
    ) -> None:
        from psycopg_pool import ConnectionPool

        if not _SCHEMA_RE.match(schema):
            raise ValueError(f"invalid Postgres schema name {schema!r} (letters, digits, _)")
        self.url = url
        self.schema = schema
        self.description = f"Postgres schema {schema}"
        self._migrated = not migrate
        self._migrate_lock = threading.Lock()
        self._last_applied: list[int] = []
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={
                "autocommit": True,
                "connect_timeout": connect_timeout,
                "options": f"-c search_path={schema}",
                "application_name": f"triage:{schema}",  # lets an operator (or a test) find these sessions
            },
            check=ConnectionPool.check_connection,  # a dead connection (restart, killed backend) is replaced
            timeout=pool_timeout if pool_timeout is not None else connect_timeout + 2,
            name=f"triage-{schema}",
            open=False,
        )
        self.pool.open(wait=False)  # a server that is down at start is not an error: the outbox covers it
        if migrate:
            with suppress(AuditUnavailable):  # down now: migrate on the first connection that works
                self.migrate()

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled psycopg connection (autocommit; search_path = schema), migrations applied."""
        import psycopg

        try:
            with self.pool.connection() as conn:
                if not self._migrated:
                    self._migrate_on(conn)
                yield conn
        except psycopg.Error as exc:
            raise _pg_error(exc, f"Postgres ({self.schema})") from exc

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.connection() as conn, conn.transaction():
            yield _Cursorish(conn)

    def migrate(self) -> list[int]:
        """Apply pending migrations now (normally once, at open); returns the versions applied."""
        self._migrated = False
        with self.connection():
            pass
        return self._last_applied

    def _migrate_on(self, conn: Any) -> None:
        from psycopg import sql

        with self._migrate_lock:
            if self._migrated:
                return
            if self._up_to_date(conn):  # nothing to do: no DDL, so a least-privilege role works too
                self._last_applied, self._migrated = [], True
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                self._last_applied = self._apply_pending(_Cursorish(conn))
            self._migrated = True

    def _up_to_date(self, conn: Any) -> bool:
        import psycopg

        try:
            with conn.transaction():
                rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        except psycopg.errors.UndefinedTable:
            return False
        return not pending(self.dialect, {int(r[0]) for r in rows})

    def drop_schema(self) -> None:
        """Remove this database's schema (tests and the chaos script use a throwaway schema)."""
        from psycopg import sql

        with self.connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        self._migrated = False

    def close(self) -> None:
        self.pool.close()


# --- SQLite ----------------------------------------------------------------------------------


def _sqlite_error(exc: Exception, what: str) -> Exception:
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.InterfaceError)):
        return AuditRejected(f"{what} rejected the record: {type(exc).__name__}: {exc}")
    return AuditUnavailable(f"{what}: {type(exc).__name__}: {exc}")


class SqliteDatabase(Database):
    """One file, one connection (autocommit mode; ``transaction()`` is ``BEGIN IMMEDIATE``).

    Durability with group commit: the connection runs ``synchronous=NORMAL`` in WAL mode, so a
    COMMIT appends its frames to the write-ahead log without waiting for the disk, and then (with
    ``synchronous="full"``, the default) ``transaction()`` returns only after the WAL file has been
    fsynced past that commit. Threads that commit while one fsync runs share the next one, so N
    concurrent writers pay about one fsync (~3 ms here) instead of N under the connection lock.
    When ``transaction()`` returns, the commit survives a crash of the process *and* of the
    machine (power loss), exactly as with ``synchronous=FULL``. ``synchronous="normal"`` skips the
    fsync: a commit survives the process being killed (its frames are in the OS page cache), but an
    OS crash or power loss can roll back the newest commits (never corrupting the file).
    """

    dialect: Dialect = "sqlite"
    placeholder = "?"

    def __init__(
        self,
        path: Path | str,
        *,
        migrate: bool = True,
        busy_timeout_s: float = 10.0,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = Path(path)
        self.description = f"SQLite {path}"
        self.synchronous = synchronous
        self._memory = str(path) == ":memory:"
        try:
            if not self._memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), check_same_thread=False, timeout=busy_timeout_s, isolation_level=None
            )
            if not self._memory:
                self._conn.execute("PRAGMA journal_mode=WAL")  # a CLI and the API may share the file
                self._conn.execute("PRAGMA synchronous=NORMAL")  # the fsync is ours: _make_durable
        except (OSError, sqlite3.Error) as exc:
            raise AuditUnavailable(f"cannot open SQLite database {path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0
        self._committed = 0  # commits so far (under _lock)
        self._synced = 0  # commits known to be on disk (under _sync_lock)
        self._sync_lock = threading.Lock()
        self._wal_fd: int | None = None
        self._refs = 1
        if migrate:
            self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            if self._depth:  # nested: part of the enclosing transaction
                self._depth += 1
                try:
                    yield _Cursorish(self._conn)
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, self.description) from exc
            self._depth = 1
            try:
                yield _Cursorish(self._conn)
            except BaseException as exc:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _sqlite_error(exc, self.description) from exc
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _sqlite_error(exc, self.description) from exc
            self._committed += 1
            mine = self._committed
        self._make_durable(mine)  # outside the connection lock: others commit meanwhile (group commit)

    def _make_durable(self, commit: int) -> None:
        """Return once commit number ``commit`` is on disk (one fsync of the WAL covers every commit
        appended before it, so a thread that finds its commit already covered does nothing)."""
        if self.synchronous != "full" or self._memory:
            return
        with self._sync_lock:
            if self._synced >= commit:
                return
            target = self._committed  # every commit counted here has its frames in the WAL file
            try:
                os.fsync(self._wal())
            except OSError as exc:
                raise AuditUnavailable(f"{self.description}: cannot sync the write-ahead log: {exc}") from exc
            self._synced = target

    def _wal(self) -> int:
        """A descriptor of the database's WAL file (reopened if the file was replaced)."""
        wal = f"{self.path}-wal"
        if self._wal_fd is not None:
            try:
                if os.fstat(self._wal_fd).st_ino == os.stat(wal).st_ino:
                    return self._wal_fd
            except OSError:
                pass
            os.close(self._wal_fd)
            self._wal_fd = None
        self._wal_fd = os.open(wal, os.O_RDONLY)
        return self._wal_fd

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            return self._apply_pending(tx)

    def acquire(self) -> SqliteDatabase:
        """One more user of this shared connection (``close`` releases it)."""
        with self._lock:
            self._refs += 1
        return self

    @property
    def closed(self) -> bool:
        return self._refs <= 0

    def close(self) -> None:
        """Release this user's hold; the connection closes when the last user closes it."""
        with self._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            self._conn.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None


_SHARED: dict[str, SqliteDatabase] = {}
_SHARED_GUARD = threading.Lock()


def shared_sqlite(path: Path | str, *, migrate: bool = True,
                  synchronous: Literal["full", "normal"] = "full") -> SqliteDatabase:
    """The process's one connection to this SQLite file.

    The API's stores and the audit store live in the same file: two connections would fight over
    the write lock (SQLITE_BUSY, then the busy handler sleeps 1-100 ms), one shared connection
    just queues on its lock and groups its commits' fsyncs.
    """
    key = str(Path(path).resolve()) if str(path) != ":memory:" else None
    if key is None:
        return SqliteDatabase(path, migrate=migrate, synchronous=synchronous)
    with _SHARED_GUARD:
        db = _SHARED.get(key)
        if db is not None and not db.closed and db.synchronous == synchronous:
            if migrate:
                db.migrate()  # a no-op transaction when it is up to date
            return db.acquire()
        db = SqliteDatabase(path, migrate=migrate, synchronous=synchronous)
        _SHARED[key] = db
        return db


def open_database(settings: Any = None, *, migrate: bool = True) -> Database:
    """Postgres if ``settings.database_url`` is set, else the SQLite file at ``settings.sqlite_path``."""
    from src.config import get_settings

    settings = settings or get_settings()
    if settings.database_url:
        return PostgresDatabase(
            settings.database_url,
            schema=settings.database_schema,
            pool_size=settings.database_pool_size,
            migrate=migrate,
        )
    return shared_sqlite(settings.sqlite_path, migrate=migrate, synchronous=settings.sqlite_synchronous)
