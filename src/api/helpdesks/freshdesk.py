"""Freshdesk: automation-rule webhooks in, private note + tags (+ priority/group) out.

Freshdesk does not sign webhooks: the automation rule's "Trigger webhook" action adds a custom
header ``X-Webhook-Secret: <TRIAGE_FRESHDESK_WEBHOOK_SECRET>``. Accepted bodies: the "simple"
content shape ``{"freshdesk_webhook": {"ticket_id", "ticket_subject", "ticket_description",
"ticket_contact_email", ...}}`` and an advanced JSON body ``{"ticket": {"id", "subject",
"description", ...}}``. Write-back (API v2): ``POST /api/v2/tickets/{id}/notes`` with
``private: true``; tags are read then written as a union (``PUT`` replaces the list);
``priority`` 1-4 and ``group_id``; a customer reply only via ``/reply`` when auto-send is on.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

from src.api.helpdesks.base import HttpWriter, Incoming, PayloadError, WritebackError, WritebackItem
from src.api.helpdesks.signatures import verify_shared_secret
from src.api.schemas import IntakeTicket
from src.config import Settings
from src.text.preprocess import looks_like_html, strip_html

PRIORITY = {"P1": 4, "P2": 3, "P3": 2, "P4": 1}  # Freshdesk: 1 low, 2 medium, 3 high, 4 urgent


def _html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


class Freshdesk:
    name = "freshdesk"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, headers: dict[str, str], body: bytes, now: float) -> None:
        secret = self.settings.freshdesk_webhook_secret
        verify_shared_secret(secret.get_secret_value() if secret else None, headers.get("x-webhook-secret"))

    def parse(self, headers: dict[str, str], body: bytes, payload: Any) -> Incoming:
        if not isinstance(payload, dict):
            raise PayloadError("Freshdesk payload must be a JSON object")
        key = hashlib.sha256(body).hexdigest()
        simple = payload.get("freshdesk_webhook")
        if isinstance(simple, dict):
            tid, subject = simple.get("ticket_id"), simple.get("ticket_subject")
            text = simple.get("ticket_description") or ""
            email = simple.get("ticket_contact_email") or simple.get("ticket_requester_email")
        elif isinstance(payload.get("ticket"), dict):
            t = payload["ticket"]
            tid, subject = t.get("id"), t.get("subject")
            text = t.get("description_text") or t.get("description") or ""
            email = t.get("requester_email") or t.get("email")
        else:
            raise PayloadError(
                "Freshdesk payload needs 'freshdesk_webhook' or 'ticket' with the ticket fields"
            )
        if not str(tid or "").strip():
            raise PayloadError("Freshdesk payload has no ticket id ('ticket_id' / 'ticket.id')")
        text = str(text)
        if looks_like_html(text):
            text = strip_html(text)
        return Incoming(
            IntakeTicket(
                channel=self.name,
                id=str(tid).strip(),
                subject=subject,
                text=text,
                customer={"email": str(email)} if email else None,
                metadata={"helpdesk": self.name, "helpdesk_ticket_id": str(tid).strip()},
            ),
            key,
        )

    def _writer(self) -> HttpWriter:
        s = self.settings
        if not (s.freshdesk_url and s.freshdesk_api_key):
            raise WritebackError(
                "Freshdesk write-back needs TRIAGE_FRESHDESK_URL and TRIAGE_FRESHDESK_API_KEY"
            )
        return HttpWriter(
            s.freshdesk_url,
            auth=(s.freshdesk_api_key.get_secret_value(), "X"),
            timeout_s=s.writeback_timeout_s,
            attempts=s.writeback_retries,
        )

    def write_back(self, item: WritebackItem) -> list[dict[str, Any]]:
        http = self._writer()
        base = f"/api/v2/tickets/{item.ticket_ref}"
        http.request("POST", f"{base}/notes", json={"body": _html(item.note), "private": True})
        current = http.request("GET", base) or {}
        tags = list(dict.fromkeys([*(current.get("tags") or []), *item.tags]))
        update: dict[str, Any] = {"tags": tags}
        if item.priority in PRIORITY:
            update["priority"] = PRIORITY[item.priority]
        if item.group:
            update["group_id"] = int(item.group) if item.group.isdigit() else item.group
        http.request("PUT", base, json=update)
        if item.reply:
            http.request("POST", f"{base}/reply", json={"body": _html(item.reply)})
        return http.calls
