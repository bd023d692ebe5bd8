"""``TriageService``: the one facade the CLI, the API and the benchmark call.

Guarantees (each pinned by a test in tests/graph):

- Identity: a ticket is ``"{channel}:{source id}"`` (``ticket_id_for``); without a source id it gets
  a fresh id, so two customers are never merged; a retry with the same source id is the same ticket.
- Exactly one decision: the audit row is the completion marker. ``run`` on a ticket whose graph
  stopped part-way (a crash at any node boundary) continues it from the checkpoint; a ticket that
  is decided returns the stored view (``duplicate: true``). No node before ``audit`` re-runs once the
  decision is written: a checkpoint that is behind the audit row (not written yet, or rolled back by
  a power loss) is replaced by the row's decision. Checkpoints are written before every step when an
  LLM is configured (a crash never pays for a call twice) and only when the run pauses or ends
  without one (``Settings.graph_durability``): then a crash re-runs the cheap, deterministic steps.
- One at a time: a per-ticket lock (Postgres advisory lock / lock file) means two runs or resumes of
  the same ticket never both execute; the loser gets ``status: processing, busy: true`` from ``run``
  and ``TicketBusy`` from ``resume``.
- Never raises for a ticket: if the graph itself breaks, the ticket is put into the review queue as
  an escalation *through the graph* (a real review item ``resume`` can complete); if even that
  fails, the decision is audited directly and the review item is rebuilt from the audit row later.
- PII: the graph state and checkpoints hold masked text only. The submitted text and the PII map
  live in the audit database's vault; views returned here are unmasked on the way out.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from langgraph.types import Command
from pydantic import BaseModel, Field, ValidationError, field_validator

from src.audit.models import Decision, audit_id_for, content_hash
from src.config import Settings, get_settings
from src.graph import nodes
from src.graph.builder import build_graph
from src.graph.deps import Deps
from src.graph.locks import TicketLocks, locks_for
from src.graph.review import ReviewAction, review_payload
from src.graph.tracing import tracing_scope
from src.text.pii import mask_pii, unmask

_USAGE_KEYS = ("step", "provider", "model", "tokens_in", "tokens_out", "cost_usd", "latency_s")
CHANNEL_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_SOURCE_ID = 200
REVIEW_STATES = {"suggested": "suggest", "escalated": "escalate"}


# --- identity ----------------------------------------------------------------------------------


def normalise_channel(channel: str) -> str:
    """Channel names are lower-case ``[a-z0-9_-]{1,32}`` (``chat``, ``email``, ``zendesk`` ...)."""
    name = str(channel).strip().lower()
    if not CHANNEL_RE.match(name):
        raise ValueError(f"invalid channel {channel!r}: use lower-case letters, digits, '_' or '-' (max 32)")
    return name


def ticket_id_for(channel: str, source_id: str | int | None) -> str:
    """``"{channel}:{source id}"``, or ``"{channel}:{fresh uuid hex}"`` when the source gave no id.

    A source id that is very long or holds control characters is replaced by its hash (stable, so a
    retry still matches); nothing content-derived is used, so equal texts are different tickets.
    """
    channel = normalise_channel(channel)
    sid = "" if source_id is None else str(source_id).strip()
    if not sid:
        return f"{channel}:{uuid.uuid4().hex}"
    if len(sid) > MAX_SOURCE_ID or not sid.isprintable():
        sid = "h-" + hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{channel}:{sid}"


class TicketIn(BaseModel):
    id: str | None = None  # the source's id (message-id, helpdesk ticket id); None -> a fresh ticket
    text: str
    channel: str = "api"
    subject: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return normalise_channel(value)


class ReviewError(ValueError):
    """A resume request that cannot be applied (bad action, unknown team ...): a 4xx for the API."""


class TicketNotFound(ReviewError):
    """No ticket with that id (404)."""


class TicketBusy(ReviewError):
    """Another run or resume of the same ticket is executing right now (409; retry later)."""


# --- views -------------------------------------------------------------------------------------


def remask(text: str, mapping: dict[str, str]) -> str:
    """Replace the ticket's known PII values by their placeholders (inverse of ``unmask``)."""
    for placeholder, value in sorted(mapping.items(), key=lambda kv: len(kv[1]), reverse=True):
        if value:
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", placeholder, text)
    return text


