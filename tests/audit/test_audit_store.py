"""Audit stores: exactly-once decisions, linked actions, migrations, outbox when the DB is down, export."""

from __future__ import annotations

import csv
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.audit.db import PostgresDatabase
from src.audit.errors import AuditUnavailable
from src.audit.export_feedback import main as export_main
from src.audit.migrations import MIGRATIONS
from src.audit.models import Decision, HumanAction, audit_id_for, content_hash
from src.audit.outbox import OutboxAuditStore
from src.audit.postgres_store import PostgresAuditStore
from src.audit.sqlite_store import SqliteAuditStore
from src.audit.store import AuditStore, open_audit_store
from src.config import Settings


def _decision(ticket_id: str = "t-1", route: str = "suggest", **kw) -> Decision:
    text = kw.pop("text", "where is my order")
    return Decision(ticket_id=ticket_id, content_hash=content_hash(text), text=text, route=route,
                    intent="track_order", score=0.7, reasons=["r"], **kw)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def pg_store(postgres_url: str) -> Iterator[PostgresAuditStore]:
    store = PostgresAuditStore(postgres_url, schema=f"audit_test_{uuid.uuid4().hex[:10]}")
    yield store
    store.drop_schema()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AuditStore:
    if request.param == "sqlite":
        return SqliteAuditStore(tmp_path / "audit.db")
    return request.getfixturevalue("pg_store")


def test_decision_is_written_exactly_once(store: AuditStore) -> None:
    first = store.record_decision(_decision(route="suggest"))
    # a webhook retry / resume re-run with a different outcome must not duplicate or overwrite
    again = store.record_decision(_decision(route="escalate"))
    assert first == again == audit_id_for("t-1")
    assert store.count_decisions("t-1") == 1
    row = store.get_decision("t-1")
    assert row is not None and row["route"] == "suggest" and row["audit_id"] == first
    assert store.get_decision("missing") is None


def test_actions_link_to_decision_and_replays_are_ignored(store: AuditStore) -> None:
    store.record_decision(_decision())
    action = HumanAction(
        ticket_id="t-1", action="edit", actor="ana", edited_draft="Hi!", corrected_intent="cancel_order"
    )
    k1 = store.record_action(action)
    k2 = store.record_action(action.model_copy())
    assert k1 == k2
    store.record_action(HumanAction(ticket_id="t-1", action="accept", actor="bo"))
    actions = store.list_actions("t-1")
    assert [a["action"] for a in actions] == ["edit", "accept"]
    assert actions[0]["corrected_intent"] == "cancel_order" and actions[0]["actor"] == "ana"
    assert store.feedback_rows() == [("where is my order", "cancel_order")]


def test_migrations_are_recorded_and_not_reapplied(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "a.db")
    assert store.migrate() == []
    assert store.db.applied_migrations() == [v for v, _ in MIGRATIONS["sqlite"]]


def test_postgres_migrations_recorded(pg_store: PostgresAuditStore) -> None:
    assert pg_store.migrate() == []  # applied at start already
    assert pg_store.db.applied_migrations() == [v for v, _ in MIGRATIONS["postgres"]]


def test_outbox_keeps_decisions_while_postgres_down_then_flushes(postgres_url: str, tmp_path: Path) -> None:
    schema = f"audit_test_{uuid.uuid4().hex[:10]}"
    dead_url = f"postgresql://postgres@127.0.0.1:{_dead_port()}/test"
    inner = PostgresAuditStore(dead_url, schema=schema, connect_timeout=1, pool_timeout=0.5)
    store = OutboxAuditStore(inner, tmp_path / "outbox")
    try:
        audit_id = store.record_decision(_decision("t-down"))
        store.record_decision(_decision("t-down"))  # retry while down: still one queued record
        store.record_action(HumanAction(ticket_id="t-down", action="ignore", actor="x"))
        assert audit_id == audit_id_for("t-down")
        assert store.pending() == 2
        # reads see the queued copy, with the status the queued action gives it
        assert store.get_decision("t-down")["status"] == "completed"
        with pytest.raises(AuditUnavailable):
            inner.count_decisions()
        inner.db.close()
        inner.db = PostgresDatabase(postgres_url, schema=schema)  # the database is back
        assert store.flush() == 2
        assert store.pending() == 0
        assert inner.count_decisions("t-down") == 1
        assert [a["action"] for a in inner.list_actions("t-down")] == ["ignore"]
        assert inner.get_decision("t-down")["status"] == "completed"
        assert store.flush() == 0
    finally:
        inner.db.close()
        PostgresAuditStore(postgres_url, schema=schema).drop_schema()


