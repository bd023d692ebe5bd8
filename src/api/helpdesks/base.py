"""What every helpdesk adapter shares: the write-back content (pure) and one retrying HTTP client.

Write-back content: an internal note with the draft, intent, confidence and reasons; tags
``intent__<name>`` and ``triage__<route>``; priority and group where Settings map them. The draft
is sent to the *customer* only when the route is ``auto_resolve`` and the channel is listed in
``TRIAGE_AUTO_SEND_CHANNELS`` (off by default): everything else is a private note for agents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from src.api.schemas import IntakeTicket
from src.config import Settings

_TAG_SAFE = re.compile(r"[^a-z0-9_]+")


class PayloadError(ValueError):
    """The webhook body is not a payload this adapter understands (answered with 422)."""


class WritebackError(RuntimeError):
    """The helpdesk refused or could not be reached after retries."""


@dataclass
class WritebackItem:
    ticket_ref: str  # the helpdesk's ticket / conversation id
    note: str
    tags: list[str]
    priority: str | None = None  # P1..P4 from the analysis
    group: str | None = None  # helpdesk group id mapped from the team
    reply: str | None = None  # set only when the draft may go to the customer


@dataclass
class Incoming:
    """A verified webhook: the ticket to triage (or None + why it is ignored) and its delivery key."""

    ticket: IntakeTicket | None
    delivery_key: str
    ignored: str | None = None


class Helpdesk(Protocol):
    name: str

    def verify(self, headers: dict[str, str], body: bytes, now: float) -> None: ...

    def parse(self, headers: dict[str, str], body: bytes, payload: Any) -> Incoming: ...

    def write_back(self, item: WritebackItem) -> list[dict[str, Any]]: ...


def tag(prefix: str, value: str | None) -> str | None:
    if not value:
        return None
    clean = _TAG_SAFE.sub("_", value.lower()).strip("_")
    return f"{prefix}__{clean}" if clean else None


def note_text(decision: dict[str, Any]) -> str:
    """The internal note agents read in their helpdesk (plain text)."""
    conf = decision.get("confidence")
    prob = decision.get("intent_probability")
    lines = [
        f"Triage: {decision.get('route', 'escalate')} (team: {decision.get('team') or '-'})",
        f"Intent: {decision.get('intent') or 'unknown'}"
        + (f" (classifier probability {prob:.2f})" if isinstance(prob, (int, float)) else ""),
        f"Confidence score: {conf:.2f}" if isinstance(conf, (int, float)) else "Confidence score: -",
        "Reasons:",
        *[f"- {r}" for r in (decision.get("reasons") or ["none recorded"])],
    ]
    if decision.get("draft"):
        lines += [
            "",
            "Suggested reply (draft, not sent):" if not decision.get("_sent") else "Reply sent:",
            decision["draft"],
        ]
    return "\n".join(lines)


def writeback_item(
    helpdesk: str,
    ticket_ref: str,
    decision: dict[str, Any],
    analysis: dict[str, Any] | None,
    settings: Settings,
) -> WritebackItem:
    """Pure: what to write back for one decision. ``analysis`` comes from the audit record."""
    route = decision.get("route") or "escalate"
    auto_send = route == "auto_resolve" and helpdesk in settings.auto_send_channels
    reply = decision.get("draft") if auto_send and decision.get("draft") else None
    note = note_text({**decision, "_sent": reply is not None})
    tags = [t for t in (tag("intent", decision.get("intent")), tag("triage", route)) if t]
    team = decision.get("team")
    group = settings.helpdesk_groups.get(helpdesk, {}).get(team) if team else None
    priority = (analysis or {}).get("priority")
    return WritebackItem(
        ticket_ref=ticket_ref, note=note, tags=tags, priority=priority, group=group, reply=reply
    )


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class HttpWriter:
    """httpx client + tenacity: retries connection errors, 429 and 5xx (honouring Retry-After)."""

    base_url: str
    auth: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    attempts: int = 3
    sleep: Callable[[float], None] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, 30.0)
        return wait_exponential(multiplier=0.2, max=5)(state)

    def request(self, method: str, path: str, json: Any = None) -> Any:
        def once() -> Any:
            try:
                with httpx.Client(
                    base_url=self.base_url, auth=self.auth, headers=self.headers, timeout=self.timeout_s
                ) as client:
                    resp = client.request(method, path, json=json)
            except httpx.TransportError as exc:
                raise _Retryable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            self.calls.append({"method": method, "path": path, "status": resp.status_code})
            if resp.status_code == 429 or resp.status_code >= 500:
                retry_after = resp.headers.get("Retry-After")
                wait = float(retry_after) if retry_after and retry_after.isdigit() else None
                raise _Retryable(f"{method} {path}: HTTP {resp.status_code}", wait)
            if resp.status_code >= 400:
                raise WritebackError(f"{method} {path}: HTTP {resp.status_code}: {resp.text[:200]}")
            return resp.json() if resp.content else None

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=True,
            **({"sleep": self.sleep} if self.sleep else {}),
        )
        try:
            return retrying(once)
        except _Retryable as exc:
            raise WritebackError(f"gave up after {self.attempts} attempts: {exc}") from exc
