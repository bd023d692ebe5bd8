"""Webhook signature checks (pure functions over raw body bytes and header values).

Each helpdesk signs differently:
- Zendesk: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, timestamp + body)) with the
  timestamp in ``X-Zendesk-Webhook-Signature-Timestamp``; a timestamp outside the tolerance window
  is rejected, so a captured request cannot be replayed later (replays inside the window are
  caught by the delivery dedupe table).
- Intercom: ``X-Hub-Signature`` = ``sha1=`` + hex(HMAC-SHA1(client secret, body)).
- Freshdesk: no signing; the automation rule sends a shared secret in a custom header.
All comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone


class SignatureError(ValueError):
    """Verification failed; the message says why (returned to the caller as a 401 body)."""


def _secret(secret: str | None, name: str) -> bytes:
    if not secret:
        raise SignatureError(f"webhook not configured: set {name}")
    return secret.encode()


def parse_timestamp(value: str) -> float:
    """Zendesk sends ISO 8601 (``2024-04-17T17:18:10Z``); epoch seconds are accepted too."""
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignatureError(f"unreadable signature timestamp {value[:40]!r}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.timestamp()


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_zendesk(
    secret: str | None,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: float,
) -> None:
    key = _secret(secret, "TRIAGE_ZENDESK_WEBHOOK_SECRET")
    if not signature or not timestamp:
        raise SignatureError("missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp")
    age = now - parse_timestamp(timestamp)
    if abs(age) > tolerance_s:
        raise SignatureError(f"stale signature timestamp ({age:.0f}s from now; tolerance {tolerance_s:.0f}s)")
    expected = zendesk_signature(key.decode(), timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureError("bad X-Zendesk-Webhook-Signature")


def intercom_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_intercom(secret: str | None, signature: str | None, body: bytes) -> None:
    key = _secret(secret, "TRIAGE_INTERCOM_CLIENT_SECRET")
    if not signature:
        raise SignatureError("missing X-Hub-Signature")
    expected = intercom_signature(key.decode(), body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureError("bad X-Hub-Signature")


def verify_shared_secret(secret: str | None, presented: str | None) -> None:
    key = _secret(secret, "TRIAGE_FRESHDESK_WEBHOOK_SECRET")
    if not presented:
        raise SignatureError("missing X-Webhook-Secret header")
    if not hmac.compare_digest(key, presented.strip().encode()):
        raise SignatureError("bad X-Webhook-Secret")