def test_outbox_store_goes_down_mid_run_nothing_lost(tmp_path: Path) -> None:
    """SQLite variant: the store is fine, then fails for a while, then recovers."""
    inner = SqliteAuditStore(tmp_path / "a.db")
    store = OutboxAuditStore(inner, tmp_path / "outbox", retry_after_s=0)
    store.record_decision(_decision("a"))
    real = inner.record_decision

    def down(decision: Decision) -> str:
        raise AuditUnavailable("disk is gone")

    inner.record_decision = down  # type: ignore[method-assign]
    store.record_decision(_decision("b"))
    store.record_decision(_decision("c"))
    assert inner.count_decisions() == 1 and store.pending() == 2
    inner.record_decision = real  # type: ignore[method-assign]
    store.record_decision(_decision("d"))  # the next write flushes the backlog first
    assert store.pending() == 0
    assert inner.count_decisions() == 4


def test_open_audit_store_picks_backend(tmp_path: Path, postgres_url: str) -> None:
    sqlite = open_audit_store(Settings(sqlite_path=tmp_path / "x.db", outbox_dir=tmp_path / "o"))
    assert sqlite.backend == "sqlite"
    pg = open_audit_store(Settings(database_url=postgres_url, outbox_dir=tmp_path / "o"), outbox=False)
    assert pg.backend == "postgres"
    pg.close()


def test_export_feedback_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from src import config

    db = tmp_path / "audit.db"
    store = SqliteAuditStore(db)
    store.record_decision(_decision("t1", text="i want my money back"))
    store.record_decision(_decision("t2", text="change my address"))
    store.record_action(HumanAction(ticket_id="t1", action="edit", corrected_intent="get_refund"))
    store.record_action(HumanAction(ticket_id="t2", action="accept"))
    monkeypatch.setenv("TRIAGE_SQLITE_PATH", str(db))
    monkeypatch.delenv("TRIAGE_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    try:
        out = tmp_path / "fb.csv"
        assert export_main(["--out", str(out)]) == 0
    finally:
        config.get_settings.cache_clear()
    rows = list(csv.DictReader(out.open()))
    assert rows == [{"text": "i want my money back", "label": "get_refund"}]
    assert "wrote 1" in capsys.readouterr().out


def test_outbox_cools_down_after_a_failure(tmp_path: Path) -> None:
    """While the store was just seen down, writes go straight to the outbox (no connect timeout each)."""
    inner = SqliteAuditStore(tmp_path / "a.db")
    store = OutboxAuditStore(inner, tmp_path / "outbox", retry_after_s=3600)
    calls: list[str] = []
    real = inner.record_decision

    def down(decision: Decision) -> str:
        calls.append(decision.ticket_id)
        raise AuditUnavailable("down")

    inner.record_decision = down  # type: ignore[method-assign]
    store.record_decision(_decision("a"))
    store.record_decision(_decision("b"))
    assert calls == ["a"] and store.pending() == 2
    inner.record_decision = real  # type: ignore[method-assign]
    assert store.flush() == 2  # an explicit flush always tries
    store.record_decision(_decision("c"))
    assert inner.count_decisions() == 3 and store.pending() == 0


def test_outbox_cli_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from src import config
    from src.audit.outbox import Outbox
    from src.audit.outbox import main as outbox_main

    Outbox(tmp_path / "outbox").put("decision", audit_id_for("q1"), _decision("q1").model_dump(mode="json"))
    monkeypatch.setenv("TRIAGE_SQLITE_PATH", str(tmp_path / "audit.db"))
    monkeypatch.setenv("TRIAGE_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.delenv("TRIAGE_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    try:
        assert outbox_main([]) == 0
    finally:
        config.get_settings.cache_clear()
    assert "flushed 1 record(s)" in capsys.readouterr().out
    assert SqliteAuditStore(tmp_path / "audit.db").count_decisions("q1") == 1
