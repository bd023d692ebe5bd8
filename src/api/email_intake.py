"""Raw email (``message/rfc822``) -> an intake ticket.

Why the stdlib ``email`` package with ``policy=default``: it decodes MIME multipart, encoded-word
headers, quoted-printable/base64 bodies and charsets the way mail clients do, and it records
defects instead of raising on the malformed mail that real customers send. The body is the
text/plain part when there is one, else the HTML part turned into text with the same HTML stripper
the preprocessor uses. Attachments are listed (name, type), never read: their bytes are not
ticket text and may be large or hostile.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from email.utils import getaddresses
from typing import Any

from src.api.schemas import IntakeTicket
from src.text.preprocess import strip_html

MAX_ATTACHMENTS_LISTED = 50


class EmailError(ValueError):
    """The body is not a usable RFC 822 message (the API answers 400 with this message)."""


def _decode_part(part: Message) -> str:
    """A text part's content in any charset; unknown or lying charsets degrade to replacement chars."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, AssertionError, KeyError, ValueError):
        pass
    payload = part.get_payload(decode=True) or b""
    if isinstance(payload, str):
        return payload
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # charset name Python does not know
        return payload.decode("utf-8", errors="replace")


def _header(msg: Message, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a malformed header is a missing header, not a crash
        return None
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _attachments(msg: EmailMessage, body: Message | None) -> list[dict[str, Any]]:
    """Every part that is not the body and not an unnamed text part: files, inline images, mails."""
    listed: list[dict[str, Any]] = []
    try:
        parts = list(msg.walk()) if msg.is_multipart() else []
    except Exception:  # noqa: BLE001 - odd MIME trees: list nothing rather than fail the ticket
        parts = []
    for part in parts:
        ctype = part.get_content_type()
        if part is body or (part.is_multipart() and ctype != "message/rfc822"):
            continue
        try:
            name = part.get_filename()
        except Exception:  # noqa: BLE001
            name = None
        if part.get_content_maintype() == "text" and not name:
            continue  # an alternative body (e.g. the HTML twin of the plain text)
        listed.append({"filename": name, "content_type": ctype})
        if len(listed) >= MAX_ATTACHMENTS_LISTED:
            break
    return listed


def _body_part(msg: EmailMessage) -> Message | None:
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        part = None
    if part is None and not msg.is_multipart() and msg.get_content_maintype() == "text":
        part = msg
    return part


def _body(part: Message | None) -> tuple[str, str | None]:
    """(text, html): prefer text/plain; the HTML part is kept only when there is no plain part."""
    if part is None:
        return "", None
    content = _decode_part(part)
    if part.get_content_subtype() == "html":
        return strip_html(content), content
    return content, None


def message_id_of(value: str | None) -> str | None:
    """``<abc@host>`` -> ``abc@host`` (the source id of an email ticket)."""
    if not value:
        return None
    mid = value.strip().strip("<>").strip()
    return mid[:200] or None


def parse_email(raw: bytes) -> IntakeTicket:
    """Parse one raw email; raises :class:`EmailError` when it is not a message at all."""
    if not raw or not raw.strip():
        raise EmailError("empty message/rfc822 body")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage) or not list(msg.keys()):
        raise EmailError("not an RFC 822 message: no header lines found (expected From:, Subject:, ...)")
    if not any(_header(msg, h) for h in ("From", "Message-ID", "Subject", "Date", "To")):
        raise EmailError("not an RFC 822 message: none of From, To, Subject, Date, Message-ID is present")
    body = _body_part(msg)
    text, html = _body(body)
    from_header = _header(msg, "From")
    customer: dict[str, Any] = {}
    if from_header:
        name, addr = next(iter(getaddresses([from_header])), ("", ""))
        customer = {k: v for k, v in {"email": addr or None, "name": name or None}.items() if v}
    metadata: dict[str, Any] = {
        "attachments": _attachments(msg, body),
        "in_reply_to": message_id_of(_header(msg, "In-Reply-To")),
        "date": _header(msg, "Date"),
    }
    if html is not None:
        metadata["body_source"] = "html"
    defects = [type(d).__name__ for d in getattr(msg, "defects", [])]
    if defects:
        metadata["mime_defects"] = sorted(set(defects))[:10]
    return IntakeTicket(
        channel="email",
        id=message_id_of(_header(msg, "Message-ID")),
        subject=_header(msg, "Subject"),
        text=text,
        customer=customer or None,
        metadata={k: v for k, v in metadata.items() if v},
    )
