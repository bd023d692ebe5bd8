"""``POST /v1/tickets`` (JSON or raw email) and ``GET /v1/tickets/{id}``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from src.api.auth import Principal
from src.api.deps import get_runtime, require_key
from src.api.email_intake import EmailError, parse_email
from src.api.intake import IdempotencyConflict, accept
from src.api.runtime import Runtime
from src.api.schemas import Accepted, IntakeTicket, TicketRequest, TicketStatus
from src.api.store import DECIDED, IntakeRow

router = APIRouter(prefix="/v1", tags=["tickets"])

JSON_TYPES = ("application/json",)
EMAIL_TYPES = ("message/rfc822",)
WAIT_POLL_S = 0.05

_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/TicketRequest"}},
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def status_url(ticket_id: str) -> str:
    return f"/v1/tickets/{quote(ticket_id, safe=':@')}"


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", [])), "msg": e.get("msg")} for e in exc.errors()]


def parse_intake(content_type: str, body: bytes) -> IntakeTicket:
    """The request body as an intake ticket; HTTPException 400/415/422 naming the problem."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in EMAIL_TYPES:
        try:
            return parse_email(body)
        except EmailError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
    if media in JSON_TYPES:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(status_code=400, detail=f"body is not valid JSON: {exc}") from exc
        try:
            return TicketRequest.model_validate(data).to_intake()
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=_validation_detail(exc)) from exc
    raise HTTPException(status_code=415, detail="Content-Type must be application/json or message/rfc822")


def ticket_status(rt: Runtime, ticket_id: str, row: IntakeRow | None) -> TicketStatus | None:
    """Intake state, plus the decision view once decided (None when the ticket is unknown)."""
    view = None
    if row is None or row.state == DECIDED:
        try:
            view = rt.ticket_view(ticket_id)
        except Exception:  # noqa: BLE001 - service down: report what the intake row knows
            view = None
    if row is None and view is None:
        return None
    state = (view or {}).get("status") or (row.status if row and row.state == DECIDED else None)
    if row is not None and row.state != DECIDED:
        state = row.state
    return TicketStatus(
        ticket_id=ticket_id,
        state=state or "decided",
        channel=row.channel if row else (view or {}).get("channel"),
        accepted_at=_iso(row.accepted_at) if row else None,
        decided_at=_iso(row.decided_at) if row and row.decided_at else None,
        decision=view,
    )


def _iso(ts: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


async def _wait_decided(rt: Runtime, ticket_id: str, seconds: float) -> IntakeRow | None:
    deadline = time.monotonic() + seconds
    while True:
        row = await run_in_threadpool(rt.store.get_intake, ticket_id)
        if row is None or row.state == DECIDED or time.monotonic() >= deadline:
            return row
        await asyncio.sleep(min(WAIT_POLL_S * 4, max(0.0, deadline - time.monotonic())) or WAIT_POLL_S)


@router.post(
    "/tickets",
    status_code=202,
    response_model=Accepted,
    openapi_extra=_REQUEST_BODY,
    responses={
        200: {"model": TicketStatus, "description": "decided within ?wait"},
        400: {"description": "unreadable body"},
        409: {"description": "Idempotency-Key reused"},
        413: {"description": "body too large"},
        415: {"description": "unsupported Content-Type"},
    },
)
async def create_ticket(
    request: Request,
    wait: float = Query(0.0, ge=0.0, le=300.0, description="seconds to wait for the decision"),
    idempotency_key: str | None = Header(default=None, max_length=200),
    content_type: str = Header(default="application/json"),
    principal: Principal = Depends(require_key),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Accept a chat/API ticket (JSON) or an email (``message/rfc822``); 202 + status URL at once."""
    ticket = parse_intake(content_type, await request.body())
    scope = (
        f"{principal.key_id}:{idempotency_key.strip()}"
        if idempotency_key and idempotency_key.strip()
        else None
    )
    try:
        row, created = await run_in_threadpool(accept, rt, ticket, scope)
    except IdempotencyConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    url = status_url(row.ticket_id)
    seconds = min(wait, rt.settings.max_wait_s)
    if seconds > 0 and row.state != DECIDED:
        row = await _wait_decided(rt, row.ticket_id, seconds) or row
    if row.state == DECIDED and seconds > 0:
        status = await run_in_threadpool(ticket_status, rt, row.ticket_id, row)
        if status is not None:
            return JSONResponse(
                status_code=200, content=status.model_dump(mode="json"), headers={"Location": url}
            )
    body = Accepted(ticket_id=row.ticket_id, state=row.state, status_url=url, duplicate=not created)
    return JSONResponse(status_code=202, content=body.model_dump(mode="json"), headers={"Location": url})


@router.get(
    "/tickets/{ticket_id:path}", response_model=TicketStatus, responses={404: {"description": "unknown"}}
)
def get_ticket(
    ticket_id: str, principal: Principal = Depends(require_key), rt: Runtime = Depends(get_runtime)
) -> TicketStatus:
    """State of an accepted ticket and, once decided, its decision (route, reasons, draft ...)."""
    status = ticket_status(rt, ticket_id, rt.store.get_intake(ticket_id))
    if status is None:
        raise HTTPException(status_code=404, detail=f"no ticket {ticket_id!r}")
    return status
