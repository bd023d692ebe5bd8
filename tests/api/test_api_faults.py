"""Faults: the database down at intake (spool, nothing lost), the LLM and the knowledge base down
(decisions fail closed to a human, /readyz says what is down)."""

from __future__ import annotations

from src.api.store import ApiStore
from src.audit.db import PostgresDatabase

CANCEL = "Please cancel my order, I placed it by mistake yesterday evening and no longer need it."


def test_postgres_down_at_intake_spools_and_nothing_is_lost(make_api, tmp_path):
    api = make_api()
    assert (
        api.client.get("/v1/tickets/api:none", headers=api.h).status_code == 404
    )  # the key is verified once
    good_store = api.rt.store
    down = PostgresDatabase("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1, migrate=False)
    api.rt.store = ApiStore(down)  # the intake database is unreachable from now on
    try:
        first = api.client.post(
            "/v1/tickets", json={"channel": "chat", "id": "pg-down", "text": CANCEL}, headers=api.h
        )
        assert first.status_code == 202, first.text
        assert first.json()["ticket_id"] == "chat:pg-down" and first.json()["state"] == "queued"
        retry = api.client.post(
            "/v1/tickets", json={"channel": "chat", "id": "pg-down", "text": CANCEL}, headers=api.h
        )
        assert retry.status_code == 202 and retry.json()["duplicate"] is True
        assert len(api.rt.spool) == 1
        keyed = api.client.post(
            "/v1/tickets", json={"text": CANCEL}, headers={**api.h, "Idempotency-Key": "k"}
        )
        assert keyed.status_code == 503 and keyed.headers["Retry-After"]  # the key's claim needs the database
        status = api.client.get("/v1/tickets/chat:pg-down", headers=api.h)
        assert status.status_code in (
            503,
            401,
        )  # nothing to read while the database is down (keys live there too)
    finally:
        api.rt.store = good_store  # the database is back
        down.close()
    api.rt.sweep(older_than_s=0.0)  # the periodic sweep imports the spool and enqueues
    api.wait_idle()
    assert len(api.rt.spool) == 0
    row = api.rt.store.get_intake("chat:pg-down")
    assert row.state == "decided" and row.route == "auto_resolve"
    assert api.rt.service().deps.audit.count_decisions("chat:pg-down") == 1


def test_llm_and_qdrant_down_still_accept_and_fail_closed(make_api):
    api = make_api()
    svc = api.rt.service()
    svc.deps.provider = None  # LLM unavailable
    svc.deps.knowledge_base.down = True  # Qdrant unreachable
    resp = api.client.post(
        "/v1/tickets", params={"wait": 10}, json={"id": "deps-down", "text": CANCEL}, headers=api.h
    )
    assert resp.status_code == 200
    decision = resp.json()["decision"]
    assert decision["route"] == "escalate" and resp.json()["state"] == "pending_review"
    assert any("retrieve" in f for f in decision["failures"]) and any(
        "analyze" in f for f in decision["failures"]
    )
    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["llm"]["ok"] is False
