"""The shared DB helper and what #10 items 13/14 ask of the audit store, on SQLite and real Postgres.

Postgres tests use a throwaway schema each and kill only their own sessions (``application_name``
``triage:<schema>``) with ``pg_terminate_backend`` — the nearest a test may come to restarting the
shared server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.audit.db import Database, PostgresDatabase, SqliteDatabase
from src.audit.errors import AuditRejected, AuditUnavailable
from src.audit.models import Decision, HumanAction, content_hash
from src.audit.outbox import OutboxAuditStore
from src.audit.postgres_store import PostgresAuditStore
from src.audit.sql_store import SqlAuditStore
from src.audit.sqlite_store import SqliteAuditStore


def _decision(ticket_id: str, route: str = "suggest", **kw) -> Decision:
    text = kw.pop("text", "where is my order")
    kw.setdefault("reasons", ["r"])
    return Decision(
        ticket_id=ticket_id,
        content_hash=content_hash(text),
        text=text,
        route=route,
        intent="track_order",
        score=0.7,
        team="logistics",
        **kw,
    )


def _schema() -> str:
    return f"audit_test_{uuid.uuid4().hex[:10]}"


def _terminate(url: str, schema: str) -> int:
    """Kill every server session of this schema's pools (a Postgres restart, as far as they can tell)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"triage:{schema}",),
        ).fetchall()
    return len(rows)


@pytest.fixture()
def pg_db(postgres_url: str) -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(postgres_url, schema=_schema(), pool_size=3)
    yield db
    db.drop_schema()
    db.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return SqliteDatabase(tmp_path / "db.sqlite")
    return request.getfixturevalue("pg_db")


@pytest.fixture()
def store(db: Database) -> SqlAuditStore:
    return SqlAuditStore(db)


def test_db_helper_execute_fetch_and_transaction_rollback(db: Database) -> None:
    ph = db.placeholder
    db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    assert db.execute(f"INSERT INTO kv (k, v) VALUES ({ph}, {ph})", ("a", "1")) == 1
    with db.transaction() as tx:
        tx.execute(f"INSERT INTO kv (k, v) VALUES ({ph}, {ph})", ("b", "2"))
        assert tx.fetchone(f"SELECT v FROM kv WHERE k = {ph}", ("b",)) == ("2",)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute(f"INSERT INTO kv (k, v) VALUES ({ph}, {ph})", ("c", "3"))
        raise RuntimeError("rolled back")
    assert db.fetchall("SELECT k, v FROM kv ORDER BY k") == [("a", "1"), ("b", "2")]
    with pytest.raises(AuditRejected):  # one bad record is the record's problem, not the store's
        db.execute(f"INSERT INTO kv (k, v) VALUES ({ph}, {ph})", ("a", "dup"))
    db.ping()


def test_status_follows_the_review_and_list_decisions_filters(store: SqlAuditStore) -> None:
    store.record_decision(_decision("auto", route="auto_resolve"))
    store.record_decision(_decision("sug", route="suggest"))
    store.record_decision(_decision("esc", route="escalate"))
    assert store.get_decision("auto")["status"] == "auto_resolved"
    assert store.get_decision("sug")["status"] == "pending_review"
    pending = store.list_decisions(status="pending_review")
    assert [d["ticket_id"] for d in pending] == ["sug", "esc"]
    assert pending[0]["team"] == "logistics" and pending[0]["route"] == "suggest"
    assert [d["ticket_id"] for d in store.list_decisions(route="escalate")] == ["esc"]
    assert [d["ticket_id"] for d in store.list_decisions(limit=1, offset=1)] == ["sug"]

    store.record_action(HumanAction(ticket_id="sug", action="accept", actor="ana"))
    row = store.get_decision("sug")
    assert row["status"] == "completed" and row["completed_at"]
    assert row["route"] == "suggest"  # the decision itself never changes
    assert [d["ticket_id"] for d in store.list_decisions(status="pending_review")] == ["esc"]
    assert len(store.list_decisions(status="completed")) == 1


def test_private_vault_keeps_raw_text_outside_the_decision_and_purges(store: SqlAuditStore) -> None:
    from datetime import timedelta

    from src.audit.models import utcnow

    raw = "Hi, I'm Ana Lopez, ana@example.com, card 4111 1111 1111 1111 \x00"
    store.save_private("t1", raw, subject="Order 12", metadata={"customer": "c-1"})
    store.save_private("t1", "a retry never overwrites", subject="x")
    store.save_pii_map("t1", {"[EMAIL_1]": "ana@example.com"})
    got = store.get_private("t1")
    assert got == {
        "raw_text": raw,
        "subject": "Order 12",
        "metadata": {"customer": "c-1"},
        "pii_map": {"[EMAIL_1]": "ana@example.com"},
        "purged": False,
    }
    store.record_decision(_decision("t1", route="auto_resolve"))
    store.save_private("t2", "still waiting for a human")
    store.record_decision(_decision("t2", route="escalate"))

    later = utcnow() + timedelta(days=1)
    assert store.purge_private(later, dry_run=True) == {"would_purge": 1, "kept_unfinished": 1}
    assert store.get_private("t1")["raw_text"] == raw  # dry run changed nothing
    assert store.purge_private(utcnow() - timedelta(days=1)) == {"purged": 0, "kept_unfinished": 0}
    assert store.purge_private(later) == {"purged": 1, "kept_unfinished": 1}
    assert store.get_private("t1") == {
        "raw_text": None,
        "subject": None,
        "metadata": {},
        "pii_map": {},
        "purged": True,
    }
    store.save_private("t1", raw)  # a late retry does not bring purged text back
    assert store.get_private("t1")["raw_text"] is None
    assert store.get_private("t2")["raw_text"] == "still waiting for a human"


