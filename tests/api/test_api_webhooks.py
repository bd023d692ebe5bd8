"""Helpdesk webhooks end to end: signature (good, bad, stale, replayed), intake, decision, write-back
to a fake helpdesk over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest

from src.api.helpdesks.signatures import zendesk_signature
from tests.api.fake_helpdesk import FakeHelpdesk

TEXT = "Please cancel my order, I placed it by mistake yesterday evening and no longer need it."
SECRETS = {"zendesk_webhook_secret": "zd-hook-secret", "freshdesk_webhook_secret": "fd-hook-secret",
           "intercom_client_secret": "ic-client-secret"}  # fmt: skip


@pytest.fixture()
def fake():
    server = FakeHelpdesk().start()
    yield server
    server.stop()


@pytest.fixture()
def api(make_api, fake):
    return make_api(
        **SECRETS,
        zendesk_url=fake.url,
        zendesk_email="bot@example.com",
        zendesk_api_token="t",
        freshdesk_url=fake.url,
        freshdesk_api_key="k",
        intercom_url=fake.url,
        intercom_access_token="tok",
        intercom_admin_id="42",
    )


def zendesk_event(ticket_id: str, event_id: str = "01HNX-EXAMPLE") -> bytes:
    """The documented event-webhook shape (zen:event-type:ticket.created, ticket in 'detail')."""
    return json.dumps({
        "type": "zen:event-type:ticket.created", "account_id": 88888888, "id": event_id,
        "time": "2025-10-17T17:18:10Z", "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {"id": ticket_id, "subject": "Cancel", "description": TEXT, "requester_id": "20978392",
                   "status": "NEW", "priority": "LOW", "tags": [], "via": {"channel": "web"}},
        "event": {"meta": {"sequence": {"id": "x", "position": 1}}},
    }).encode()  # fmt: skip


def zendesk_headers(body: bytes, secret: str = SECRETS["zendesk_webhook_secret"], age_s: float = 0.0) -> dict:
    ts = (datetime.now(timezone.utc) - timedelta(seconds=age_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
    }


def intercom_body(conv_id: str, notif: str = "notif_1", topic: str = "conversation.user.created") -> bytes:
    return json.dumps({
        "type": "notification_event", "app_id": "abc123", "topic": topic, "id": notif,
        "created_at": 1760000000, "delivery_attempts": 1, "first_sent_at": 1760000000,
        "data": {"type": "notification_event_data", "item": {
            "type": "conversation", "id": conv_id, "created_at": 1760000000, "state": "open",
            "source": {"type": "conversation", "id": "403918", "delivered_as": "customer_initiated",
                       "subject": "", "body": f"<p>{TEXT}</p>",
                       "author": {"type": "user", "id": "5f7b", "name": "Ana", "email": "ana@example.com"}}}},
    }).encode()  # fmt: skip


def intercom_headers(body: bytes, secret: str = SECRETS["intercom_client_secret"]) -> dict:
    sig = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": sig}


def freshdesk_body(ticket_id: int) -> bytes:
    return json.dumps(
        {
            "freshdesk_webhook": {
                "ticket_id": ticket_id,
                "ticket_subject": "Cancel please",
                "ticket_description": f"<div>{TEXT}</div>",
                "ticket_contact_email": "ana@example.com",
                "ticket_priority": "Low",
                "ticket_status": "Open",
            }
        }
    ).encode()


def test_zendesk_good_bad_stale_replayed_and_write_back(api, fake):
    body = zendesk_event("35436")
    first = api.client.post("/webhooks/zendesk", content=body, headers=zendesk_headers(body))
    assert first.status_code == 202, first.text
    assert first.json()["ticket_id"] == "zendesk:35436" and first.json()["duplicate"] is False
    headers = zendesk_headers(body)
    replay = api.client.post("/webhooks/zendesk", content=body, headers=headers)
    again = api.client.post("/webhooks/zendesk", content=body, headers=headers)  # the exact same request
    assert replay.status_code == again.status_code == 202 and again.json()["duplicate"] is True
    bad = api.client.post("/webhooks/zendesk", content=body, headers=zendesk_headers(body, secret="guess"))
    assert bad.status_code == 401 and "bad X-Zendesk-Webhook-Signature" in bad.text
    tampered = api.client.post(
        "/webhooks/zendesk", content=body.replace(b"35436", b"35437"), headers=zendesk_headers(body)
    )
    assert tampered.status_code == 401
    stale = api.client.post("/webhooks/zendesk", content=body, headers=zendesk_headers(body, age_s=600))
    assert stale.status_code == 401 and "stale" in stale.text
    unsigned = api.client.post(
        "/webhooks/zendesk", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    api.wait_idle()
    assert api.rt.service().deps.audit.count_decisions("zendesk:35436") == 1  # one ticket, one decision
    assert api.rt.store.get_intake("zendesk:35436").writeback == "done"
    [put] = fake.calls("PUT", "/api/v2/tickets/35436.json")
    ticket = put["json"]["ticket"]
    assert ticket["comment"]["public"] is False and "cancel_order" in ticket["comment"]["body"]
    assert ticket["additional_tags"] == ["intent__cancel_order", "triage__auto_resolve"]
    assert "35437" not in json.dumps(fake.requests)


def test_zendesk_other_events_are_ignored_and_junk_is_4xx(api):
    other = json.dumps({"type": "zen:event-type:ticket.comment_added", "detail": {"id": "1"}}).encode()
    resp = api.client.post("/webhooks/zendesk", content=other, headers=zendesk_headers(other))
    assert resp.status_code == 200 and "comment_added" in resp.json()["ignored"]
    junk = b"not json"
    assert (
        api.client.post("/webhooks/zendesk", content=junk, headers=zendesk_headers(junk)).status_code == 400
    )
    no_id = json.dumps({"ticket": {"subject": "x"}}).encode()
    resp = api.client.post("/webhooks/zendesk", content=no_id, headers=zendesk_headers(no_id))
    assert resp.status_code == 422 and "ticket id" in resp.text


def test_intercom_good_bad_replayed_ping_and_write_back(api, fake):
    body = intercom_body("1911149811")
    ok = api.client.post("/webhooks/intercom", content=body, headers=intercom_headers(body))
    assert ok.status_code == 202 and ok.json()["ticket_id"] == "intercom:1911149811"
    retry = api.client.post("/webhooks/intercom", content=body, headers=intercom_headers(body))
    assert retry.status_code == 202 and retry.json()["duplicate"] is True
    bad = api.client.post("/webhooks/intercom", content=body, headers=intercom_headers(body, "wrong"))
    assert bad.status_code == 401
    ping = intercom_body("x", notif="notif_ping", topic="ping")
    assert api.client.post("/webhooks/intercom", content=ping, headers=intercom_headers(ping)).json() == {
        "ignored": "topic 'ping'"
    }
    api.wait_idle()
    note = fake.calls("POST", "/conversations/1911149811/reply")[0]["json"]
    assert note["message_type"] == "note" and note["admin_id"] == "42" and "cancel_order" in note["body"]
    assert api.rt.service().deps.audit.count_decisions("intercom:1911149811") == 1


def test_freshdesk_shared_secret_replay_and_write_back(api, fake):
    body = freshdesk_body(812)
    good = {"Content-Type": "application/json", "X-Webhook-Secret": SECRETS["freshdesk_webhook_secret"]}
    ok = api.client.post("/webhooks/freshdesk", content=body, headers=good)
    assert ok.status_code == 202 and ok.json()["ticket_id"] == "freshdesk:812"
    assert api.client.post("/webhooks/freshdesk", content=body, headers=good).json()["duplicate"] is True
    for headers in ({"Content-Type": "application/json"}, {**good, "X-Webhook-Secret": "nope"}):
        assert api.client.post("/webhooks/freshdesk", content=body, headers=headers).status_code == 401
    api.wait_idle()
    note = fake.calls("POST", "/api/v2/tickets/812/notes")[0]["json"]
    assert note["private"] is True and "cancel_order" in note["body"]
    assert api.rt.store.get_intake("freshdesk:812").writeback == "done"


def test_unconfigured_webhook_refuses(make_api):
    api = make_api()  # no secrets configured
    body = zendesk_event("1")
    resp = api.client.post("/webhooks/zendesk", content=body, headers=zendesk_headers(body))
    assert resp.status_code == 401 and "TRIAGE_ZENDESK_WEBHOOK_SECRET" in resp.text


def test_failed_write_back_is_retried_by_the_sweep_without_losing_the_decision(api, fake):
    fake.fail_next(3, 503)  # all three attempts of the first write-back fail
    body = zendesk_event("777")
    assert (
        api.client.post("/webhooks/zendesk", content=body, headers=zendesk_headers(body)).status_code == 202
    )
    api.wait_idle()
    row = api.rt.store.get_intake("zendesk:777")
    assert row.state == "decided" and row.writeback.startswith("pending:1")
    api.rt.sweep(
        older_than_s=0.0, writeback_after_s=0.0
    )  # the periodic sweep (forced here) retries pending write-backs
    assert api.rt.store.get_intake("zendesk:777").writeback == "done"
    assert len(fake.calls("PUT", "/api/v2/tickets/777.json")) == 4
