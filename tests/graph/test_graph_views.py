"""The service API the HTTP layer builds on: ``get`` (status from audit row + checkpoint) and
``list_reviews`` (the review queues), plus the error types it maps to HTTP codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes_graph import FakeClassifier, make_deps

from src.graph.checkpoint import sqlite_checkpointer
from src.graph.service import ReviewError, TicketIn, TicketNotFound, TriageService

CLEAN = "I want to cancel my order please, it has not shipped yet"


def test_get_and_list_reviews_follow_each_ticket(tmp_path: Path) -> None:
    clf = FakeClassifier(probability=0.97)
    svc = TriageService(make_deps(tmp_path, classifier=clf), sqlite_checkpointer(tmp_path / "c.db"))
    svc.run(TicketIn(id="a", channel="chat", text=CLEAN))
    clf.probability = 0.75
    svc.run(TicketIn(id="s1", channel="chat", text=CLEAN))
    svc.run(TicketIn(id="s2", channel="email", text=CLEAN))
    clf.probability = 0.3
    svc.run(TicketIn(id="e", channel="chat", text=CLEAN))

    auto = svc.get("chat:a")
    assert auto["status"] == "auto_resolved" and auto["route"] == "auto_resolve" and auto["audit_id"]
    assert "review" not in auto
    suggested = svc.list_reviews("suggested")
    assert [v["ticket_id"] for v in suggested] == ["chat:s1", "email:s2"]
    assert all(v["status"] == "pending_review" and v["review"]["allowed_actions"] for v in suggested)
    assert [v["ticket_id"] for v in svc.list_reviews("escalated")] == ["chat:e"]
    assert [v["ticket_id"] for v in svc.list_reviews("suggested", limit=1, offset=1)] == ["email:s2"]

    svc.resume("chat:s1", {"action": "accept", "by": "ana"})
    done = svc.get("chat:s1")
    assert done["status"] == "completed" and done["outcome"]["action"] == "accept"
    assert svc.deps.audit.get_decision("chat:s1")["status"] == "completed"
    assert [v["ticket_id"] for v in svc.list_reviews("suggested")] == ["email:s2"]
    assert svc.get("chat:nope") is None
    with pytest.raises(ReviewError, match="unknown review state"):
        svc.list_reviews("everything")
    with pytest.raises(TicketNotFound):
        svc.resume("chat:nope", {"action": "accept"})


def test_get_says_processing_while_a_ticket_is_unfinished(tmp_path: Path) -> None:
    class Crash(BaseException):
        pass

    clf = FakeClassifier(fail=Crash("killed"))
    svc = TriageService(make_deps(tmp_path, classifier=clf), sqlite_checkpointer(tmp_path / "c.db"))
    with pytest.raises(Crash):
        svc.run(TicketIn(id="u", channel="chat", text=CLEAN))
    assert svc.get("chat:u")["status"] == "processing"
    assert svc.pending("chat:u") is None
    clf.fail = None
    assert svc.run(TicketIn(id="u", channel="chat", text=CLEAN))["status"] == "auto_resolved"
    assert svc.get("chat:u")["status"] == "auto_resolved"