# --- item 14: pools with health checks, migrations at startup only ---------------------------


def test_postgres_pool_survives_killed_backends(postgres_url: str) -> None:
    schema = _schema()
    store = PostgresAuditStore(postgres_url, schema=schema, pool_size=2)
    try:
        store.record_decision(_decision("before"))
        assert _terminate(postgres_url, schema) >= 1  # every pooled session is gone
        store.record_decision(_decision("after"))  # the health check replaced the dead connection
        assert store.count_decisions() == 2
        stats = store.db.pool.get_stats()  # type: ignore[attr-defined]
        assert stats.get("connections_lost", 0) + stats.get("connections_errors", 0) >= 0
    finally:
        store.drop_schema()
        store.close()


def test_least_privilege_role_works_after_startup_migration(postgres_url: str) -> None:
    """Only startup runs DDL: a role that may use the schema but not create schemas can write.
    (Per-operation ``CREATE SCHEMA IF NOT EXISTS`` needs CREATE on the database, so it failed.)"""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    schema, role = _schema(), f"triage_app_{uuid.uuid4().hex[:8]}"
    admin = PostgresAuditStore(postgres_url, schema=schema)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    app_url = make_conninfo(**{**conninfo_to_dict(postgres_url), "user": role})
    app = PostgresAuditStore(app_url, schema=schema)
    try:
        app.record_decision(_decision("lp"))
        app.record_action(HumanAction(ticket_id="lp", action="accept"))
        assert admin.get_decision("lp")["status"] == "completed"
    finally:
        app.close()
        admin.drop_schema()
        admin.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


# --- item 13: one bad record never blocks the rest; non-connection errors lose nothing ---------


def test_outbox_dead_letters_a_refused_record_and_carries_on(tmp_path: Path) -> None:
    inner = SqliteAuditStore(tmp_path / "a.db")
    store = OutboxAuditStore(inner, tmp_path / "outbox", retry_after_s=0)
    real = inner.record_decision

    def down(decision: Decision) -> str:
        raise AuditUnavailable("down")

    inner.record_decision = down  # type: ignore[method-assign]
    store.record_decision(_decision("bad"))
    store.record_decision(_decision("good"))
    assert store.pending() == 2
    # the queued "bad" record turns out invalid, and one file is garbage
    bad = store.outbox.path_for("decision", store.outbox.pending()[0].name[len("decision-") : -5])
    item = json.loads(bad.read_text())
    item["payload"]["route"] = ["not", "a", "route"]
    bad.write_text(json.dumps(item))
    (store.outbox.dir / "decision-garbage.json").write_text("{not json")
    inner.record_decision = real  # type: ignore[method-assign]

    assert store.flush() == 1  # "good" went through despite the two broken records ahead of it
    assert store.pending() == 0 and store.dead_letters() == 2
    assert inner.count_decisions() == 1 and inner.get_decision("good") is not None
    reasons = [json.loads(p.read_text())["reason"] for p in store.outbox.dead()]
    assert any("ValidationError" in r for r in reasons) and any("unreadable" in r for r in reasons)
    store.record_decision(_decision("next"))  # later writes are not blocked
    assert inner.count_decisions() == 2


def test_postgres_record_refused_by_a_constraint_is_dead_lettered_not_blocking(
    postgres_url: str, tmp_path: Path
) -> None:
    schema = _schema()
    inner = PostgresAuditStore(postgres_url, schema=schema)
    store = OutboxAuditStore(inner, tmp_path / "outbox")
    try:
        inner.db.execute("ALTER TABLE decisions ADD CONSTRAINT no_poison CHECK (channel <> 'poison')")
        store.record_decision(_decision("p1", channel="poison"))  # IntegrityError: this record only
        store.record_decision(_decision("ok1"))
        assert store.dead_letters() == 1 and store.pending() == 0
        assert inner.get_decision("ok1") is not None
        dead = json.loads(store.outbox.dead()[0].read_text())
        assert "CheckViolation" in dead["reason"] and dead["payload"]["ticket_id"] == "p1"
        inner.db.execute("ALTER TABLE decisions DROP CONSTRAINT no_poison")
        assert store.outbox.requeue_dead() == 1 and store.flush() == 1
        assert inner.count_decisions() == 2
    finally:
        inner.drop_schema()
        inner.close()


def test_postgres_error_that_is_not_a_connection_error_loses_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    """A missing table (ProgrammingError) used to escape the outbox: the decision was gone."""
    schema = _schema()
    inner = PostgresAuditStore(postgres_url, schema=schema)
    store = OutboxAuditStore(inner, tmp_path / "outbox", retry_after_s=0)
    try:
        inner.db.execute("ALTER TABLE decisions RENAME TO decisions_moved")
        assert store.record_decision(_decision("kept"))
        assert store.pending() == 1  # queued, not raised, not lost
        inner.db.execute("ALTER TABLE decisions_moved RENAME TO decisions")
        assert store.flush() == 1 and inner.get_decision("kept") is not None
    finally:
        inner.drop_schema()
        inner.close()


def test_nul_bytes_never_cost_a_decision(store: SqlAuditStore) -> None:
    store.record_decision(_decision("nul", text="odd \x00 byte", reasons=["model said \x00"]))
    assert store.get_decision("nul")["text"] == "odd \ufffd byte"
