"""The ``escalate`` review action (added for the board) and ``check`` spot checks, on both audit backends.

``escalate`` moves a suggested ticket to its escalation team's queue and pauses it again (the next
action completes it); ``check`` records a spot check of an auto-resolved ticket without changing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.audit.models import Decision, HumanAction, content_hash
from src.audit.postgres_store import PostgresAuditStore
from src.audit.sqlite_store import SqliteAuditStore
from src.audit.store import AuditStore
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import TicketIn, TriageService
from tests.graph.fakes_graph import FakeClassifier, make_deps

TEXT = "I want to cancel my order please, it has not shipped yet"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    if request.param == "sqlite":
        yield SqliteAuditStore(tmp_path / "audit.db")
        return
    pg = PostgresAuditStore(request.getfixturevalue("postgres_url"), schema=f"board_{uuid.uuid4().hex[:10]}")
    yield pg
    pg.drop_schema()


def _decision(ticket_id: str, route: str) -> Decision:
    return Decision(
        ticket_id=ticket_id,
        content_hash=content_hash("x"),
        text="x",
        route=route,
        intent="cancel_order",
        score=0.7,
    )


def test_store_escalate_moves_the_queue_and_check_changes_nothing(store: AuditStore) -> None:
    store.record_decision(_decision("t-s", "suggest"))
    store.record_decision(_decision("t-a", "auto_resolve"))
    store.record_action(HumanAction(ticket_id="t-s", action="escalate", actor="ana", team="supervisors"))
    row = store.get_decision("t-s")
    assert row["status"] == "pending_review" and row["completed_at"] is None
    waiting = store.list_decisions(route="escalate", status="pending_review")
    assert [r["ticket_id"] for r in waiting] == ["t-s"]
    assert store.list_decisions(route="suggest", status="pending_review") == []
    assert row["route"] == "suggest"  # the decision as made stays in the record; the column is the queue
    store.record_action(HumanAction(ticket_id="t-s", action="accept", actor="bo"))
    assert store.get_decision("t-s")["status"] == "completed"
    # a spot check of an auto-resolved ticket is logged; the ticket stays auto-resolved
    store.record_action(HumanAction(ticket_id="t-a", action="check", actor="cy", note="correct"))
    assert store.get_decision("t-a")["status"] == "auto_resolved"
    assert [a["action"] for a in store.list_actions("t-a")] == ["check"]


def test_escalate_pauses_again_in_the_escalation_queue_then_completes(tmp_path: Path) -> None:
    deps = make_deps(tmp_path, classifier=FakeClassifier(probability=0.75))
    svc = TriageService(deps, sqlite_checkpointer(tmp_path / "c.db"))
    out = svc.run(TicketIn(id="E1", text=TEXT))
    assert out["route"] == "suggest" and out["team"] == "orders"
    assert "escalate" in out["review"]["allowed_actions"]

    esc = svc.resume("api:E1", {"action": "escalate", "by": "ana", "note": "customer is a VIP"})
    assert esc["status"] == "pending_review" and esc["route"] == "escalate"
    assert esc["team"] == deps.routing.escalation_team  # ORDER has no escalation team of its own
    assert any("escalated by reviewer ana: customer is a VIP" in r for r in esc["reasons"])
    assert esc["review"]["route"] == "escalate"
    assert [v["ticket_id"] for v in svc.list_reviews("escalated")] == ["api:E1"]
    assert svc.list_reviews("suggested") == []
    actions = deps.audit.list_actions("api:E1")
    assert [(a["action"], a["actor"], a["team"]) for a in actions] == [("escalate", "ana", "supervisors")]

    done = svc.resume("api:E1", {"action": "respond", "text": "A supervisor will call you.", "by": "bo"})
    assert done["status"] == "completed" and done["outcome"]["reply"] == "A supervisor will call you."
    assert [a["action"] for a in deps.audit.list_actions("api:E1")] == ["escalate", "respond"]
    assert deps.audit.get_decision("api:E1")["status"] == "completed"
    assert deps.audit.count_decisions("api:E1") == 1
    again = svc.resume("api:E1", {"action": "respond", "text": "A supervisor will call you.", "by": "bo"})
    assert again.get("duplicate") is True and len(deps.audit.list_actions("api:E1")) == 2


def test_escalate_over_the_api(make_api) -> None:
    api = make_api(probability=0.75)
    tid = api.client.post("/v1/tickets?wait=10", json={"id": "e2", "text": TEXT}, headers=api.h).json()
    assert tid["state"] == "pending_review"
    resp = api.client.post("/v1/review/api:e2", json={"action": "escalate", "by": "ana"}, headers=api.h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["route"] == "escalate" and resp.json()["status"] == "pending_review"
    queue = api.client.get("/v1/review?state=escalated", headers=api.h).json()["items"]
    assert [v["ticket_id"] for v in queue] == ["api:e2"]
    assert api.rt.store.get_intake("api:e2").status == "pending_review"
