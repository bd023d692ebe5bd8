"""``/healthz`` (liveness), ``/readyz`` (dependencies), ``/metrics`` (Prometheus).

These are open: they expose no ticket data and change nothing (put ``/metrics`` behind the
network policy that guards your Prometheus scrape targets).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from src.api import metrics
from src.api.deps import get_runtime
from src.api.readiness import check_all
from src.api.runtime import Runtime
from src.api.store import UNDECIDED

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is down; the body says which"}})
async def readyz(rt: Runtime = Depends(get_runtime)) -> JSONResponse:
    """200 when the bundle, database, checkpointer, Qdrant (and broker) answer; 503 naming what is down."""
    checks = await run_in_threadpool(check_all, rt)
    down = [f"{name}: {c['detail']}" for name, c in checks.items() if not c["ok"]]
    body = {"ready": not down, "checks": checks, "reason": "; ".join(down) or None}
    return JSONResponse(status_code=503 if down else 200, content=body)


@router.get("/metrics", response_class=Response)
def prometheus(rt: Runtime = Depends(get_runtime)) -> Response:
    try:
        counts = rt.store.count_by_state()
        for state in UNDECIDED:
            metrics.QUEUE_DEPTH.labels(state).set(counts.get(state, 0))
    except Exception:  # noqa: BLE001 - the database being down must not break the scrape
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
