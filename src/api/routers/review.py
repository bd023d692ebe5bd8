"""``GET /v1/review`` (the suggest / escalate queues) and ``POST /v1/review/{id}`` (a human action)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from src.api.auth import Principal
from src.api.deps import get_runtime, require_key
from src.api.runtime import Runtime
from src.api.schemas import ReviewRequest

router = APIRouter(prefix="/v1", tags=["review"])


def _service(rt: Runtime) -> Any:
    try:
        return rt.service()
    except Exception as exc:  # noqa: BLE001
        raise HTTPException(status_code=503, detail=f"triage service unavailable: {exc}") from exc


@router.get("/review")
def list_review(
    state: Literal["suggested", "escalated"] = Query(..., description="which queue"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
    principal: Principal = Depends(require_key),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Tickets waiting for a human in one queue, oldest first."""
    items = _service(rt).list_reviews(state, limit=limit, offset=offset)
    return {"state": state, "limit": limit, "offset": offset, "items": items}


@router.post(
    "/review/{ticket_id:path}",
    responses={404: {"description": "unknown ticket"}, 409: {"description": "ticket busy"}},
)
def post_review(
    ticket_id: str,
    body: ReviewRequest,
    principal: Principal = Depends(require_key),
    rt: Runtime = Depends(get_runtime),
) -> dict[str, Any]:
    """Accept / edit / respond / reassign / ignore a paused ticket: resumes its graph, audits the action."""
    from src.graph.service import ReviewError, TicketBusy, TicketNotFound

    service = _service(rt)
    actor = principal.name if not body.by else f"{principal.name}/{body.by}"
    action = {**body.model_dump(exclude={"by"}, exclude_none=True), "by": actor}
    try:
        view = service.resume(ticket_id, action)
    except TicketNotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except TicketBusy as exc:
        raise HTTPException(status_code=409, detail=str(exc), headers={"Retry-After": "2"}) from exc
    except ReviewError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    if view.get("status"):
        rt.store.set_status(ticket_id, view["status"])
    rt.events.publish(
        "review",
        {
            "ticket_id": ticket_id,
            "action": body.action,
            "by": actor,
            "status": view.get("status"),
            "route": view.get("route"),
            "duplicate": bool(view.get("duplicate")),
        },
    )
    return view


@router.get("/routing")
def routing(
    principal: Principal = Depends(require_key), rt: Runtime = Depends(get_runtime)
) -> dict[str, Any]:
    """Teams (for a reassign picker) and the intents the classifier predicts (for "wrong intent")."""
    service = _service(rt)
    config = service.deps.routing
    labels = list(getattr(service.deps.classifier, "labels", None) or config.intents)
    return {
        "teams": {name: team.description for name, team in config.teams.items()},
        "default_team": config.default_team,
        "escalation_team": config.escalation_team,
        "intents": sorted(labels),
    }
