"""``TriageService``: the one facade the CLI, the API and the benchmark call.

``run(ticket)`` returns one JSON-able decision and never raises for a ticket: if the graph itself
breaks (a bug, the checkpointer's database is gone) the ticket is escalated and audited by a
fallback path, so no ticket is dropped. Re-submitting the same ticket id returns the stored decision
instead of processing it again (webhook retries are idempotent). ``resume`` completes a review.
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from langgraph.types import Command
from pydantic import BaseModel, Field, ValidationError

from src.audit.models import Decision, audit_id_for, content_hash
from src.config import Settings, get_settings
from src.graph.builder import build_graph
from src.graph.deps import Deps
from src.graph.review import ReviewAction
from src.graph.tracing import tracing_scope

_USAGE_KEYS = ("step", "provider", "model", "tokens_in", "tokens_out", "cost_usd", "latency_s")


class TicketIn(BaseModel):
    id: str | None = None
    text: str
    channel: str = "api"
    subject: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ReviewError(ValueError):
    """A resume request that cannot be applied (unknown thread, nothing pending, bad action)."""


def ticket_id_for(ticket: TicketIn) -> str:
    """Given id, or a content-derived one so that a retried webhook without an id is the same ticket."""
    if ticket.id and ticket.id.strip():
        return ticket.id.strip()[:200]
    digest = hashlib.sha256(f"{ticket.channel}\n{ticket.subject or ''}\n{ticket.text}".encode()).hexdigest()
    return f"t-{digest[:20]}"


def decision_view(state: dict[str, Any], interrupts: Any = None) -> dict[str, Any]:
    """The public decision JSON from a graph state."""
    score = state.get("score") or {}
    pred = state.get("prediction") or {}
    usage = state.get("usage") or []
    latency = state.get("latency_ms") or {}
    status = state.get("status") or ("pending_review" if interrupts else "unknown")
    view: dict[str, Any] = {
        "ticket_id": state.get("ticket_id"),
        "status": status,
        "route": score.get("route", "escalate"),
        "intent": pred.get("label"),
        "intent_probability": pred.get("confidence"),
        "confidence": score.get("value"),
        "reasons": score.get("reasons", []),
        "failures": state.get("failures", []),
        "team": (state.get("assignment") or {}).get("team"),
        "sla_hours": (state.get("assignment") or {}).get("sla_hours"),
        "draft": state.get("draft_display"),
        "evidence": [
            {"id": h["id"], "similarity": round(h["similarity"], 4), "intent": h["ticket"].get("intent")}
            for h in state.get("hits") or []
        ],
        "language": (state.get("pre") or {}).get("language"),
        "flags": (state.get("pre") or {}).get("flags", []),
        "audit_id": state.get("audit_id"),
        "trace_id": state.get("trace_id"),
        "usage": {
            "tokens_in": sum(int(u.get("tokens_in", 0)) for u in usage),
            "tokens_out": sum(int(u.get("tokens_out", 0)) for u in usage),
            "cost_usd": round(sum(float(u.get("cost_usd", 0.0)) for u in usage), 8),
            "calls": [{k: u.get(k) for k in _USAGE_KEYS} for u in usage],
        },
        "latency": {"per_node_ms": latency, "total_ms": round(sum(latency.values()), 2)},
    }
    if state.get("outcome"):
        view["outcome"] = state["outcome"]
    if interrupts:
        view["status"] = "pending_review"
        view["review"] = interrupts[0].value
    return view


class TriageService:
    def __init__(self, deps: Deps, checkpointer: Any | None = None) -> None:
        from langgraph.checkpoint.memory import InMemorySaver

        self.deps = deps
        self.settings: Settings = deps.settings
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.graph = build_graph(deps, self.checkpointer)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TriageService:
        """Real wiring; raises ``deps.StartupError`` with a clear message when it cannot start."""
        from src.graph.checkpoint import make_checkpointer

        settings = settings or get_settings()
        deps = Deps.from_settings(settings)
        return cls(deps, make_checkpointer(settings))

    # --- helpers --------------------------------------------------------------------------
    def _config(self, thread_id: str, run_id: uuid.UUID, extra: dict[str, Any]) -> dict[str, Any]:
        """Run config: thread id = ticket id; trace metadata is inherited by every node's run."""
        return {
            "configurable": {"thread_id": thread_id},
            "run_id": run_id,
            "run_name": "triage_ticket",
            "tags": ["triage"],
            "metadata": {
                "ticket_id": thread_id,
                "bundle_version": getattr(self.deps.classifier, "version", None),
                "prompt_versions": self.deps.prompt_versions,
                **extra,
            },
        }

    def _snapshot(self, thread_id: str) -> Any:
        return self.graph.get_state({"configurable": {"thread_id": thread_id}})

    def _existing(self, thread_id: str) -> dict[str, Any] | None:
        snap = self._snapshot(thread_id)
        if not snap.values or "score" not in snap.values:
            return None
        view = decision_view(snap.values, getattr(snap, "interrupts", None))
        view["duplicate"] = True
        return view

    def _unfinished(self, thread_id: str) -> bool:
        try:
            snap = self._snapshot(thread_id)
        except Exception:  # noqa: BLE001 - no usable checkpoint: start over
            return False
        return bool(snap.values) and bool(snap.next) and not getattr(snap, "interrupts", None)

    # --- API ------------------------------------------------------------------------------
    def run(self, ticket: TicketIn | dict[str, Any] | str) -> dict[str, Any]:
        """Triage one ticket end to end (pausing for review on suggest/escalate)."""
        if isinstance(ticket, str):
            ticket = TicketIn(text=ticket)
        elif isinstance(ticket, dict):
            try:
                ticket = TicketIn.model_validate(ticket)
            except ValidationError as exc:
                raw = dict(ticket)
                channel = str(raw.get("channel", "api"))
                ticket = TicketIn(id=str(raw.get("id") or "") or None, text="", channel=channel)
                ticket.metadata["input_error"] = str(exc)[:300]
        thread_id = ticket_id_for(ticket)
        try:
            existing = self._existing(thread_id)
        except Exception as exc:  # noqa: BLE001 - checkpointer down: still triage, via the fallback
            return self._fallback(ticket, thread_id, exc)
        if existing is not None:
            return existing
        run_id = uuid.uuid4()
        state_in: dict[str, Any] | None = {
            "ticket_id": thread_id,
            "channel": ticket.channel,
            "subject": ticket.subject,
            # the checkpoint keeps the raw text: bound it (preprocess caps at the same size anyway)
            "raw_text": ticket.text[: self.settings.max_ticket_chars * 4],
            "content_hash": content_hash(ticket.text),
            "metadata": ticket.metadata,
            "trace_id": str(run_id),
            "received_at": datetime.now(timezone.utc).isoformat(),
            "failures": [],
            "latency_ms": {},
            "usage": [],
        }
        if self._unfinished(thread_id):
            state_in = None  # a crash mid-run left a checkpoint: continue it instead of starting over
        start = time.perf_counter()
        try:
            with tracing_scope(self.settings):
                result = self.graph.invoke(
                    state_in, self._config(thread_id, run_id, {"channel": ticket.channel}), version="v2"
                )
        except Exception as exc:  # noqa: BLE001 - the graph must never drop a ticket
            return self._fallback(ticket, thread_id, exc)
        view = decision_view(result.value, result.interrupts)
        view["latency"]["wall_ms"] = round((time.perf_counter() - start) * 1000, 2)
        return view

    def resume(self, thread_id: str, action: dict[str, Any] | ReviewAction) -> dict[str, Any]:
        """Apply a reviewer's action to a paused ticket. Raises ``ReviewError`` for bad requests."""
        try:
            act = action if isinstance(action, ReviewAction) else ReviewAction.model_validate(action)
        except ValidationError as exc:
            raise ReviewError(f"invalid review action: {exc.errors()[0]['msg']}") from exc
        snap = self._snapshot(thread_id)
        if not snap.values:
            raise ReviewError(f"no ticket with thread id {thread_id!r}")
        if not getattr(snap, "interrupts", None):
            view = decision_view(snap.values)
            view["duplicate"] = True  # already completed: a replayed resume changes nothing
            return view
        if act.action == "reassign" and act.team not in self.deps.routing.teams:
            known = ", ".join(sorted(self.deps.routing.teams))
            raise ReviewError(f"unknown team {act.team!r}; known: {known}")
        run_id = uuid.uuid4()
        with tracing_scope(self.settings):
            result = self.graph.invoke(
                Command(resume=act.model_dump(mode="json")),
                self._config(thread_id, run_id, {"resume": act.action}),
                version="v2",
            )
        return decision_view(result.value, result.interrupts)

    def pending(self, thread_id: str) -> dict[str, Any] | None:
        """The review payload of a paused ticket, or None."""
        snap = self._snapshot(thread_id)
        interrupts = getattr(snap, "interrupts", None)
        return interrupts[0].value if interrupts else None

    def _fallback(self, ticket: TicketIn, thread_id: str, exc: BaseException) -> dict[str, Any]:
        """Graph-level failure: escalate, audit (outbox if needed), report. Never raises."""
        reason = f"graph: {type(exc).__name__}: {str(exc)[:300]}"
        print(f"triage: graph failed for ticket {thread_id}: {reason}", file=sys.stderr)
        team = self.deps.routing.escalation_team
        decision = Decision(
            ticket_id=thread_id,
            content_hash=content_hash(ticket.text),
            channel=ticket.channel,
            route="escalate",
            reasons=[reason, "failed step -> human"],
            team=team,
            bundle_version=getattr(self.deps.classifier, "version", None),
        )
        audit_id = audit_id_for(thread_id)
        try:
            audit_id = self.deps.audit.record_decision(decision)
        except Exception as audit_exc:  # noqa: BLE001
            print(f"triage: AUDIT WRITE FAILED for ticket {thread_id}: {audit_exc}", file=sys.stderr)
        return {
            "ticket_id": thread_id,
            "status": "pending_review",
            "route": "escalate",
            "intent": None,
            "confidence": 0.0,
            "reasons": decision.reasons,
            "failures": [reason],
            "team": team,
            "draft": None,
            "evidence": [],
            "audit_id": audit_id,
            "trace_id": None,
            "usage": {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0, "calls": []},
            "latency": {"per_node_ms": {}, "total_ms": 0.0},
        }
