"""``/board``: the review board (server-rendered HTML + htmx), on the service's own API code paths.

- Sign-in with an API key -> a reviewer session cookie (``session.py``); every other route needs it,
  and nothing here renders ticket text without it.
- Actions call the handler of ``POST /v1/review/{id}`` (``routers.review.post_review``): same
  validation, same graph resume, same audit row and the same ``review`` event; the actor is recorded
  as ``<key name>/<reviewer name>``.
- Live updates: ``/board/events`` is ``GET /v1/events`` (``routers.events.stream_events``) behind the
  session instead of a bearer header (``EventSource`` cannot send one).

Routes are left out of the OpenAPI schema: they serve HTML, the JSON API stays ``/v1``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from src.api.board import cards as cardmod
from src.api.board import charts, queries, session, stats
from src.api.board.detail import build_detail
from src.api.board.session import Reviewer
from src.api.runtime import Runtime
from src.api.schemas import ReviewRequest

router = APIRouter(prefix="/board", include_in_schema=False)

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {
    "htmx.min.js": "text/javascript",
    "board.js": "text/javascript",
    "board.css": "text/css",
}
STATIC_VERSION = hashlib.sha256(
    b"".join((STATIC_DIR / name).read_bytes() for name in sorted(STATIC_TYPES))
).hexdigest()[:10]
MAX_FORM_BYTES = 400_000
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(directory=str(HERE / "templates"))


def ticket_url(ticket_id: str, suffix: str = "") -> str:
    return f"/board/ticket/{quote(ticket_id, safe=':@')}{suffix}"


def _relative(when: datetime | None, now: datetime | None = None) -> str:
    """ "in 3 h" / "20 min ago" (the page also carries the exact UTC time in a title)."""
    if when is None:
        return "–"
    now = now or datetime.now(timezone.utc)
    seconds = (when - now).total_seconds()
    text = stats.human_duration(abs(seconds))
    return f"in {text}" if seconds >= 0 else f"{text} ago"


templates.env.globals.update(
    ticket_url=ticket_url,
    relative=_relative,
    static_version=STATIC_VERSION,
    column_titles=cardmod.COLUMN_TITLES,
    human_duration=stats.human_duration,
    meter=charts.meter,
)


# --- plumbing ------------------------------------------------------------------------------------------


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def _html(
    request: Request, name: str, context: dict[str, Any], status: int = 200, **headers: str
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers.update(headers)
    return response


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _reviewer(request: Request) -> Reviewer:
    """The signed-in reviewer; 401 otherwise (htmx is told to go to the sign-in page)."""
    reviewer = session.current(request)
    if reviewer is None:
        headers = {"HX-Redirect": "/board/login"} if _is_htmx(request) else {}
        raise HTTPException(status_code=401, detail="sign in at /board/login", headers=headers)
    return reviewer


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form (the board posts nothing else); bounded, last value of a repeated field wins."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status_code=413, detail="form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status_code=400, detail=f"unreadable form: {exc}") from exc
    return {k: v[-1] for k, v in parsed.items()}


def _service(rt: Runtime) -> Any:
    try:
        return rt.service()
    except Exception as exc:  # noqa: BLE001
        raise HTTPException(status_code=503, detail=f"triage service unavailable: {exc}") from exc


def _pickers(service: Any) -> dict[str, Any]:
    """Teams (routing config), intents (routing config + classifier labels) and intent -> team."""
    routing = service.deps.routing
    labels = list(getattr(service.deps.classifier, "labels", None) or [])
    intents = sorted(set(routing.intents) | set(labels))
    intent_team = {}
    for intent in intents:
        try:
            intent_team[intent] = routing.assign(intent, "suggest").team
        except Exception:  # noqa: BLE001 - an intent the config cannot route: no default team
            continue
    return {"teams": routing.teams, "intents": intents, "intent_team": intent_team}


# --- sign-in -------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    if session.current(request) is not None:
        return RedirectResponse("/board", status_code=303)
    return _html(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    from src.api.deps import principal_for_token

    if not session.same_origin(request):
        raise HTTPException(status_code=403, detail="cross-site sign-in refused")
    form = await _form(request)
    rt = _rt(request)
    try:
        principal = await run_in_threadpool(principal_for_token, rt, form.get("key", "").strip())
    except HTTPException as exc:
        return _html(request, "login.html", {"error": f"Sign-in failed: {exc.detail}."}, status=401)
    response = RedirectResponse("/board", status_code=303)
    session.set_cookie(request, response, session.issue(rt, principal, form.get("name")))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    reviewer = session.current(request)
    if reviewer is not None:
        session.check_csrf(request, reviewer, form.get("csrf"))
    response = RedirectResponse("/board/login", status_code=303)
    session.clear_cookie(request, response)
    return response


# --- the board ---------------------------------------------------------------------------------------


def _columns_context(rt: Runtime, filters: cardmod.Filters) -> dict[str, Any]:
    service = _service(rt)
    audit_db = service.deps.audit.db
    all_cards = queries.board_cards(audit_db, rt.store.db)
    now = datetime.now(timezone.utc)
    cols = cardmod.columns(all_cards, filters, now)
    return {
        "columns": cols,
        "sizes": queries.queue_sizes(audit_db, rt.store.db),
        "now": now,
        "filters": filters,
        "channels": sorted({c.channel for c in all_cards}),
        **_pickers(service),
    }


@router.get("", response_class=HTMLResponse)
def board(request: Request) -> Response:
    reviewer = session.current(request)
    if reviewer is None:
        return RedirectResponse("/board/login", status_code=303)
    rt = _rt(request)
    filters = cardmod.Filters.from_query(request.query_params)
    context = {"reviewer": reviewer, "priorities": cardmod.PRIORITIES, "sla_windows": cardmod.SLA_WINDOWS}
    return _html(request, "board.html", {**context, **_columns_context(rt, filters)})


@router.get("/columns", response_class=HTMLResponse)
def board_columns(request: Request) -> Response:
    _reviewer(request)
    filters = cardmod.Filters.from_query(request.query_params)
    return _html(request, "_columns.html", _columns_context(_rt(request), filters))


# --- one ticket ----------------------------------------------------------------------------------------


def _detail_context(rt: Runtime, ticket_id: str, reviewer: Reviewer) -> dict[str, Any]:
    service = _service(rt)
    view = service.get(ticket_id)
    if view is None:
        raise HTTPException(status_code=404, detail=f"no ticket {ticket_id!r}")
    audit = service.deps.audit
    row = audit.get_decision(ticket_id)
    detail = build_detail(ticket_id, view, row, audit.get_private(ticket_id), audit.list_actions(ticket_id))
    now = datetime.now(timezone.utc)
    return {"d": detail, "reviewer": reviewer, "action_id": uuid.uuid4().hex, "now": now, "error": None,
            **_pickers(service)}  # fmt: skip


@router.get("/ticket/{ticket_id:path}", response_class=HTMLResponse)
def ticket(request: Request, ticket_id: str) -> Response:
    reviewer = _reviewer(request)
    return _html(request, "_detail.html", _detail_context(_rt(request), ticket_id, reviewer))


def _review_request(form: dict[str, str], reviewer: Reviewer) -> ReviewRequest:
    action = form.get("action", "")
    text = form.get("own_text") if action == "respond" else form.get("text")
    fields: dict[str, Any] = {
        "action": action,
        "text": text if action in ("edit", "respond") else None,
        "intent": form.get("intent") or None,
        "team": form.get("team") if action == "reassign" else None,
        "note": form.get("note") or None,
        "by": reviewer.name if reviewer.name != reviewer.key_name else None,
        "action_id": form.get("action_id") or None,
        "bad_example": form.get("bad_example") in ("1", "on", "true"),
    }
    return ReviewRequest.model_validate(fields)


def _problem(exc: HTTPException | ValidationError) -> tuple[int, str]:
    if isinstance(exc, ValidationError):
        return 422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return exc.status_code, detail


Work = Callable[[Runtime, dict[str, str], Reviewer], None]


async def _perform(request: Request, ticket_id: str, work: Work) -> Response:
    """Run one state-changing request (session + CSRF first), then answer with the refreshed panel:
    the error in it (and its 4xx) when the action was refused, ``HX-Trigger: board-changed`` when not."""
    reviewer = _reviewer(request)
    form = await _form(request)
    session.check_csrf(request, reviewer, form.get("csrf"))
    rt = _rt(request)
    error, status, headers = None, 200, {"HX-Trigger": "board-changed"}
    try:
        await run_in_threadpool(work, rt, form, reviewer)
    except (HTTPException, ValidationError) as exc:
        status, error = _problem(exc)
        if status == 404:
            raise
        headers = {}
    context = await run_in_threadpool(_detail_context, rt, ticket_id, reviewer)
    context["error"] = error
    return _html(request, "_detail.html", context, status=status, **headers)


@router.post("/ticket/{ticket_id:path}/review", response_class=HTMLResponse)
async def review(request: Request, ticket_id: str) -> Response:
    """One reviewer action: exactly the ``POST /v1/review/{id}`` handler, then the refreshed panel."""
    from src.api.routers.review import post_review

    def work(rt: Runtime, form: dict[str, str], reviewer: Reviewer) -> None:
        post_review(ticket_id, _review_request(form, reviewer), reviewer.principal, rt)

    return await _perform(request, ticket_id, work)


def _record_check(rt: Runtime, ticket_id: str, form: dict[str, str], reviewer: Reviewer) -> None:
    """A spot check of an auto-resolved ticket: logged as a ``check`` action; the ticket is unchanged."""
    from src.audit.models import HumanAction

    audit = _service(rt).deps.audit
    row = audit.get_decision(ticket_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no ticket {ticket_id!r}")
    if row.get("status") != "auto_resolved":
        raise HTTPException(status_code=422, detail="only auto-resolved tickets are spot-checked")
    verdict = form.get("verdict", "")
    if verdict not in (stats.CHECK_CORRECT, stats.CHECK_WRONG):
        raise HTTPException(status_code=422, detail="verdict must be 'correct' or 'wrong'")
    note = " ".join((form.get("note") or "").split())[:500]
    intent = (form.get("intent") or "").strip()[:200] or None
    actor = (
        reviewer.key_name if reviewer.name == reviewer.key_name else f"{reviewer.key_name}/{reviewer.name}"
    )
    audit.record_action(HumanAction(
        ticket_id=ticket_id, action="check", actor=actor, note=f"{verdict}: {note}" if note else verdict,
        corrected_intent=intent if verdict == stats.CHECK_WRONG and intent != row.get("intent") else None,
        action_id=form.get("action_id") or None,
    ))  # fmt: skip
    event = {"ticket_id": ticket_id, "action": "check", "by": actor, "status": "auto_resolved",
             "route": row.get("route"), "duplicate": False}  # fmt: skip
    rt.events.publish("review", event)


@router.post("/ticket/{ticket_id:path}/check", response_class=HTMLResponse)
async def check(request: Request, ticket_id: str) -> Response:
    """A spot check of an auto-resolved ticket (correct / wrong, with the right intent)."""

    def work(rt: Runtime, form: dict[str, str], reviewer: Reviewer) -> None:
        _record_check(rt, ticket_id, form, reviewer)

    return await _perform(request, ticket_id, work)


# --- dashboard, events, static ---------------------------------------------------------------------------


def _dashboard_context(rt: Runtime) -> dict[str, Any]:
    service = _service(rt)
    db = service.deps.audit.db
    now = datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = now - timedelta(days=7)
    mix = stats.route_counts(queries.route_mix(db, today))
    sizes = queries.queue_sizes(db, rt.store.db)
    delays_today = queries.first_action_delays(db, today)
    delays_week = queries.first_action_delays(db, week)
    precision = stats.auto_resolve_precision(queries.spot_checks(db, now - timedelta(days=30)))
    acceptance = stats.suggestion_acceptance(queries.review_outcomes(db, week))
    labels = {"auto_resolve": "auto-resolve", "suggest": "suggest", "escalate": "escalate"}
    return {
        "now": now,
        "mix": mix,
        "mix_total": sum(n for _, n in mix),
        "mix_chart": charts.bar_chart(
            [(labels.get(r, r), n) for r, n in mix],
            title="Today's route mix",
            css=[f"bar route-{r}" for r, _ in mix],
        ),  # fmt: skip
        "sizes": sizes,
        "sizes_chart": charts.bar_chart(
            [(k, v) for k, v in sizes.items()], title="Queue sizes", css=[f"bar col-{k}" for k in sizes]
        ),  # fmt: skip
        "median_today": stats.median_seconds(delays_today),
        "median_week": stats.median_seconds(delays_week),
        "n_today": len(delays_today),
        "n_week": len(delays_week),
        "delay_chart": charts.bar_chart(
            stats.delay_histogram(delays_week), title="Time to first action, 7 days"
        ),
        "precision": precision,
        "precision_chart": charts.interval_chart(
            precision.value, precision.low, precision.high, title="Auto-resolve precision, 30 days"
        ),  # fmt: skip
        "acceptance": acceptance,
        "acceptance_chart": charts.interval_chart(
            acceptance.value, acceptance.low, acceptance.high, title="Drafts accepted unchanged, 7 days"
        ),  # fmt: skip
    }


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> Response:
    reviewer = session.current(request)
    if reviewer is None:
        if _is_htmx(request):
            _reviewer(request)
        return RedirectResponse("/board/login", status_code=303)
    name = "_dashboard.html" if _is_htmx(request) else "dashboard.html"
    return _html(request, name, {"reviewer": reviewer, **_dashboard_context(_rt(request))})


@router.get("/events")
async def events(request: Request) -> Response:
    """The API's event stream (ids and labels, never ticket text) for a signed-in board."""
    from src.api.routers.events import stream_events

    reviewer = _reviewer(request)
    return await stream_events(
        request, types="decision,review", principal=reviewer.principal, rt=_rt(request)
    )


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The board's own assets (htmx vendored): served by the app, never from a CDN."""
    media = STATIC_TYPES.get(name)
    if media is None:
        raise HTTPException(status_code=404, detail="no such asset")
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(STATIC_DIR / name, media_type=media, headers=headers)
