"""Audit records: one Decision per ticket id, any number of HumanActions linked to it.

Ids are derived from content (uuid5) so that a retry, a resume or an outbox replay produces the
*same* id and the store can ignore the duplicate: exactly-once without a coordinator.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

_NS = uuid.UUID("6f2b7c1e-4d0a-4b8e-9c39-1f1e6c2d7a10")

ActionName = Literal["accept", "edit", "respond", "reassign", "ignore", "escalate", "check"]
# Review actions (resume a paused ticket). ``escalate`` does not complete the ticket: it moves it to the
# escalation queue, where it waits for the next action. ``check`` is not a review action: it is a
# reviewer's spot check of an auto-resolved ticket (correct or not), recorded without changing its status.
ACTIONS: tuple[str, ...] = ("accept", "edit", "respond", "reassign", "ignore", "escalate")
COMPLETING_ACTIONS: tuple[str, ...] = ("accept", "edit", "respond", "reassign", "ignore")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def audit_id_for(ticket_id: str) -> str:
    """The decision id of a ticket: known before the write (reported even when the store is down)."""
    return str(uuid.uuid5(_NS, f"decision:{ticket_id}"))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


class Decision(BaseModel):
    """Everything needed to explain (and later re-train on) one routed ticket."""

    ticket_id: str
    content_hash: str
    channel: str = "api"
    text: str = ""  # cleaned, PII-masked ticket text (what the models saw; used for feedback rows)
    language: str | None = None
    flags: list[str] = Field(default_factory=list)
    bundle_version: str | None = None
    prompt_versions: dict[str, str] = Field(default_factory=dict)
    intent: str | None = None
    confidence: float | None = None
    top3: list[tuple[str, float]] = Field(default_factory=list)
    analysis: dict[str, Any] | None = None
    evidence: list[dict[str, Any]] = Field(default_factory=list)  # {"id", "score", "similarity", "intent"}
    draft: str | None = None
    score: float = 0.0
    route: str = "escalate"
    reasons: list[str] = Field(default_factory=list)
    team: str | None = None
    sla_hours: float | None = None
    latency_ms: dict[str, float] = Field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    trace_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def audit_id(self) -> str:
        return audit_id_for(self.ticket_id)


class HumanAction(BaseModel):
    """A reviewer's action on a paused ticket (linked to the decision by ticket id / audit id)."""

    ticket_id: str
    action: ActionName
    actor: str = "unknown"
    edited_draft: str | None = None
    corrected_intent: str | None = None
    team: str | None = None  # reassign target
    note: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    action_id: str | None = None  # idempotency key; derived from content when not given
    # the reviewer says this ticket must never be learnt from (training rows, knowledge base)
    bad_example: bool = False

    def key(self) -> str:
        """Stable id: the same resume replayed (node re-run, webhook retry) is recorded once."""
        if self.action_id:
            return self.action_id
        fields = [self.ticket_id, self.action, self.actor, self.edited_draft]
        extra = [True] if self.bad_example else []  # keys of unmarked actions stay what they were
        body = json.dumps([*fields, self.corrected_intent, self.team, self.note, *extra])
        return str(uuid.uuid5(_NS, f"action:{body}"))


DecisionStatus = Literal["auto_resolved", "pending_review", "completed"]


def initial_status(route: str) -> DecisionStatus:
    """A decision starts auto-resolved or waiting for a human; a completing action makes it completed."""
    return "auto_resolved" if route == "auto_resolve" else "pending_review"


def _no_nul(text: str) -> str:
    """Postgres cannot store NUL in text or JSONB; a decision must never be refused for one."""
    return text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")


def decision_row(decision: Decision) -> tuple[Any, ...]:
    """Values in ``DECISION_COLUMNS`` order (``created_at`` as ISO text works for both backends)."""
    return (
        audit_id_for(decision.ticket_id),
        decision.ticket_id,
        decision.content_hash,
        _no_nul(decision.channel),
        decision.bundle_version,
        decision.intent,
        decision.route,
        decision.score,
        decision.trace_id,
        decision.created_at.isoformat(),
        _no_nul(decision.model_dump_json()),
        initial_status(decision.route),
    )


def action_row(action: HumanAction) -> tuple[Any, ...]:
    """Values in ``ACTION_COLUMNS`` order."""
    return (
        action.key(),
        audit_id_for(action.ticket_id),
        action.ticket_id,
        action.actor,
        action.action,
        action.edited_draft,
        action.corrected_intent,
        action.team,
        action.note,
        action.created_at.isoformat(),
        int(action.bad_example),
    )
