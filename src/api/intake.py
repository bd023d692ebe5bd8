"""Accepting a ticket: identity, idempotency, the durable intake row, then the queue.

Order matters for "nothing accepted is lost": the intake row is committed before the caller gets
202, and only then is the ticket id enqueued. If the enqueue fails (broker down) the ticket is
still accepted: the sweep re-enqueues undecided rows. If the database is down the record goes to
the local spool (fsynced file) instead and the sweep imports it later; only a request with an
Idempotency-Key needs the database (its claim is the point of the key) and gets 503 then.
Identity follows the contract (channel plus the source's id, else a fresh id), so a retried webhook
or email is the same ticket and two customers without ids are never merged.
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import TYPE_CHECKING

from src.api import metrics
from src.api.schemas import IntakeTicket
from src.api.store import QUEUED, IntakeRow
from src.audit.errors import AuditUnavailable

if TYPE_CHECKING:
    from src.api.runtime import Runtime


class IdempotencyConflict(ValueError):
    """The Idempotency-Key was used before for a different request body (answered 409)."""


def ticket_id_of(ticket: IntakeTicket) -> str:
    """``channel:source_id``, or ``channel:<fresh hex>`` without a source id (the service's own rule)."""
    from src.graph.service import ticket_id_for

    return ticket_id_for(ticket.channel, ticket.id)


def request_hash(ticket: IntakeTicket) -> str:
    return hashlib.sha256(ticket.model_dump_json().encode()).hexdigest()


def intake_payload(ticket: IntakeTicket) -> dict:
    return {
        "source_id": ticket.id,
        "subject": ticket.subject,
        "text": ticket.text,
        "customer": ticket.customer,
        "metadata": ticket.metadata,
    }


def accept(rt: Runtime, ticket: IntakeTicket, idempotency_scope: str | None = None) -> tuple[IntakeRow, bool]:
    """Persist (unless already known) and enqueue; returns (intake row, created now)."""
    ticket_id = ticket_id_of(ticket)
    if idempotency_scope:
        digest = request_hash(ticket)
        claimed, stored_hash = rt.store.claim_idempotency_key(idempotency_scope, ticket_id, digest)
        if stored_hash != digest:
            raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
        ticket_id = claimed
    try:
        row, created = rt.store.add_intake(ticket_id, ticket.channel, ticket.id, intake_payload(ticket))
    except AuditUnavailable as exc:
        row, created = spool(rt, ticket_id, ticket, exc)
    if created:
        metrics.ACCEPTED.labels(ticket.channel).inc()
        enqueue(rt, ticket_id)
    else:
        metrics.DUPLICATES.labels(ticket.channel).inc()
    return row, created


def spool(rt: Runtime, ticket_id: str, ticket: IntakeTicket, why: Exception) -> tuple[IntakeRow, bool]:
    """Database down: keep the record in the local spool; the sweep imports it when the database is back."""
    created = rt.spool.put(ticket_id, ticket.channel, ticket.id, intake_payload(ticket))
    print(f"triage-api: database unavailable ({why}); {ticket_id} spooled", file=sys.stderr)
    now = time.time()
    row = IntakeRow(ticket_id=ticket_id, channel=ticket.channel, source_id=ticket.id, state=QUEUED,
                    payload={}, attempts=0, accepted_at=now, updated_at=now, decided_at=None, route=None,
                    status=None, last_error="spooled: database unavailable", writeback=None)  # fmt: skip
    return row, created


def enqueue(rt: Runtime, ticket_id: str) -> bool:
    try:
        rt.queue.enqueue(ticket_id)
        return True
    except Exception as exc:  # noqa: BLE001 - accepted already; the sweep will enqueue it again
        print(f"triage-api: enqueue of {ticket_id} failed ({exc}); the sweep will retry", file=sys.stderr)
        return False
