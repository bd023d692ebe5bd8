"""The service's tables (migration v5) on SQLite and on the real Postgres."""

from __future__ import annotations

import uuid

import pytest

from src.api.store import DECIDED, QUEUED, ApiStore
from src.audit.db import PostgresDatabase, SqliteDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        db = SqliteDatabase(tmp_path / "triage.db")
        yield ApiStore(db)
        db.close()
        return
    url = request.getfixturevalue("postgres_url")
    db = PostgresDatabase(url, schema=f"t_api_{uuid.uuid4().hex[:10]}")
    yield ApiStore(db)
    db.drop_schema()
    db.close()


def test_intake_is_created_once_and_purged_on_decision(store):
    payload = {
        "source_id": "m1",
        "subject": "hi",
        "text": "cancel my order",
        "customer": {"email": "a@b.c"},
        "metadata": {"helpdesk_ticket_id": "9"},
    }
    row, created = store.add_intake("email:m1", "email", "m1", payload)
    assert created and row.state == QUEUED and row.payload["text"] == "cancel my order"
    again, created2 = store.add_intake("email:m1", "email", "m1", {"text": "other"})
    assert not created2 and again.payload["text"] == "cancel my order"
    store.mark_processing("email:m1")
    assert store.get_intake("email:m1").attempts == 1
    assert store.stale_undecided(older_than_s=0) == ["email:m1"]
    store.mark_decided("email:m1", "suggest", "pending_review", "pending")
    row = store.get_intake("email:m1")
    assert row.state == DECIDED and row.route == "suggest" and row.status == "pending_review"
    assert row.payload == {"source_id": "m1", "metadata": {"helpdesk_ticket_id": "9"}}  # text, customer gone
    assert store.stale_undecided(older_than_s=0) == []
    assert store.pending_writebacks(older_than_s=0) == ["email:m1"]
    store.set_writeback("email:m1", "done")
    assert store.pending_writebacks(older_than_s=0) == []
    store.mark_processing("email:m1")  # a late duplicate cannot reopen a decided ticket
    assert store.get_intake("email:m1").state == DECIDED
    assert store.count_by_state() == {DECIDED: 1}


def test_keys_idempotency_and_deliveries(store):
    store.add_key("abc123", "ana", "00" * 16, "h" * 64)
    assert store.get_key("abc123").name == "ana" and store.get_key("nope") is None
    assert store.revoke_key("abc123") and not store.revoke_key("abc123")
    assert store.get_key("abc123").revoked_at is not None
    assert [k.public()["revoked"] for k in store.list_keys()] == [True]
    assert store.claim_idempotency_key("k1:x", "api:1", "h1") == ("api:1", "h1")
    assert store.claim_idempotency_key("k1:x", "api:2", "h2") == ("api:1", "h1")  # first writer wins
    assert store.first_delivery("zendesk", "d1") is True
    assert store.first_delivery("zendesk", "d1") is False
    assert store.first_delivery("intercom", "d1") is True
