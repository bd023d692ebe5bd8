"""Zendesk: new-ticket webhooks in, private comment + tags (+ priority/group) out.

Accepted payloads: the event webhook (``"type": "zen:event-type:ticket.created"`` with the ticket in
``detail``) and the trigger webhook with a JSON body an admin writes, conventionally
``{"ticket": {"id": "{{ticket.id}}", "subject": "{{ticket.title}}", "description":
"{{ticket.description}}", "requester_email": "{{ticket.requester.email}}"}}`` (docs/service.md).
Write-back: ``PUT /api/v2/tickets/{id}.json`` with a ``comment`` (``public: false``),
``additional_tags`` (adds, unlike ``tags`` which replaces), ``priority`` and ``group_id``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from src.api.helpdesks.base import HttpWriter, Incoming, PayloadError, WritebackError, WritebackItem
from src.api.helpdesks.signatures import verify_zendesk
from src.api.schemas import IntakeTicket
from src.config import Settings

PRIORITY = {"P1": "urgent", "P2": "high", "P3": "normal", "P4": "low"}
TICKET_CREATED = "zen:event-type:ticket.created"


class Zendesk:
    name = "zendesk"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, headers: dict[str, str], body: bytes, now: float) -> None:
        secret = self.settings.zendesk_webhook_secret
        verify_zendesk(
            secret.get_secret_value() if secret else None,
            headers.get("x-zendesk-webhook-signature"),
            headers.get("x-zendesk-webhook-signature-timestamp"),
            body,
            now=now,
            tolerance_s=self.settings.webhook_tolerance_s,
        )

    def parse(self, headers: dict[str, str], body: bytes, payload: Any) -> Incoming:
        if not isinstance(payload, dict):
            raise PayloadError("Zendesk payload must be a JSON object")
        key = (
            headers.get("x-zendesk-webhook-invocation-id")
            or hashlib.sha256(
                (headers.get("x-zendesk-webhook-signature-timestamp", "") + "\n").encode() + body
            ).hexdigest()
        )
        if "type" in payload:
            if payload.get("type") != TICKET_CREATED:
                return Incoming(None, key, ignored=f"event type {str(payload.get('type'))[:80]!r}")
            ticket = payload.get("detail")
        else:
            ticket = payload.get("ticket")
        if not isinstance(ticket, dict) or not str(ticket.get("id") or "").strip():
            raise PayloadError("Zendesk payload needs a ticket id ('detail.id' or 'ticket.id')")
        text = ticket.get("description") or ticket.get("latest_comment") or ""
        customer = {
            k: v
            for k, v in {"id": ticket.get("requester_id"), "email": ticket.get("requester_email")}.items()
            if v
        }
        return Incoming(
            IntakeTicket(
                channel=self.name,
                id=str(ticket["id"]).strip(),
                subject=ticket.get("subject") or ticket.get("title"),
                text=str(text),
                customer={k: str(v) for k, v in customer.items()} or None,
                metadata={
                    "helpdesk": self.name,
                    "helpdesk_ticket_id": str(ticket["id"]).strip(),
                    "tags": ticket.get("tags") or [],
                },
            ),
            key,
        )

    def _writer(self) -> HttpWriter:
        s = self.settings
        if not (s.zendesk_url and s.zendesk_email and s.zendesk_api_token):
            raise WritebackError("Zendesk write-back needs TRIAGE_ZENDESK_URL, _EMAIL and _API_TOKEN")
        return HttpWriter(
            s.zendesk_url,
            auth=(f"{s.zendesk_email}/token", s.zendesk_api_token.get_secret_value()),
            timeout_s=s.writeback_timeout_s,
            attempts=s.writeback_retries,
        )

    def write_back(self, item: WritebackItem) -> list[dict[str, Any]]:
        http = self._writer()
        path = f"/api/v2/tickets/{item.ticket_ref}.json"
        update: dict[str, Any] = {
            "comment": {"body": item.note, "public": False},
            "additional_tags": item.tags,
        }
        if item.priority in PRIORITY:
            update["priority"] = PRIORITY[item.priority]
        if item.group:
            update["group_id"] = int(item.group) if item.group.isdigit() else item.group
        http.request("PUT", path, json={"ticket": update})
        if item.reply:
            http.request("PUT", path, json={"ticket": {"comment": {"body": item.reply, "public": True}}})
        return http.calls
