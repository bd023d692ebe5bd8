"""Reviewed tickets into the real knowledge base (Qdrant Edge in a tmp dir, real MiniLM embeddings)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from src.audit.models import Decision, HumanAction, content_hash
from src.audit.sqlite_store import SqliteAuditStore
from src.config import Settings
from src.retrieval.feedback import grow_knowledge_base, resolved_rows
from src.retrieval.store import KnowledgeBase, close_clients


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    yield Settings(qdrant_path=tmp_path / "qdrant", qdrant_collection="kb_feedback", qdrant_url=None)
    close_clients()


REPLY = "We refunded the duplicate charge of [AMOUNT]."


def _decide(store: SqliteAuditStore, tid: str, text: str, intent: str, draft: str | None = None,
            reasons: list[str] | None = None) -> None:
    store.record_decision(Decision(ticket_id=tid, content_hash=content_hash(text), text=text, route="suggest",
                                   intent=intent, draft=draft, reasons=reasons or [], score=0.7))


def _audit(tmp_path: Path) -> SqliteAuditStore:
    store = SqliteAuditStore(tmp_path / "audit.db")
    _decide(store, "t-accept", "where is my parcel, it is late", "track_order", draft="It ships in 2 days.")
    _decide(store, "t-edit", "I was charged twice for one lamp", "track_order", draft="Tracking info.")
    _decide(store, "t-bad", "gimme money now or else", "get_refund", draft="Refund sent.")
    _decide(store, "t-reassign", "my account is hacked", "recover_password")
    _decide(store, "t-ask", "refund or cancel?", "get_refund", draft="Is it a refund or a cancellation?",
            reasons=["ambiguous: get_refund 0.46 vs cancel_order 0.42: a clarifying question is drafted"])
    store.record_action(HumanAction(ticket_id="t-accept", action="accept", actor="ana"))
    store.record_action(HumanAction(ticket_id="t-edit", action="edit", actor="bo",
                                    corrected_intent="get_refund", edited_draft=REPLY))
    store.record_action(HumanAction(ticket_id="t-bad", action="accept", actor="ana", bad_example=True))
    store.record_action(HumanAction(ticket_id="t-reassign", action="reassign", actor="ana", team="security"))
    store.record_action(HumanAction(ticket_id="t-ask", action="accept", actor="ana"))
    return store


def test_only_replied_good_tickets_become_resolutions(tmp_path: Path) -> None:
    rows, left_out = resolved_rows(_audit(tmp_path).review_log())
    assert sorted((r["text"], r["intent"], r["response"]) for r in rows) == [
        ("I was charged twice for one lamp", "get_refund", REPLY),
        ("where is my parcel, it is late", "track_order", "It ships in 2 days."),
    ]
    assert left_out == {"marked bad example": 1, "reassign (no reply sent)": 1,
                        "clarifying question (not a resolution)": 1}


def test_grow_knowledge_base_is_deduplicated_and_searchable(tmp_path: Path, settings: Settings) -> None:
    audit = _audit(tmp_path)
    kb = KnowledgeBase(settings)
    first = grow_knowledge_base(audit, settings=settings, kb=kb, progress=False)
    assert first["upserted"] == 2 and kb.count() == 2
    again = grow_knowledge_base(audit, settings=settings, kb=kb, progress=False)
    assert again["upserted"] == 0 and again["already_present"] == 2 and kb.count() == 2
    hits = kb.search("charged two times for the same lamp", k=2)
    assert hits[0].ticket.intent == "get_refund" and "duplicate charge" in hits[0].ticket.response
    assert hits[0].ticket.resolved_at is not None and hits[0].ticket.tags == ["feedback"]
    assert all("gimme" not in h.ticket.text for h in kb.search("gimme money now or else", k=5))
