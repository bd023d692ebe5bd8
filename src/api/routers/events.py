"""``GET /v1/events``: server-sent events (``decision``, ``review``) for live clients such as the board."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from sse_starlette.sse import EventSourceResponse

from src.api.auth import Principal
from src.api.deps import get_runtime, require_key
from src.api.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["events"])
KINDS = ("decision", "review")


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream_events(
    request: Request,
    types: str = Query(",".join(KINDS), max_length=100, description="comma-separated: decision,review"),
    principal: Principal = Depends(require_key),
    rt: Runtime = Depends(get_runtime),
) -> EventSourceResponse:
    wanted = {t.strip() for t in types.split(",") if t.strip()} & set(KINDS) or set(KINDS)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        yield {"event": "ready", "data": json.dumps({"types": sorted(wanted)})}
        async for event in rt.events.subscribe():
            if await request.is_disconnected():
                return
            if event.get("event") in wanted:
                yield {"event": event["event"], "data": json.dumps(event.get("data") or {})}

    return EventSourceResponse(stream(), ping=15)
