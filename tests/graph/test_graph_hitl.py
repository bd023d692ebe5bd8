"""Interrupt/resume round-trips on the SQLite and Postgres checkpointers, across a 'restart'."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes_graph import FakeClassifier, make_deps

from src.graph.checkpoint import postgres_checkpointer, sqlite_checkpointer
from src.graph.service import ReviewError, TicketIn, TriageService

TEXT = "I want to cancel my order please, it has not shipped yet"


@pytest.fixture(params=["sqlite", "postgres"])
def make_checkpointer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory: each call opens a *new* connection to the same checkpoint store (= a restarted process)."""
    if request.param == "sqlite":
        yield lambda: sqlite_checkpointer(tmp_path / "ckpt.db")
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"ckpt_test_{uuid.uuid4().hex[:10]}"
    savers: list[Any] = []

    def factory() -> Any:
        savers.append(postgres_checkpointer(url, schema=schema))
        return savers[-1]

    yield factory
    import psycopg

    for s in savers:
        s.conn.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _service(tmp_path: Path, checkpointer: Any) -> TriageService:
    return TriageService(make_deps(tmp_path, classifier=FakeClassifier(probability=0.75)), checkpointer)


def test_pause_restart_resume_edit(tmp_path: Path, make_checkpointer: Callable[[], Any]) -> None:
    first = _service(tmp_path, make_checkpointer())
    out = first.run(TicketIn(id="R1", text=TEXT))
    assert out["status"] == "pending_review" and out["route"] == "suggest"

    restarted = _service(tmp_path, make_checkpointer())  # a new process: state comes from the checkpointer
    assert restarted.pending("api:R1")["ticket_id"] == "api:R1"
    action = {"action": "edit", "text": "Your order is cancelled.", "by": "ana", "intent": "cancel_order"}
    done = restarted.resume("api:R1", action)
    assert done["status"] == "completed"
    assert done["outcome"]["reply"] == "Your order is cancelled." and done["outcome"]["by"] == "ana"
    actions = restarted.deps.audit.list_actions("api:R1")
    assert len(actions) == 1 and actions[0]["action"] == "edit"
    assert actions[0]["corrected_intent"] is None  # same as predicted: not a correction

    # replaying the same resume (double click, webhook retry) changes nothing
    again = restarted.resume("api:R1", action)
    assert again.get("duplicate") is True
    assert len(restarted.deps.audit.list_actions("api:R1")) == 1
    assert restarted.deps.audit.count_decisions("api:R1") == 1


@pytest.mark.parametrize(
    ("action", "check"),
    [
        ({"action": "accept", "by": "bo"}, lambda o: o["reply"] == "Sure, done." and o["sent"]),
        ({"action": "respond", "text": "Handled by phone."}, lambda o: o["reply"] == "Handled by phone."),
        ({"action": "reassign", "team": "billing", "intent": "get_refund"}, lambda o: o["team"] == "billing"),
        ({"action": "ignore"}, lambda o: o["closed"] and not o["sent"]),
    ],
)
def test_every_review_action(tmp_path: Path, action: dict, check: Callable[[dict], bool]) -> None:
    svc = _service(tmp_path, sqlite_checkpointer(tmp_path / "c.db"))
    svc.run(TicketIn(id="R2", text=TEXT))
    done = svc.resume("api:R2", action)
    assert done["status"] == "completed" and check(done["outcome"])


def test_corrected_intent_is_recorded_for_feedback(tmp_path: Path) -> None:
    svc = _service(tmp_path, sqlite_checkpointer(tmp_path / "c.db"))
    svc.run(TicketIn(id="R3", text=TEXT))
    svc.resume("api:R3", {"action": "reassign", "team": "billing", "intent": "get_refund", "by": "cy"})
    assert svc.deps.audit.feedback_rows() == [(TEXT, "get_refund")]


def test_bad_resume_requests_are_clear_errors(tmp_path: Path) -> None:
    svc = _service(tmp_path, sqlite_checkpointer(tmp_path / "c.db"))
    svc.run(TicketIn(id="R4", text=TEXT))
    with pytest.raises(ReviewError, match="no ticket"):
        svc.resume("nope", {"action": "accept"})
    with pytest.raises(ReviewError, match="needs a non-empty text"):
        svc.resume("api:R4", {"action": "edit"})
    with pytest.raises(ReviewError, match="unknown team"):
        svc.resume("api:R4", {"action": "reassign", "team": "martians"})
    with pytest.raises(ReviewError):
        svc.resume("api:R4", {"action": "delete_everything"})
    assert svc.pending("api:R4") is not None  # still waiting
