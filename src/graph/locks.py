"""Per-ticket mutual exclusion: two runs or resumes of one ticket never execute at the same time.

Postgres: a session advisory lock (``pg_try_advisory_lock``) held on a pooled connection for the
length of the run; a worker that dies drops its connection and with it the lock. SQLite (one
machine): a POSIX byte-range lock on one lock file next to the database — one byte per ticket at a
hashed offset — plus an in-process set, because POSIX locks belong to the process, not the thread.
Either way the loser does not wait: it learns at once that the ticket is busy.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


def lock_key(namespace: str, ticket_id: str) -> int:
    """A stable signed 63-bit key per (namespace, ticket id)."""
    digest = hashlib.blake2b(f"{namespace}\x00{ticket_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


class TicketLocks(Protocol):
    def hold(self, ticket_id: str) -> Any:
        """Context manager yielding True when this caller now owns the ticket, False when it is busy."""
        ...


class LocalLocks:
    """In-process only (threads of one process)."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def try_acquire(self, ticket_id: str) -> bool:
        with self._guard:
            if ticket_id in self._held:
                return False
            self._held.add(ticket_id)
            return True

    def release(self, ticket_id: str) -> None:
        with self._guard:
            self._held.discard(ticket_id)

    @contextmanager
    def hold(self, ticket_id: str) -> Iterator[bool]:
        got = self.try_acquire(ticket_id)
        try:
            yield got
        finally:
            if got:
                self.release(ticket_id)


_FDS: dict[str, int] = {}  # one descriptor per lock file per process: closing any fd drops all locks
_FDS_GUARD = threading.Lock()


def _lock_fd(path: Path) -> int:
    key = str(path.resolve())
    with _FDS_GUARD:
        if key not in _FDS:
            path.parent.mkdir(parents=True, exist_ok=True)
            _FDS[key] = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)
        return _FDS[key]


class FileTicketLocks(LocalLocks):
    """Across processes of one machine (the embedded SQLite deployment)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)

    @contextmanager
    def hold(self, ticket_id: str) -> Iterator[bool]:
        if not self.try_acquire(ticket_id):
            yield False
            return
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one process is all we can serialise
            try:
                yield True
            finally:
                self.release(ticket_id)
            return
        fd, offset = _lock_fd(self.path), lock_key("file", ticket_id)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset, os.SEEK_SET)
        except OSError:
            self.release(ticket_id)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset, os.SEEK_SET)
            self.release(ticket_id)


class PostgresTicketLocks:
    """Across machines: session advisory locks on a small pool of their own.

    If Postgres cannot be reached the run goes ahead unlocked (and says so): the checkpointer and
    audit store are down too, so the ticket takes the fallback path, whose writes are idempotent.
    """

    def __init__(self, url: str, *, namespace: str = "public", pool_size: int = 10, timeout_s: float = 30.0):
        from psycopg_pool import ConnectionPool

        self.namespace = namespace
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True, "connect_timeout": 3, "application_name": f"triage:{namespace}"},
            check=ConnectionPool.check_connection,
            timeout=timeout_s,
            name=f"locks-{namespace}",
            open=False,
        )
        self.pool.open(wait=False)

    @contextmanager
    def hold(self, ticket_id: str) -> Iterator[bool]:
        import psycopg

        key = lock_key(self.namespace, ticket_id)
        try:
            conn = self.pool.getconn()
        except psycopg.Error as exc:
            print(f"triage: ticket lock unavailable ({exc}); running {ticket_id} unlocked", file=sys.stderr)
            yield True
            return
        try:
            try:
                got = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])
            except psycopg.Error as exc:
                print(f"triage: ticket lock failed ({exc}); running {ticket_id} unlocked", file=sys.stderr)
                conn.close()
                yield True
                return
            try:
                yield got
            finally:
                if got:
                    try:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    except psycopg.Error:
                        conn.close()  # a dead session holds no locks; never return a locked one
        finally:
            self.pool.putconn(conn)

    def close(self) -> None:
        self.pool.close()


def locks_for(audit: Any, settings: Any) -> TicketLocks:
    """Advisory locks when the audit store is Postgres, a lock file beside the SQLite database otherwise."""
    db = getattr(audit, "db", None)
    if getattr(db, "dialect", None) == "postgres":
        return PostgresTicketLocks(db.url, namespace=db.schema, pool_size=settings.database_pool_size)
    path = getattr(db, "path", None)
    if path is not None and str(path) != ":memory:":
        return FileTicketLocks(Path(f"{path}.locks"))
    return LocalLocks()
