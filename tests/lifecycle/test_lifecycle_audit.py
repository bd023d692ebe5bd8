"""Review provenance in the audit store: the bad-example mark, ``review_log`` and shadow scores
(migration v7), on SQLite and the real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.audit.models import Decision, HumanAction, content_hash
from src.audit.outbox import OutboxAuditStore
from src.audit.postgres_store import PostgresAuditStore
from src.audit.sqlite_store import SqliteAuditStore
from src.classifier.feedback import labelled_rows
from src.graph.shadow import ShadowStore


def _decision(ticket_id: str, intent: str = "track_order", **kw) -> Decision:
    text = kw.pop("text", f"where is my order {ticket_id}")
    return Decision(ticket_id=ticket_id, content_hash=content_hash(text), text=text, route="suggest",
                    intent=intent, score=0.7, bundle_version="b-1", **kw)


@pytest.fixture()
def pg_store(postgres_url: str) -> Iterator[PostgresAuditStore]:
    store = PostgresAuditStore(postgres_url, schema=f"lifecycle_test_{uuid.uuid4().hex[:10]}")
    yield store
    store.drop_schema()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        return SqliteAuditStore(tmp_path / "audit.db")
    return request.getfixturevalue("pg_store")


def test_review_log_carries_provenance_and_the_bad_example_mark(store) -> None:
    for tid in ("t-1", "t-2", "t-3"):
        store.record_decision(_decision(tid))
    store.record_action(HumanAction(ticket_id="t-1", action="accept", actor="ana",
                                    corrected_intent="get_refund"))
    store.record_action(HumanAction(ticket_id="t-2", action="respond", actor="bo", edited_draft="Hi",
                                    bad_example=True))
    store.record_action(HumanAction(ticket_id="t-3", action="accept", actor="cy"))
    log = store.review_log()
    assert [item["ticket_id"] for item in log] == ["t-1", "t-2", "t-3"]
    assert [item["bad_example"] for item in log] == [False, True, False]
    first = log[0]
    assert first["actor"] == "ana" and first["corrected_intent"] == "get_refund"
    assert first["status"] == "completed"
    assert first["decision"]["bundle_version"] == "b-1" and first["decision"]["intent"] == "track_order"
    assert isinstance(first["created_at"], str)
    rows = {r.ticket_id: r for r in labelled_rows(log)}
    assert (rows["t-1"].label, rows["t-1"].source, rows["t-1"].reviewer) == ("get_refund", "corrected", "ana")
    assert (rows["t-3"].label, rows["t-3"].source) == ("track_order", "confirmed")
    assert rows["t-2"].bad_example and not rows["t-1"].bad_example
    # an unmarked action keeps the idempotency key it had before the mark existed
    plain = HumanAction(ticket_id="t-9", action="accept", actor="ana")
    assert plain.key() != plain.model_copy(update={"bad_example": True}).key()


def test_shadow_scores_are_written_once_per_ticket_and_candidate(store) -> None:
    shadow = ShadowStore(store.db)
    row = {"ticket_id": "t-1", "candidate_version": "cand", "serving_version": "serv", "serving_intent": "a",
           "serving_confidence": 0.9, "serving_route": "suggest", "candidate_intent": "b",
           "candidate_confidence": 0.8, "candidate_route": "escalate"}
    shadow.record(row)
    shadow.record({**row, "candidate_intent": "c"})  # a replay of the audit step changes nothing
    shadow.record({**row, "candidate_version": "cand-2"})
    assert [(r["candidate_version"], r["candidate_intent"]) for r in shadow.rows()] == [("cand", "b"),
                                                                                       ("cand-2", "b")]
    assert len(shadow.rows("cand")) == 1


def test_outbox_store_reads_the_review_log(tmp_path: Path) -> None:
    store = OutboxAuditStore(SqliteAuditStore(tmp_path / "a.db"), tmp_path / "outbox")
    store.record_decision(_decision("t-1"))
    store.record_action(HumanAction(ticket_id="t-1", action="ignore", actor="ana", bad_example=True))
    assert store.review_log()[0]["bad_example"] is True
