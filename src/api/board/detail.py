"""What the ticket panel shows, gathered from the service (unmasked view), the audit row and the vault.

Only called for a signed-in reviewer: this is the one place the board reads a customer's text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from src.api.board.cards import as_datetime
from src.api.board.explain import Reason, explain

MAX_MESSAGE_CHARS = 200_000  # what the API accepts; the panel scrolls


@dataclass
class Detail:
    ticket_id: str
    status: str
    route: str | None
    channel: str | None
    team: str | None
    intent: str | None
    intent_probability: float | None
    score: float | None
    top: list[tuple[str, float]]
    subject: str | None
    message: str
    message_source: str  # "as received" | "cleaned" | "masked (original purged)"
    language: str | None
    analysis: dict[str, Any]
    sensitive: list[str]
    reasons: list[Reason]
    similar: list[dict[str, Any]]
    draft: str | None
    decided_at: datetime | None
    sla_hours: float | None
    sla_due: datetime | None
    outcome: dict[str, Any] | None
    actions: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return self.status == "pending_review"

    @property
    def checkable(self) -> bool:
        return self.status == "auto_resolved"


def _top(review: dict[str, Any], row: dict[str, Any]) -> list[tuple[str, float]]:
    raw = review.get("top3") or row.get("top3") or []
    out = []
    for item in raw:
        try:
            label, prob = item[0], float(item[1])
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        out.append((str(label), prob))
    return out


def _similar(review: dict[str, Any], row: dict[str, Any]) -> list[dict[str, Any]]:
    if review.get("similar_tickets"):
        return list(review["similar_tickets"])
    return [dict(e) for e in row.get("evidence") or []]


def _message(private: dict[str, Any] | None, review: dict[str, Any], row: dict[str, Any]) -> tuple[str, str]:
    if private and not private.get("purged") and private.get("raw_text"):
        return str(private["raw_text"])[:MAX_MESSAGE_CHARS], "as received"
    ticket_text = (review.get("ticket") or {}).get("text")
    if ticket_text:
        return str(ticket_text), "cleaned"
    return str(row.get("text") or ""), "masked (original purged by retention)"


def _actions(actions: list[dict[str, Any]], private: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Audit rows for display: times parsed, texts unmasked with the ticket's own PII map."""
    from src.text.pii import unmask

    mapping = (private or {}).get("pii_map") or {}
    out = []
    for a in actions:
        item = dict(a)
        item["created_at"] = as_datetime(a.get("created_at"))
        if item.get("edited_draft"):
            item["edited_draft"] = unmask(str(item["edited_draft"]), mapping)
        out.append(item)
    return out


def build_detail(
    ticket_id: str,
    view: dict[str, Any],
    row: dict[str, Any] | None,
    private: dict[str, Any] | None,
    actions: list[dict[str, Any]],
) -> Detail:
    row = row or {}
    review = view.get("review") or {}
    analysis = dict(review.get("analysis") or row.get("analysis") or {})
    sensitive = analysis.get("sensitive") or {}
    flags = [k.replace("_", " ") for k, v in sensitive.items() if v] if isinstance(sensitive, dict) else []
    message, source = _message(private, review, row)
    decided = as_datetime(row.get("created_at"))
    sla_hours = view.get("sla_hours") if view.get("sla_hours") is not None else row.get("sla_hours")
    due = decided + timedelta(hours=float(sla_hours)) if decided and sla_hours is not None else None
    return Detail(
        ticket_id=ticket_id,
        status=str(view.get("status") or row.get("status") or "unknown"),
        route=view.get("route"),
        channel=(review.get("ticket") or {}).get("channel") or row.get("channel"),
        team=view.get("team"),
        intent=view.get("intent"),
        intent_probability=view.get("intent_probability", row.get("confidence")),
        score=view.get("confidence"),
        top=_top(review, row),
        subject=(private or {}).get("subject"),
        message=message,
        message_source=source,
        language=view.get("language") or row.get("language"),
        analysis=analysis,
        sensitive=flags,
        reasons=explain([str(r) for r in view.get("reasons") or []]),
        similar=_similar(review, row),
        draft=view.get("draft"),
        decided_at=decided,
        sla_hours=sla_hours,
        sla_due=due if view.get("status") == "pending_review" else None,
        outcome=view.get("outcome"),
        actions=_actions(actions, private),
        failures=[str(f) for f in view.get("failures") or []],
    )
