"""``POST /webhooks/zendesk|freshdesk|intercom``: verify, map, accept, answer at once.

The order keeps retries safe: signature first (401), then the payload (400/422), then the intake
row (idempotent per helpdesk ticket id), and only then the delivery is recorded — a delivery seen
before is reported ``duplicate`` (replay or product retry) without a second ticket. Processing
happens on the queue, so the answer comes well within the products' timeouts.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from src.api import metrics
from src.api.helpdesks import HELPDESKS, get_helpdesk
from src.api.helpdesks.base import PayloadError
from src.api.helpdesks.signatures import SignatureError
from src.api.intake import accept
from src.api.routers.tickets import status_url
from src.api.runtime import Runtime
from src.audit.errors import AuditUnavailable

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _handle(name: str, request: Request, rt: Runtime) -> JSONResponse:
    helpdesk = get_helpdesk(name, rt.settings)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        helpdesk.verify(headers, body, time.time())
    except SignatureError as exc:
        metrics.WEBHOOKS.labels(name, "rejected").inc()
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    try:
        payload: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(status_code=400, detail=f"body is not valid JSON: {exc}") from exc
    try:
        incoming = helpdesk.parse(headers, body, payload)
    except PayloadError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if incoming.ticket is None:
        metrics.WEBHOOKS.labels(name, "ignored").inc()
        return JSONResponse(status_code=200, content={"ignored": incoming.ignored})
    row, created = await run_in_threadpool(accept, rt, incoming.ticket, None)
    try:
        first = await run_in_threadpool(rt.store.first_delivery, name, incoming.delivery_key)
    except AuditUnavailable:
        first = True  # database down (the ticket was spooled): the ticket-level dedupe still applies
    metrics.WEBHOOKS.labels(name, "accepted" if created else "duplicate").inc()
    content = {
        "ticket_id": row.ticket_id,
        "state": row.state,
        "status_url": status_url(row.ticket_id),
        "duplicate": not created or not first,
    }
    return JSONResponse(status_code=202, content=content)


def _route(name: str) -> None:
    async def receive(request: Request, rt: Runtime = Depends(_get_runtime)) -> JSONResponse:
        return await _handle(name, request, rt)

    receive.__name__ = f"webhook_{name}"
    router.add_api_route(
        f"/{name}",
        receive,
        methods=["POST"],
        status_code=202,
        name=f"webhook_{name}",
        summary=f"{name.capitalize()} new-ticket webhook (signature verified)",
        responses={
            200: {"description": "event ignored"},
            401: {"description": "bad or stale signature"},
            422: {"description": "payload not understood"},
        },
    )


for _name in HELPDESKS:
    _route(_name)