def _unmasked(view: dict[str, Any], private: dict[str, Any] | None) -> dict[str, Any]:
    """A view with PII restored from the vault (drafts, reply, the reviewer's ticket text)."""
    mapping = (private or {}).get("pii_map") or {}
    if view.get("draft"):
        view["draft"] = unmask(view["draft"], mapping)
    if isinstance(view.get("outcome"), dict) and view["outcome"].get("reply"):
        view["outcome"] = {**view["outcome"], "reply": unmask(view["outcome"]["reply"], mapping)}
    review = view.get("review")
    if isinstance(review, dict):
        review = dict(review)
        if review.get("draft"):
            review["draft"] = unmask(review["draft"], mapping)
        ticket = dict(review.get("ticket") or {})
        text = unmask(ticket.get("text") or "", mapping)
        raw = (private or {}).get("raw_text")
        ticket["text"] = text or (raw[:2000] if raw else "")  # never preprocessed (fallback): the raw text
        ticket["subject"] = (private or {}).get("subject")
        review["ticket"] = ticket
        view["review"] = review
    return view


def decision_view(
    state: dict[str, Any], interrupts: Any = None, private: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The public decision JSON from a graph state (unmasked with ``private`` when given)."""
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
        "draft": (state.get("draft") or {}).get("text"),
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
    return _unmasked(view, private)


def state_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A graph state that says exactly what an audit row says (to rebuild a lost review item)."""
    route = row.get("route", "escalate")
    text = row.get("text") or ""
    intent = row.get("intent")
    queue = {"auto_resolve": "auto_resolve", "suggest": "review"}.get(route, "escalation")
    return {
        "ticket_id": row["ticket_id"],
        "channel": row.get("channel", "api"),
        "content_hash": row.get("content_hash") or content_hash(""),
        "trace_id": row.get("trace_id"),
        "audit_id": row.get("audit_id") or audit_id_for(row["ticket_id"]),
        "pre": {"masked_text": text, "language": row.get("language"), "flags": row.get("flags", []),
                "valid": bool(text)},
        "prediction": None if intent is None else {
            "label": intent, "confidence": row.get("confidence"), "top3": row.get("top3", []), "valid": True},
        "analysis": row.get("analysis"),
        "draft": {"text": row["draft"]} if row.get("draft") else None,
        "score": {"value": row.get("score", 0.0), "route": route, "reasons": row.get("reasons", []),
                  "adjustments": {}},
        "assignment": {"team": row.get("team"), "sla_hours": row.get("sla_hours"), "queue": queue},
    }  # fmt: skip


def row_view(row: dict[str, Any], private: dict[str, Any] | None = None) -> dict[str, Any]:
    """The decision view from the audit row alone (no checkpoint to read it from)."""
    state = state_from_row(row)
    state["latency_ms"] = row.get("latency_ms") or {}
    state["status"] = row.get("status") or "pending_review"
    view = decision_view(state)
    view["evidence"] = [
        {"id": e.get("id"), "similarity": e.get("similarity"), "intent": e.get("intent")}
        for e in row.get("evidence", [])
    ]
    view["usage"] = {"tokens_in": row.get("tokens_in", 0), "tokens_out": row.get("tokens_out", 0),
                     "cost_usd": row.get("cost_usd", 0.0), "calls": []}  # fmt: skip
    if view["status"] == "pending_review":
        view["review"] = review_payload(state)
    return _unmasked(view, private)


def _unfinished(snap: Any) -> bool:
    """A graph that stopped part-way (not paused for review, not at its end).

    ``snap.tasks``, not ``snap.next``: when a process dies after a step's node writes were saved but
    before the step's checkpoint, ``next`` lists nothing (every task has its writes) although the
    graph has not moved on — the chaos run found tickets that looked finished half-way.
    """
    return bool(snap.values) and bool(getattr(snap, "tasks", ())) and not getattr(snap, "interrupts", None)


def _decided_elsewhere(row: dict[str, Any] | None, values: dict[str, Any]) -> bool:
    """The audit row was not written by this graph run (the direct fallback wrote it: other trace id).

    Continuing the graph then would end in a decision the row does not say; the graph is set to the
    row's decision instead. A row written by this run's own ``audit`` step carries its trace id.
    """
    return row is not None and row.get("trace_id") != values.get("trace_id")


PRE_AUDIT = frozenset({"preprocess", "classify", "analyze", "retrieve", "draft", "score", "route"})


def _pending_nodes(snap: Any) -> set[str]:
    return {t.name for t in getattr(snap, "tasks", ()) or ()} | set(getattr(snap, "next", ()) or ())


def _behind_row(snap: Any, row: dict[str, Any] | None) -> bool:
    """The checkpoint says less than the audit row: the graph has yet to run a step before ``audit``
    although the decision is written, or waits for a reviewer whose completing action is recorded.

    Possible when checkpoints are written only at exit (a process killed between the audit write and
    the exit) or were rolled back by a power loss (checkpoints are not fsynced per write). The audit
    row is the record: re-running the steps before it could decide differently (an LLM), and a
    second reviewer action would be recorded twice.
    """
    if row is None or not snap.values:
        return False
    if getattr(snap, "interrupts", None):
        return row.get("status") == "completed"
    return bool(_pending_nodes(snap) & PRE_AUDIT)


def _busy(ticket_id: str) -> dict[str, Any]:
    return {"ticket_id": ticket_id, "status": "processing", "busy": True, "route": None,
            "reasons": ["this ticket is being processed by another worker right now"]}  # fmt: skip


def _input_problem(exc: ValidationError) -> str:
    """A validation summary that never echoes the submitted values (they may hold PII)."""
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)]
    return "; ".join(parts)[:300]


