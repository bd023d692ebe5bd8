"""SQLite durability with group commit (src/audit/db.py): a transaction returns only once its commit
is fsynced, concurrent commits share fsyncs, and the API and audit stores share one connection."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from src.audit import db as dbmod
from src.audit.db import SqliteDatabase, shared_sqlite


@pytest.fixture()
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Record (start, end) of every fsync; each takes 30 ms, like a slow disk."""
    calls: list[tuple[float, float]] = []  # (start, end)
    real = os.fsync

    def slow_fsync(fd: int) -> None:
        start = time.monotonic()
        time.sleep(0.03)
        real(fd)
        calls.append((start, time.monotonic()))

    monkeypatch.setattr(dbmod.os, "fsync", slow_fsync)
    return calls


def _insert_from_threads(db: SqliteDatabase, n: int) -> None:
    """n threads insert one row each, all at once."""
    db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
    start = threading.Barrier(n)

    def work(i: int) -> None:
        start.wait()
        with db.transaction() as tx:
            tx.execute("INSERT INTO t (k) VALUES (?)", (f"k{i}",))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_full_commits_wait_for_an_fsync_and_share_it(tmp_path: Path, fsyncs: list) -> None:
    db = SqliteDatabase(tmp_path / "g.db", migrate=False)
    waits: list[tuple[int, int]] = []  # (commit number, commits on disk when transaction() returned)
    real = db._make_durable

    def recorded(commit: int) -> None:
        real(commit)
        waits.append((commit, db._synced))

    db._make_durable = recorded  # type: ignore[method-assign]
    fsyncs.clear()
    n = 12
    _insert_from_threads(db, n)
    assert db.fetchone("SELECT count(*) FROM t")[0] == n
    # every transaction returned only once its own commit was covered by an fsync ...
    assert len(waits) >= n and all(synced >= commit for commit, synced in waits), waits
    # ... but 12 writers did not pay 12 fsyncs (they queue on the first and share the next)
    assert 1 <= len(fsyncs) < n, fsyncs
    db.close()


def test_normal_skips_the_fsync(tmp_path: Path, fsyncs: list) -> None:
    db = SqliteDatabase(tmp_path / "n.db", migrate=False, synchronous="normal")
    _insert_from_threads(db, 4)
    assert fsyncs == []
    db.close()


def test_a_killed_process_keeps_what_it_committed_in_both_modes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    for mode in ("full", "normal"):
        path = tmp_path / f"{mode}.db"
        code = (
            f"import os, sys; sys.path.insert(0, {str(root)!r})\n"
            "from src.audit.db import SqliteDatabase\n"
            f"db = SqliteDatabase({str(path)!r}, migrate=False, synchronous={mode!r})\n"
            "db.execute('CREATE TABLE t (k TEXT)')\n"
            "db.execute(\"INSERT INTO t VALUES ('x')\")\n"
            "os._exit(9)  # no close, no checkpoint of the WAL\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 9, proc.stderr
        reopened = SqliteDatabase(path, migrate=False)
        assert reopened.fetchall("SELECT k FROM t") == [("x",)]
        reopened.close()


def test_one_shared_connection_per_file_until_the_last_user_closes(tmp_path: Path) -> None:
    a = shared_sqlite(tmp_path / "s.db")
    b = shared_sqlite(tmp_path / "s.db")
    assert a is b
    a.close()
    assert b.fetchone("SELECT 1") == (1,)  # still open for the other user
    b.close()
    assert b.closed
    c = shared_sqlite(tmp_path / "s.db")  # a fresh connection after the last close
    assert c is not a and c.fetchone("SELECT 1") == (1,)
    c.close()


def test_invalid_synchronous_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        SqliteDatabase(tmp_path / "x.db", synchronous="off")  # type: ignore[arg-type]
