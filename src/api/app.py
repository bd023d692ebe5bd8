"""The FastAPI application: routers per resource, auth as a dependency, errors as clear 4xx.

``create_app()`` builds the real runtime from Settings; tests pass a ``Runtime`` with a fake service.
Bad input never becomes a 500: validation errors are 422 naming the field, unreadable bodies 400,
oversized bodies 413, an unavailable database 503 (the client retries; nothing was accepted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from src.api.board import router as board_router
from src.api.limits import BodyLimitMiddleware
from src.api.routers import events, health, review, tickets, webhooks
from src.api.runtime import Runtime
from src.audit.errors import AuditUnavailable
from src.config import Settings, get_settings


def _errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e.get("loc", [])), "msg": e.get("msg")} for e in exc.errors()]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    rt = runtime

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal rt
        if rt is None:
            rt = Runtime(settings)
        app.state.runtime = rt
        owned = not rt.started  # a runtime started by the caller is also closed by the caller
        if owned:
            rt.start_api()
        try:
            yield
        finally:
            if owned:
                rt.close()

    app = FastAPI(
        title="triage",
        version="1",
        summary="Support-ticket triage: intake, decisions, human review, helpdesk webhooks",
        lifespan=lifespan,
    )
    if rt is not None:
        app.state.runtime = rt
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid request", "detail": _errors(exc)})

    @app.exception_handler(AuditUnavailable)
    async def _unavailable(request: Request, exc: AuditUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"error": "store unavailable, retry later", "detail": str(exc)[:300]},
            headers={"Retry-After": "5"},
        )

    for module in (tickets, review, events, health, webhooks):
        app.include_router(module.router)
    app.include_router(board_router)  # the review board (HTML, signed-in reviewers only): docs/board.md
    return app
