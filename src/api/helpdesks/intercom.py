"""Intercom: ``conversation.user.created`` notifications in, an admin note + tags out.

Notifications share one envelope (``type: notification_event``, ``topic``, ``id`` = the delivery id,
``data.item`` = the conversation); the customer's first message is ``data.item.source`` (HTML
body). ``ping`` and other topics are acknowledged and ignored. Write-back (REST API, Bearer token,
``Intercom-Version`` header): ``POST /conversations/{id}/reply`` with ``message_type: note``;
tags are created by name (``POST /tags``) and attached (``POST /conversations/{id}/tags``); a team
assignment when the team maps to an Intercom team id; a customer reply (``message_type:
comment``) only when auto-send is on.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

from src.api.helpdesks.base import HttpWriter, Incoming, PayloadError, WritebackError, WritebackItem
from src.api.helpdesks.signatures import verify_intercom
from src.api.schemas import IntakeTicket
from src.config import Settings
from src.text.preprocess import strip_html

NEW_CONVERSATION = "conversation.user.created"
API_VERSION = "2.11"


class Intercom:
    name = "intercom"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, headers: dict[str, str], body: bytes, now: float) -> None:
        secret = self.settings.intercom_client_secret
        verify_intercom(secret.get_secret_value() if secret else None, headers.get("x-hub-signature"), body)

    def parse(self, headers: dict[str, str], body: bytes, payload: Any) -> Incoming:
        if not isinstance(payload, dict):
            raise PayloadError("Intercom payload must be a JSON object")
        key = str(payload.get("id") or "") or hashlib.sha256(body).hexdigest()
        topic = payload.get("topic")
        if topic != NEW_CONVERSATION:
            return Incoming(None, key, ignored=f"topic {str(topic)[:80]!r}")
        item = (payload.get("data") or {}).get("item") if isinstance(payload.get("data"), dict) else None
        if not isinstance(item, dict) or not str(item.get("id") or "").strip():
            raise PayloadError("Intercom notification needs data.item.id (the conversation)")
        source = item.get("source") if isinstance(item.get("source"), dict) else {}
        author = source.get("author") if isinstance(source.get("author"), dict) else {}
        customer = {
            k: str(v)
            for k, v in {
                "id": author.get("id"),
                "email": author.get("email"),
                "name": author.get("name"),
            }.items()
            if v
        }
        cid = str(item["id"]).strip()
        return Incoming(
            IntakeTicket(
                channel=self.name,
                id=cid,
                subject=strip_html(source.get("subject") or "") or None,
                text=strip_html(str(source.get("body") or "")),
                customer=customer or None,
                metadata={"helpdesk": self.name, "helpdesk_ticket_id": cid},
            ),
            key,
        )

    def _writer(self) -> HttpWriter:
        s = self.settings
        if not (s.intercom_access_token and s.intercom_admin_id):
            raise WritebackError("Intercom write-back needs TRIAGE_INTERCOM_ACCESS_TOKEN and _ADMIN_ID")
        headers = {
            "Authorization": f"Bearer {s.intercom_access_token.get_secret_value()}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        }
        return HttpWriter(
            s.intercom_url, headers=headers, timeout_s=s.writeback_timeout_s, attempts=s.writeback_retries
        )

    def write_back(self, item: WritebackItem) -> list[dict[str, Any]]:
        http = self._writer()
        admin = self.settings.intercom_admin_id
        conv = f"/conversations/{item.ticket_ref}"
        body = html.escape(item.note).replace("\n", "<br>")
        http.request(
            "POST",
            f"{conv}/reply",
            json={"message_type": "note", "type": "admin", "admin_id": admin, "body": body},
        )
        for name in item.tags:
            created = http.request("POST", "/tags", json={"name": name}) or {}
            if created.get("id"):
                http.request("POST", f"{conv}/tags", json={"id": str(created["id"]), "admin_id": admin})
        if item.group:
            http.request(
                "POST",
                f"{conv}/parts",
                json={
                    "message_type": "assignment",
                    "type": "team",
                    "admin_id": admin,
                    "assignee_id": item.group,
                },
            )
        if item.reply:
            http.request(
                "POST",
                f"{conv}/reply",
                json={
                    "message_type": "comment",
                    "type": "admin",
                    "admin_id": admin,
                    "body": html.escape(item.reply),
                },
            )
        return http.calls