class TriageService:
    def __init__(self, deps: Deps, checkpointer: Any | None = None, locks: TicketLocks | None = None) -> None:
        from langgraph.checkpoint.memory import InMemorySaver

        self.deps = deps
        self.settings: Settings = deps.settings
        self.checkpointer = checkpointer if checkpointer is not None else InMemorySaver()
        self.graph = build_graph(deps, self.checkpointer)
        self.locks = locks if locks is not None else locks_for(deps.audit, deps.settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TriageService:
        """Real wiring; raises ``deps.StartupError`` with a clear message when it cannot start."""
        from src.graph.checkpoint import make_checkpointer

        settings = settings or get_settings()
        deps = Deps.from_settings(settings)
        return cls(deps, make_checkpointer(settings))

    def close(self) -> None:
        """Release pools and files (the API calls this at shutdown)."""
        for closer in (getattr(self.locks, "close", None), getattr(self.deps.audit, "close", None),
                       getattr(getattr(self.checkpointer, "conn", None), "close", None)):  # fmt: skip
            if closer is not None:
                try:
                    closer()
                except Exception as exc:  # noqa: BLE001 - best effort at shutdown
                    print(f"triage: close failed: {exc}", file=sys.stderr)

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

    @property
    def durability(self) -> str:
        """When checkpoints are written: ``sync`` (before every step) or ``exit`` (pause or end).

        ``auto``: sync while an LLM provider is configured, so a crash never pays for a call twice;
        exit without one (the classifier-only fast path), where re-running a step is cheap and gives
        the same result, and one checkpoint per run instead of one per step is most of the graph's cost.
        Either way the audit row is the completion marker (see ``_behind_row``).
        """
        mode = self.settings.graph_durability
        if mode == "auto":
            return "sync" if self.deps.provider is not None else "exit"
        return mode

    def _invoke(
        self, payload: Any, thread_id: str, extra: dict[str, Any], run_id: uuid.UUID | None = None
    ) -> Any:
        """Run the graph with checkpoints written as ``durability`` says."""
        run_id = run_id or uuid.uuid4()
        with tracing_scope(self.settings):
            return self.graph.invoke(
                payload, self._config(thread_id, run_id, extra), version="v2", durability=self.durability
            )

    def _snapshot(self, thread_id: str) -> Any:
        return self.graph.get_state({"configurable": {"thread_id": thread_id}})

    def _row(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return self.deps.audit.get_decision(thread_id)
        except Exception as exc:  # noqa: BLE001 - store down: the checkpoint still knows the ticket
            print(f"triage: audit read failed for {thread_id}: {exc}", file=sys.stderr)
            return None

    def _private(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return self.deps.audit.get_private(thread_id)
        except Exception:  # noqa: BLE001 - views stay masked when the vault is unreachable
            return None

    def _view(self, values: dict[str, Any], interrupts: Any, thread_id: str) -> dict[str, Any]:
        return decision_view(values, interrupts, self._private(thread_id))

    def _keep_private(self, ticket: TicketIn, thread_id: str) -> None:
        """The submitted text (bounded: preprocess caps it anyway), subject and metadata -> the vault."""
        text = ticket.text[: self.settings.max_ticket_chars * 4]
        self.deps.audit.save_private(thread_id, text, ticket.subject, ticket.metadata)

    def _ensure_audited(self, values: dict[str, Any]) -> None:
        """A paused/finished graph whose decision never reached the store (outbox failed): write it now."""
        try:
            self.deps.audit.record_decision(nodes.build_decision(values, self.deps))
        except Exception as exc:  # noqa: BLE001
            print(f"triage: AUDIT WRITE FAILED for ticket {values.get('ticket_id')}: {exc}", file=sys.stderr)

    def _restore(self, thread_id: str, row: dict[str, Any]) -> Any:
        """Rebuild the review item of a decision that has an audit row but no checkpoint."""
        config = {"configurable": {"thread_id": thread_id}}
        self.graph.update_state(config, state_from_row(row), as_node="route")
        return self._invoke(None, thread_id, {"restored_from_audit": True})

    # --- API ------------------------------------------------------------------------------
    def run(self, ticket: TicketIn | dict[str, Any] | str) -> dict[str, Any]:
        """Triage one ticket end to end (pausing for review on suggest/escalate); never raises for it."""
        ticket, problem = self._coerce(ticket)
        thread_id = ticket_id_for(ticket.channel, ticket.id)
        with self.locks.hold(thread_id) as got:
            if not got:
                return _busy(thread_id)
            return self._run_locked(ticket, thread_id, problem)

    @staticmethod
    def _coerce(ticket: TicketIn | dict[str, Any] | str) -> tuple[TicketIn, str | None]:
        if isinstance(ticket, TicketIn):
            return ticket, None
        if isinstance(ticket, str):
            return TicketIn(text=ticket), None
        try:
            return TicketIn.model_validate(ticket), None
        except ValidationError as exc:
            raw = dict(ticket)
            try:
                channel = normalise_channel(str(raw.get("channel") or "api"))
            except ValueError:
                channel = "api"
            source = raw.get("id")
            source = str(source) if isinstance(source, (str, int)) and not isinstance(source, bool) else None
            return TicketIn(id=source, text="", channel=channel), _input_problem(exc)

    def _run_locked(self, ticket: TicketIn, thread_id: str, problem: str | None) -> dict[str, Any]:
        row = self._row(thread_id)
        try:
            snap = self._snapshot(thread_id)
        except Exception as exc:  # noqa: BLE001 - checkpointer down: still triage, via the fallback
            return self._fallback(ticket, thread_id, exc, row)
        values, interrupts = snap.values, getattr(snap, "interrupts", None)
        unfinished = _unfinished(snap)
        start = time.perf_counter()
        state_in: dict[str, Any] | None = None
        if not values and row is not None:
            # decided while the graph could not be used (fallback): give it its review item now
            try:
                result = self._restore(thread_id, row) if row.get("status") == "pending_review" else None
            except Exception as exc:  # noqa: BLE001
                return self._fallback(ticket, thread_id, exc, row)
            view = row_view(row, self._private(thread_id)) if result is None else (
                self._view(result.value, result.interrupts, thread_id))
            view["duplicate"] = True
            return view
        if unfinished and (_decided_elsewhere(row, values) or _behind_row(snap, row)):
            # the ticket is audited but its graph is half-run before the audit (the direct fallback
            # wrote the row, or the checkpoint is behind it): end where the row says
            try:
                result = self._restore(thread_id, row)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001
                return self._fallback(ticket, thread_id, exc, row)
            view = self._view(result.value, result.interrupts, thread_id)
            view["duplicate"] = True
            return view
        if values and not unfinished:
            if _behind_row(snap, row):  # a reviewer completed it; the paused checkpoint is stale
                return {**row_view(row, self._private(thread_id)), "duplicate": True}  # type: ignore[arg-type]
            if row is None:
                self._ensure_audited(values)  # the earlier write was lost: the marker must exist
            view = self._view(values, interrupts, thread_id)
            view["duplicate"] = True
            return view
        if not values:
            try:
                self._keep_private(ticket, thread_id)
            except Exception as exc:  # noqa: BLE001 - not even the outbox could keep the text
                return self._fallback(ticket, thread_id, exc, row)
            run_id = uuid.uuid4()
            state_in = {
                "ticket_id": thread_id,
                "channel": ticket.channel,
                "content_hash": content_hash(ticket.text),
                "trace_id": str(run_id),
                "received_at": datetime.now(timezone.utc).isoformat(),
                "failures": [f"input: {problem}"] if problem else [],
                "latency_ms": {},
                "usage": [],
            }
        # else: a crash mid-run left a checkpoint; continue it (state_in None) instead of starting over
        try:
            trace = uuid.UUID(state_in["trace_id"]) if state_in else None
            result = self._invoke(state_in, thread_id, {"channel": ticket.channel}, trace)
        except Exception as exc:  # noqa: BLE001 - the graph must never drop a ticket
            return self._fallback(ticket, thread_id, exc, row)
        view = self._view(result.value, result.interrupts, thread_id)
        view["latency"]["wall_ms"] = round((time.perf_counter() - start) * 1000, 2)
        if state_in is None:
            view["recovered"] = True  # an earlier run of this ticket died part-way; this one finished it
        if row is not None:
            view["duplicate"] = True
        return view

    def resume(self, thread_id: str, action: dict[str, Any] | ReviewAction) -> dict[str, Any]:
        """Apply a reviewer's action to a paused ticket.

        Raises ``TicketNotFound`` (unknown id), ``TicketBusy`` (being processed right now) or
        ``ReviewError`` (invalid action / unknown team). A replayed resume returns the completed view
        with ``duplicate: true`` and records nothing.
        """
        try:
            act = action if isinstance(action, ReviewAction) else ReviewAction.model_validate(action)
        except ValidationError as exc:
            raise ReviewError(f"invalid review action: {exc.errors()[0]['msg']}") from exc
        if act.action == "reassign" and act.team not in self.deps.routing.teams:
            known = ", ".join(sorted(self.deps.routing.teams))
            raise ReviewError(f"unknown team {act.team!r}; known: {known}")
        with self.locks.hold(thread_id) as got:
            if not got:
                raise TicketBusy(f"ticket {thread_id!r} is being processed right now; retry shortly")
            snap = self._snapshot(thread_id)
            if not snap.values:
                row = self._row(thread_id)
                if row is None:
                    raise TicketNotFound(f"no ticket with id {thread_id!r}")
                if row.get("status") != "pending_review":
                    return {**row_view(row, self._private(thread_id)), "duplicate": True}
                self._restore(thread_id, row)
                snap = self._snapshot(thread_id)
            elif _unfinished(snap):  # died before the review: finish it (as the audit row says, if any)
                row = self._row(thread_id)
                if _decided_elsewhere(row, snap.values) or _behind_row(snap, row):
                    self._restore(thread_id, row)  # type: ignore[arg-type]
                else:
                    self._invoke(None, thread_id, {"continued": True})
                snap = self._snapshot(thread_id)
            if not getattr(snap, "interrupts", None):
                view = self._view(snap.values, None, thread_id)
                view["duplicate"] = True  # already completed: a replayed resume changes nothing
                return view
            row = self._row(thread_id)
            if _behind_row(snap, row):  # completed by a reviewer, the checkpoint rolled back: record nothing
                return {**row_view(row, self._private(thread_id)), "duplicate": True}  # type: ignore[arg-type]
            value = act.model_dump(mode="json")
            if value.get("text"):  # the state keeps text masked; the reviewer's copy is re-masked
                value["text"] = remask(value["text"], (self._private(thread_id) or {}).get("pii_map") or {})
            result = self._invoke(Command(resume=value), thread_id, {"resume": act.action})
            return self._view(result.value, result.interrupts, thread_id)

    def pending(self, thread_id: str) -> dict[str, Any] | None:
        """The review payload of a paused ticket (unmasked for the reviewer), or None."""
        view = self.get(thread_id)
        if view is None or view.get("status") != "pending_review":
            return None
        return view.get("review")

    def get(self, thread_id: str) -> dict[str, Any] | None:
        """The decision view of a ticket, or None if unknown.

        ``status``: ``processing`` (graph not finished: running now, or died and awaiting a retry),
        ``auto_resolved``, ``pending_review`` (with ``review``: the reviewer's payload) or
        ``completed`` (with ``outcome``). Read-only: nothing is written.
        """
        row = self._row(thread_id)
        try:
            snap = self._snapshot(thread_id)
        except Exception:
            if row is None:
                raise
            return row_view(row, self._private(thread_id))
        if snap.values and not _behind_row(snap, row):
            interrupts = getattr(snap, "interrupts", None)
            view = self._view(snap.values, interrupts, thread_id)
            if _unfinished(snap):
                view["status"] = "processing"
            if row is not None:
                view["audit_id"] = row.get("audit_id", view.get("audit_id"))
            return view
        if row is not None:
            return row_view(row, self._private(thread_id))
        return None

    def list_reviews(
        self, state: str = "suggested", limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Tickets waiting for a human, oldest first: ``state`` is ``suggested`` or ``escalated``."""
        if state not in REVIEW_STATES:
            raise ReviewError(f"unknown review state {state!r}; use one of {', '.join(REVIEW_STATES)}")
        rows = self.deps.audit.list_decisions(
            route=REVIEW_STATES[state], status="pending_review", limit=limit, offset=offset
        )
        views = [self.get(r["ticket_id"]) for r in rows]
        return [v for v in views if v is not None and v.get("status") == "pending_review"]

    # --- when the graph itself breaks -------------------------------------------------------
    def _fallback(
        self, ticket: TicketIn, thread_id: str, exc: BaseException, row: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Graph-level failure: escalate to a human as a real review item. Never raises."""
        reason = f"graph: {type(exc).__name__}: {mask_pii(str(exc)).text[:300]}"
        print(f"triage: graph failed for ticket {thread_id}: {reason}", file=sys.stderr)
        try:
            return self._escalate_in_graph(ticket, thread_id, reason, row)
        except Exception as graph_exc:  # noqa: BLE001 - the checkpointer itself is unusable
            print(f"triage: no review item via the graph for {thread_id} ({graph_exc}); auditing directly",
                  file=sys.stderr)  # fmt: skip
        if row is None:
            decision = self._fallback_decision(ticket, thread_id, reason)
            row = {"audit_id": audit_id_for(thread_id), **decision.model_dump(mode="json"),
                   "status": "pending_review"}  # fmt: skip
            try:
                row["audit_id"] = self.deps.audit.record_decision(decision)
            except Exception as audit_exc:  # noqa: BLE001
                print(f"triage: AUDIT WRITE FAILED for ticket {thread_id}: {audit_exc}", file=sys.stderr)
        view = row_view(row, self._private(thread_id))
        view["failures"] = [reason]
        return view

    def _escalate_in_graph(
        self, ticket: TicketIn, thread_id: str, reason: str, row: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Put the ticket at ``route`` with an escalation (or with what the audit row already says),
        then let ``audit`` + ``review`` run as for any ticket: one decision, one review item."""
        if row is not None:
            values = state_from_row(row)
        else:
            try:
                current = dict(self._snapshot(thread_id).values or {})
            except Exception:  # noqa: BLE001
                current = {}
            values = {
                "ticket_id": thread_id,
                "channel": ticket.channel,
                "content_hash": content_hash(ticket.text),
                "received_at": datetime.now(timezone.utc).isoformat(),
                "score": {"value": 0.0, "route": "escalate", "reasons": [reason, "failed step -> human"],
                          "adjustments": {}},  # fmt: skip
                "failures": [reason],
                **nodes.assignment_for(current, self.deps, "escalate"),
            }
            try:  # usually stored already; a reviewer needs the text even if nothing else worked
                self._keep_private(ticket, thread_id)
            except Exception as exc:  # noqa: BLE001
                print(f"triage: could not keep the text of {thread_id}: {exc}", file=sys.stderr)
        self.graph.update_state({"configurable": {"thread_id": thread_id}}, values, as_node="route")
        result = self._invoke(None, thread_id, {"fallback": True})
        view = self._view(result.value, result.interrupts, thread_id)
        view["failures"] = sorted({*view.get("failures", []), reason})
        return view

    def _fallback_decision(self, ticket: TicketIn, thread_id: str, reason: str) -> Decision:
        """The escalation written straight to the audit store (masked text; PII map to the vault)."""
        masked = ""
        try:
            pre = self.deps.run_preprocess(ticket.text)
            masked = pre.masked_text
            self._keep_private(ticket, thread_id)
            if pre.pii_map:
                self.deps.audit.save_pii_map(thread_id, pre.pii_map)
        except Exception as exc:  # noqa: BLE001 - the decision matters more than its text
            print(f"triage: fallback could not preprocess {thread_id}: {exc}", file=sys.stderr)
        assignment = nodes.assignment_for({}, self.deps, "escalate")["assignment"]
        return Decision(
            ticket_id=thread_id,
            content_hash=content_hash(ticket.text),
            channel=ticket.channel,
            text=masked,
            route="escalate",
            reasons=[reason, "failed step -> human"],
            team=assignment.get("team"),
            sla_hours=assignment.get("sla_hours"),
            bundle_version=getattr(self.deps.classifier, "version", None),
        )
