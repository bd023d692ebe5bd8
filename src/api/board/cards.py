"""Kanban cards and filters (pure): audit rows and intake rows in, cards grouped by column out.

Columns follow a ticket's life: ``new`` (accepted, not decided yet) -> ``suggested`` (a draft waits
for a human) -> ``escalated`` (a person must handle it) -> ``resolved`` (auto-resolved, or completed
by a reviewer). A waiting ticket's column is the decision's *current* queue (``decisions.route``):
a reviewer's ``escalate`` moves it from suggested to escalated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

COLUMNS = ("new", "suggested", "escalated", "resolved")
COLUMN_TITLES = {"new": "New", "suggested": "Suggested", "escalated": "Escalated", "resolved": "Resolved"}
PRIORITIES = ("P1", "P2", "P3", "P4")
SLA_WINDOWS = {"overdue": 0.0, "1h": 1.0, "4h": 4.0, "24h": 24.0}
SNIPPET_CHARS = 160


def as_datetime(value: Any) -> datetime | None:
    """A timestamp from either backend (ISO text on SQLite, datetime on Postgres, epoch seconds)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def snippet(text: str | None, limit: int = SNIPPET_CHARS) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass
class Card:
    ticket_id: str
    column: str
    status: str
    channel: str
    snippet: str = ""
    intent: str | None = None
    confidence: float | None = None
    team: str | None = None
    priority: str | None = None
    sentiment: str | None = None
    created_at: datetime | None = None
    sla_due: datetime | None = None
    finished_at: datetime | None = None  # resolved: completion time (auto-resolved: decision time)
    outcome: str | None = None  # resolved: "auto" or "<action> by <actor>"
    reviewer_escalated: bool = False
    tags: list[str] = field(default_factory=list)

    def sla_left_h(self, now: datetime) -> float | None:
        if self.sla_due is None:
            return None
        return (self.sla_due - now).total_seconds() / 3600.0


def card_from_decision(row: dict[str, Any], actions: list[dict[str, Any]]) -> Card:
    """A card from an audit summary row (``record`` parsed) and the ticket's human actions (oldest first)."""
    record = row.get("record") or {}
    analysis = record.get("analysis") or {}
    status = str(row.get("status") or "pending_review")
    route = str(row.get("route") or record.get("route") or "escalate")
    created = as_datetime(row.get("created_at") or record.get("created_at"))
    team = record.get("team")
    escalations = [a for a in actions if a.get("action") == "escalate"]
    if escalations and escalations[-1].get("team"):
        team = escalations[-1]["team"]
    completing = [a for a in actions if a.get("action") not in ("escalate", "check")]
    if status == "pending_review":
        column = "escalated" if route == "escalate" else "suggested"
        outcome = None
    else:
        column = "resolved"
        last = completing[-1] if completing else None
        outcome = "auto" if status == "auto_resolved" else (
            f"{last['action']} by {last['actor']}" if last else "completed")  # fmt: skip
        if last is not None and last.get("action") == "reassign" and last.get("team"):
            team = last["team"]
    sla_hours = record.get("sla_hours")
    due = created + timedelta(hours=float(sla_hours)) if created and sla_hours is not None else None
    tags = [str(f).replace("_", " ") for f in record.get("flags") or []][:3]
    if analysis.get("escalation_risk"):
        tags.append("escalation risk")
    return Card(
        ticket_id=str(row["ticket_id"]),
        column=column,
        status=status,
        channel=str(row.get("channel") or record.get("channel") or "api"),
        snippet=snippet(record.get("text")),
        intent=row.get("intent") or record.get("intent"),
        confidence=record.get("confidence"),
        team=team,
        priority=analysis.get("priority"),
        sentiment=analysis.get("sentiment"),
        created_at=created,
        sla_due=due if column in ("suggested", "escalated") else None,
        finished_at=(as_datetime(row.get("completed_at")) or created) if column == "resolved" else None,
        outcome=outcome,
        reviewer_escalated=bool(escalations),
        tags=tags,
    )


def card_from_intake(row: dict[str, Any]) -> Card:
    """A card for a ticket accepted but not decided yet (an ``intake`` row, payload parsed)."""
    payload = row.get("payload") or {}
    text = payload.get("subject") or payload.get("text") or ""
    attempts = int(row.get("attempts") or 0)
    return Card(
        ticket_id=str(row["ticket_id"]),
        column="new",
        status=str(row.get("state") or "queued"),
        channel=str(row.get("channel") or "api"),
        snippet=snippet(text),
        created_at=as_datetime(row.get("accepted_at")),
        tags=[f"attempt {attempts}"] if attempts > 1 else [],
    )


@dataclass(frozen=True)
class Filters:
    team: str = ""
    intent: str = ""
    priority: str = ""
    channel: str = ""
    sla: str = ""  # "" | overdue | 1h | 4h | 24h (due within, overdue included)

    @classmethod
    def from_query(cls, params: Any) -> Filters:
        def get(name: str, allowed: tuple[str, ...] | None = None) -> str:
            value = str(params.get(name) or "").strip()[:200]
            return value if allowed is None or value in allowed else ""

        return cls(team=get("team"), intent=get("intent"), priority=get("priority", PRIORITIES),
                   channel=get("channel"), sla=get("sla", tuple(SLA_WINDOWS)))  # fmt: skip

    @property
    def active(self) -> bool:
        return any((self.team, self.intent, self.priority, self.channel, self.sla))

    def matches(self, card: Card, now: datetime) -> bool:
        if self.team and card.team != self.team:
            return False
        if self.intent and card.intent != self.intent:
            return False
        if self.priority and card.priority != self.priority:
            return False
        if self.channel and card.channel != self.channel:
            return False
        if self.sla:
            left = card.sla_left_h(now)
            if left is None or left > SLA_WINDOWS[self.sla]:
                return False
        return True


def columns(
    cards: list[Card], filters: Filters, now: datetime, per_column: int = 100
) -> dict[str, list[Card]]:
    """Cards by column after filtering; waiting columns oldest first (SLA order), resolved newest first."""
    out: dict[str, list[Card]] = {c: [] for c in COLUMNS}
    seen: set[str] = set()
    for card in cards:
        if card.ticket_id in seen or not filters.matches(card, now):
            continue  # a ticket decided a moment ago can still have its intake row "processing"
        seen.add(card.ticket_id)
        out[card.column].append(card)
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    for name in ("new", "suggested", "escalated"):
        out[name].sort(key=lambda c: (c.sla_due or c.created_at or epoch, c.ticket_id))
    out["resolved"].sort(key=lambda c: c.finished_at or c.created_at or epoch, reverse=True)
    return {name: items[:per_column] for name, items in out.items()}
