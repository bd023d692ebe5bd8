"""One queued ticket -> one decision: the function every worker (thread or process) runs.

Idempotent by construction: a decided intake row is skipped; ``TriageService.run`` returns the
stored decision for a ticket that already has its audit row and resumes a checkpoint left by a
killed worker; per-ticket serialisation in the service makes a concurrent duplicate the loser,
which leaves the row for the winner. After the decision: the intake row is marked (raw text
dropped), an event is published, metrics are recorded, and helpdesk tickets get their write-back.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from src.api import metrics
from src.api.helpdesks import HELPDESKS, get_helpdesk
from src.api.helpdesks.base import WritebackError, writeback_item
from src.api.store import DECIDED, IntakeRow

if TYPE_CHECKING:
    from src.api.runtime import Runtime

WRITEBACK_MAX_ATTEMPTS = 5


class NotProcessed(RuntimeError):
    """The ticket could not be processed now (service unavailable, ticket busy elsewhere): retry later."""


def ticket_in(row: IntakeRow) -> Any:
    """The service's input for an intake row (metadata only: the customer's contact stays in intake).

    ``TicketIn.id`` is the *source* part of the ticket id fixed at intake (``channel:<part>``), so the
    service derives exactly the id the status URL names, also for a ticket that got a fresh id.
    """
    from src.graph.service import TicketIn

    payload = row.payload
    source_part = row.ticket_id.split(":", 1)[1]
    return TicketIn(
        id=source_part,
        channel=row.channel,
        subject=payload.get("subject"),
        text=payload.get("text") or "",
        metadata=dict(payload.get("metadata") or {}),
    )


def event_data(ticket_id: str, channel: str, view: dict[str, Any]) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "channel": channel,
        "route": view.get("route"),
        "status": view.get("status"),
        "intent": view.get("intent"),
        "team": view.get("team"),
        "confidence": view.get("confidence"),
    }


def process_ticket(rt: Runtime, ticket_id: str) -> dict[str, Any] | None:
    """Decide one ticket (no-op when it is unknown or already decided). Raises NotProcessed to retry."""
    row = rt.store.get_intake(ticket_id)
    if row is None or row.state == DECIDED:
        return None
    rt.store.mark_processing(ticket_id)
    try:
        service = rt.service()
    except Exception as exc:  # noqa: BLE001 - e.g. no classifier bundle yet: keep the ticket queued
        rt.store.mark_failed_attempt(ticket_id, f"service unavailable: {exc}")
        raise NotProcessed(f"service unavailable: {exc}") from exc
    view = service.run(ticket_in(row))
    if view.get("busy"):
        raise NotProcessed(f"ticket {ticket_id} is being processed elsewhere")
    metrics.observe_decision(view, row.channel, time.time() - row.accepted_at)
    helpdesk = row.channel if row.channel in HELPDESKS else None
    rt.store.mark_decided(ticket_id, view.get("route"), view.get("status"), "pending" if helpdesk else None)
    rt.events.publish("decision", event_data(ticket_id, row.channel, view))
    if helpdesk:
        write_back(rt, ticket_id, view)
    return view


def write_back(rt: Runtime, ticket_id: str, view: dict[str, Any] | None = None) -> str:
    """Write the decision to the helpdesk ticket; returns the new write-back state."""
    row = rt.store.get_intake(ticket_id)
    if row is None or row.channel not in HELPDESKS:
        return "n/a"
    attempts = _attempts(row.writeback) + 1
    try:
        service = rt.service()
        record = service.deps.audit.get_decision(ticket_id) or {}
        if view is None:
            view = rt.ticket_view(ticket_id) or {}
        ref = str((row.payload.get("metadata") or {}).get("helpdesk_ticket_id") or row.source_id)
        item = writeback_item(row.channel, ref, view, record.get("analysis"), rt.settings)
        get_helpdesk(row.channel, rt.settings).write_back(item)
    except (WritebackError, Exception) as exc:  # noqa: BLE001 - never lose the decision over a write-back
        state = f"failed: {exc}" if attempts >= WRITEBACK_MAX_ATTEMPTS else f"pending:{attempts}: {exc}"
        print(f"triage-api: write-back for {ticket_id} failed (attempt {attempts}): {exc}", file=sys.stderr)
        metrics.WRITEBACKS.labels(row.channel, "error").inc()
        rt.store.set_writeback(ticket_id, state)
        return state
    metrics.WRITEBACKS.labels(row.channel, "ok").inc()
    rt.store.set_writeback(ticket_id, "done")
    return "done"


def _attempts(state: str | None) -> int:
    if not state or not state.startswith("pending:"):
        return 0
    try:
        return int(state.split(":")[1])
    except (IndexError, ValueError):
        return 0
