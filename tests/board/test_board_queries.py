"""The board's read model on both backends (SQLite file and the real Postgres): same rows, same answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from src.api.board import cards as cardmod
from src.api.board import queries
from src.api.store import ApiStore
from src.audit.models import Decision, HumanAction, content_hash
from src.audit.postgres_store import PostgresAuditStore
from src.audit.sqlite_store import SqliteAuditStore
from src.audit.store import AuditStore

NOW = datetime.now(timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "sqlite":
        yield SqliteAuditStore(tmp_path / "audit.db")
        return
    pg = PostgresAuditStore(request.getfixturevalue("postgres_url"), schema=f"boardq_{uuid.uuid4().hex[:10]}")
    yield pg
    pg.drop_schema()


def _decide(store: AuditStore, tid: str, route: str, minutes_ago: float, **kw) -> None:
    store.record_decision(
        Decision(
            ticket_id=tid,
            content_hash=content_hash(tid),
            text=f"text of {tid}",
            route=route,
            intent="get_refund",
            team="billing",
            sla_hours=4.0,
            analysis={"priority": "P2"},
            created_at=NOW - timedelta(minutes=minutes_ago),
            **kw,
        )
    )


def _act(store: AuditStore, tid: str, action: str, minutes_ago: float, **kw) -> None:
    store.record_action(
        HumanAction(
            ticket_id=tid, action=action, actor="ana", created_at=NOW - timedelta(minutes=minutes_ago), **kw
        )
    )


def test_cards_sizes_and_dashboard_numbers(store: AuditStore) -> None:
    db = store.db
    _decide(store, "s-wait", "suggest", 30)
    _decide(store, "s-esc", "suggest", 20)
    _decide(store, "e-wait", "escalate", 10)
    _decide(store, "s-done", "suggest", 60)
    _decide(store, "a-1", "auto_resolve", 5)
    _decide(store, "old", "suggest", 60 * 24 * 9)  # nine days ago: outside every window below
    _act(store, "s-esc", "escalate", 15, team="supervisors")
    _act(store, "s-done", "edit", 50, edited_draft="Refunded.", corrected_intent="track_refund")
    _act(store, "a-1", "check", 1, note="wrong: asked for a refund")
    _act(store, "old", "accept", 60 * 24 * 8)
    intake = ApiStore(db)
    intake.add_intake("n-1", "chat", "1", {"text": "hello, still waiting"})
    intake.add_intake("s-wait", "chat", "2", {"text": "decided already"})  # a stale intake row

    shown = cardmod.columns(queries.board_cards(db, db), cardmod.Filters(), NOW)
    cards = {c.ticket_id: c for column in shown.values() for c in column}
    columns = {tid: c.column for tid, c in cards.items()}
    assert columns == {
        "s-wait": "suggested",
        "s-esc": "escalated",
        "e-wait": "escalated",
        "s-done": "resolved",
        "a-1": "resolved",
        "old": "resolved",
        "n-1": "new",
    }
    assert cards["s-esc"].team == "supervisors" and cards["s-wait"].priority == "P2"
    assert cards["s-done"].outcome == "edit by ana" and cards["a-1"].outcome == "auto"
    assert queries.queue_sizes(db, db) == {"new": 2, "suggested": 1, "escalated": 2}

    week = NOW - timedelta(days=7)
    assert queries.route_mix(db, week) == {"suggest": 3, "escalate": 1, "auto_resolve": 1}  # as decided
    assert sorted(queries.first_action_delays(db, week)) == pytest.approx([300.0, 600.0])
    [check] = queries.spot_checks(db, week)
    assert check["ticket_id"] == "a-1" and check["note"].startswith("wrong")
    [outcome] = queries.review_outcomes(db, week)
    assert (outcome["ticket_id"], outcome["action"], outcome["corrected_intent"]) == (
        "s-done",
        "edit",
        "track_refund",
    )
    assert queries.route_mix(db, NOW + timedelta(minutes=1)) == {}
