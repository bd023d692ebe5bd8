"""Every endpoint through the ASGI app (real graph + checkpointer + SQLite, fake models), auth included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from src.api.store import DECIDED

EMAILS = Path(__file__).parent / "emails"
# long enough for language detection, no escalation signal: these auto-resolve with the fake classifier
TRACK = (
    "Hello, could you help me track my package? I would like to know when it will be delivered to my home."
)
CANCEL = "Please cancel my order, I placed it by mistake yesterday evening and no longer need it."
REFUND = "Hello, I would like to get a refund for the jacket I bought last week, it does not fit me."


def post(api, body=None, **kw):
    return api.client.post("/v1/tickets", json=body, headers={**api.h, **kw.pop("headers", {})}, **kw)


# --- auth -----------------------------------------------------------------------------------------


def test_every_v1_route_needs_a_key_and_the_open_ones_expose_nothing(make_api):
    api = make_api()
    paths = api.client.get("/openapi.json").json()["paths"]
    v1 = [(p, m.upper()) for p, ops in paths.items() if p.startswith("/v1") for m in ops]
    assert {p for p, _ in v1} == {
        "/v1/routing",
        "/v1/tickets",
        "/v1/tickets/{ticket_id}",
        "/v1/review",
        "/v1/review/{ticket_id}",
        "/v1/events",
    }
    for path, method in v1:
        url = path.replace("{ticket_id}", "api:1")
        for headers in (
            {},
            {"Authorization": "Bearer trg_0123456789ab_wrong"},
            {"Authorization": "Basic x"},
            {"Authorization": "Bearer not-a-key"},
        ):
            resp = api.client.request(method, url, headers=headers)
            assert resp.status_code == 401, (method, url, headers, resp.text)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    others = {p for p in paths if not p.startswith(("/v1", "/webhooks"))}
    assert others == {"/healthz", "/readyz", "/metrics"}


def test_revoked_key_is_refused(make_api):
    api = make_api(api_key_cache_s=0.5)
    assert post(api, {"text": "where is my parcel"}).status_code == 202
    key_id = api.key.split("_")[1]
    assert api.rt.store.revoke_key(key_id)
    time.sleep(0.6)  # a verified key is trusted for api_key_cache_s without a lookup
    resp = post(api, {"text": "where is my parcel"})
    assert resp.status_code == 401 and resp.json()["detail"] == "API key revoked"


# --- intake ---------------------------------------------------------------------------------------


def test_json_ticket_202_then_decision(make_api):
    api = make_api()
    resp = post(
        api, {"channel": "chat", "id": "c-1", "text": TRACK, "customer": {"email": "ana@example.com"}}
    )
    assert resp.status_code == 202
    body = resp.json()
    assert body["ticket_id"] == "chat:c-1" and body["status_url"] == "/v1/tickets/chat:c-1"
    assert resp.headers["Location"] == body["status_url"] and body["duplicate"] is False
    api.wait_idle()
    status = api.client.get(body["status_url"], headers=api.h).json()
    assert status["state"] == "auto_resolved" and status["decision"]["intent"] == "track_order"
    assert status["decision"]["route"] == "auto_resolve" and status["accepted_at"] and status["decided_at"]
    row = api.rt.store.get_intake("chat:c-1")
    assert row.state == DECIDED and "text" not in row.payload and "customer" not in row.payload  # purged
    assert api.rt.service().deps.audit.count_decisions("chat:c-1") == 1


def test_wait_returns_the_decision(make_api):
    api = make_api()
    resp = api.client.post("/v1/tickets?wait=10", json={"text": CANCEL}, headers=api.h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "auto_resolved" and resp.json()["decision"]["intent"] == "cancel_order"


def test_identity_and_idempotency(make_api):
    api = make_api()
    a = post(api, {"channel": "chat", "id": "m-9", "text": "refund please"}).json()
    b = post(api, {"channel": "chat", "id": "m-9", "text": "refund please"}).json()
    assert a["ticket_id"] == b["ticket_id"] == "chat:m-9" and b["duplicate"] is True
    other_channel = post(api, {"channel": "email", "id": "m-9", "text": "refund please"}).json()
    assert other_channel["ticket_id"] == "email:m-9"
    # two customers without ids who write the same words are never merged
    x = post(api, {"text": "cancel my order"}).json()
    y = post(api, {"text": "cancel my order"}).json()
    assert x["ticket_id"] != y["ticket_id"] and x["ticket_id"].startswith("api:")
    # Idempotency-Key: a retried request without a source id is the same ticket
    k1 = post(api, {"text": "cancel my order"}, headers={"Idempotency-Key": "req-1"}).json()
    k2 = post(api, {"text": "cancel my order"}, headers={"Idempotency-Key": "req-1"}).json()
    assert k1["ticket_id"] == k2["ticket_id"] and k2["duplicate"] is True
    conflict = post(api, {"text": "something else"}, headers={"Idempotency-Key": "req-1"})
    assert conflict.status_code == 409 and "different request" in conflict.json()["detail"]
    api.wait_idle()
    audit = api.rt.service().deps.audit
    for tid in ("chat:m-9", "email:m-9", x["ticket_id"], y["ticket_id"], k1["ticket_id"]):
        assert audit.count_decisions(tid) == 1


def test_raw_email_intake(make_api):
    api = make_api()
    raw = (EMAILS / "gmail_alternative_qp.eml").read_bytes()
    resp = api.client.post(
        "/v1/tickets?wait=10", content=raw, headers={**api.h, "Content-Type": "message/rfc822"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["ticket_id"] == "email:CAJ+8uQx3w=Zq4b5LmN1dFqk2@mail.gmail.com"
    assert resp.json()["decision"]["intent"] == "track_order"
    again = api.client.post("/v1/tickets", content=raw, headers={**api.h, "Content-Type": "message/rfc822"})
    assert again.status_code == 202 and again.json()["duplicate"] is True
    bad = api.client.post(
        "/v1/tickets", content=b"\x00\x01junk", headers={**api.h, "Content-Type": "message/rfc822"}
    )
    assert bad.status_code == 400 and "RFC 822" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("content", "ctype", "status", "needle"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"channel": "chat"}', "application/json", 422, "text' or 'html"),
        (b'{"text": "hi", "txt": "typo"}', "application/json", 422, "txt"),
        (b'{"text": "hi", "channel": "Bad Channel!"}', "application/json", 422, "channel"),
        (b'{"text": "hi", "channel": "zendesk"}', "application/json", 422, "reserved"),
        (b'{"text": "hi", "id": "  "}', "application/json", 422, "blank"),
        (b'["a list"]', "application/json", 422, "dict"),
        (b"text=hi", "application/x-www-form-urlencoded", 415, "Content-Type"),
        (b'{"text": 5}', "application/json", 422, "text"),
    ],
)
def test_bad_payloads_get_a_clear_4xx(make_api, content, ctype, status, needle):
    api = make_api()
    resp = api.client.post("/v1/tickets", content=content, headers={**api.h, "Content-Type": ctype})
    assert resp.status_code == status, resp.text
    assert needle in resp.text


def test_request_size_limit(make_api):
    api = make_api(max_request_bytes=2000)
    resp = post(api, {"text": "x" * 5000})
    assert resp.status_code == 413 and "larger than 2000" in resp.json()["error"]


def test_html_ticket_and_empty_text_go_to_a_human_not_a_crash(make_api):
    api = make_api()
    html = post(api, {"html": "<p>Please <b>cancel</b> my order</p>"}, params={"wait": 10})
    assert html.status_code == 200 and html.json()["decision"]["intent"] == "cancel_order"
    empty = post(api, {"text": ""}, params={"wait": 10})
    assert empty.status_code == 200 and empty.json()["decision"]["route"] == "escalate"


def test_unknown_ticket_is_404(make_api):
    api = make_api()
    assert api.client.get("/v1/tickets/api:nope", headers=api.h).status_code == 404


# --- review ---------------------------------------------------------------------------------------


def test_review_queue_and_actions(make_api):
    api = make_api(probability=0.75)  # below the auto threshold: suggest
    tid = post(api, {"id": "r1", "text": "I want a refund"}, params={"wait": 10}).json()["ticket_id"]
    queue = api.client.get("/v1/review?state=suggested", headers=api.h).json()
    assert tid in [i["ticket_id"] for i in queue["items"]]
    assert api.client.get("/v1/review?state=escalated", headers=api.h).status_code == 200
    assert api.client.get("/v1/review?state=done", headers=api.h).status_code == 422
    bad = api.client.post(f"/v1/review/{tid}", json={"action": "edit"}, headers=api.h)
    assert bad.status_code == 422 and "non-empty text" in bad.text
    assert api.client.post(f"/v1/review/{tid}", json={"action": "fly"}, headers=api.h).status_code == 422
    missing = api.client.post("/v1/review/api:none", json={"action": "accept"}, headers=api.h)
    assert missing.status_code == 404
    team = api.client.post(f"/v1/review/{tid}", json={"action": "reassign", "team": "nowhere"}, headers=api.h)
    assert team.status_code == 422 and "unknown team" in team.text
    done = api.client.post(
        f"/v1/review/{tid}",
        json={"action": "edit", "text": "Refund issued.", "by": "ana", "intent": "get_refund"},
        headers=api.h,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    actions = api.rt.service().deps.audit.list_actions(tid)
    assert [(a["action"], a["actor"], a["edited_draft"]) for a in actions] == [
        ("edit", "tester/ana", "Refund issued.")
    ]
    replay = api.client.post(f"/v1/review/{tid}", json={"action": "accept"}, headers=api.h)
    assert replay.status_code == 200 and replay.json().get("duplicate") is True
    assert len(api.rt.service().deps.audit.list_actions(tid)) == 1
    assert api.client.get(f"/v1/tickets/{tid}", headers=api.h).json()["state"] == "completed"


def test_escalate_moves_a_suggested_ticket_to_the_escalation_queue(make_api):
    api = make_api(probability=0.75)
    tid = post(api, {"id": "esc-1", "text": REFUND}, params={"wait": 10}).json()["ticket_id"]
    resp = api.client.post(f"/v1/review/{tid}", json={"action": "escalate", "note": "angry"}, headers=api.h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "pending_review"
    escalated = api.client.get("/v1/review?state=escalated", headers=api.h).json()["items"]
    assert tid in [i["ticket_id"] for i in escalated]


def test_routing_lists_teams_and_intents(make_api):
    api = make_api()
    body = api.client.get("/v1/routing", headers=api.h).json()
    assert body["escalation_team"] in body["teams"] and "cancel_order" in body["intents"]


# --- health, readiness, metrics --------------------------------------------------------------------


def test_health_ready_metrics(make_api):
    api = make_api()
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) >= {"database", "bundle", "checkpointer", "qdrant", "llm"}
    post(api, {"channel": "chat", "text": TRACK}, params={"wait": 10})
    text = api.client.get("/metrics").text
    assert 'triage_tickets_decided_total{channel="chat",route="auto_resolve"}' in text
    assert 'triage_node_latency_seconds_count{node="classify"}' in text
    assert 'triage_queue_depth{state="queued"} 0.0' in text
    assert "triage_llm_tokens_total" in text


def test_readyz_names_what_is_down(make_api):
    api = make_api(llm_provider="local")
    api.rt.service().deps.knowledge_base = None
    api.rt.service().deps.provider = None
    body = api.client.get("/readyz")
    assert body.status_code == 503
    assert "qdrant: RuntimeError: knowledge base not configured" in body.json()["reason"]
    assert body.json()["checks"]["llm"]["ok"] is False and body.json()["checks"]["database"]["ok"] is True


def test_service_that_cannot_start_still_accepts_and_nothing_is_lost(make_api, tmp_path):
    api = make_api(service_factory="tests.api.test_api_http:broken_factory")
    resp = post(api, {"id": "keep-me", "text": "cancel my order"})
    assert resp.status_code == 202
    api.wait_idle()
    row = api.rt.store.get_intake("api:keep-me")
    assert row.state == "queued" and "service unavailable" in row.last_error and row.payload["text"]
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and "bundle: triage service not started" in ready.json()["reason"]


def broken_factory(settings):
    raise RuntimeError("cannot load the classifier bundle at models/intent")
