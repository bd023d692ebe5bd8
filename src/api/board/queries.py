"""The board's read model: a few read-only queries on the audit and intake tables (both dialects).

The review API (``GET /v1/review``) builds a full decision view per ticket from its checkpoint,
which is right for one ticket and too slow for a wall of cards refreshed on every event. The board
reads the summary columns and the decision record instead (one query per column, one for the
actions of the tickets shown) and asks the service for the full view only when a ticket is opened.
Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from src.api.board.cards import Card, as_datetime, card_from_decision, card_from_intake
from src.audit.db import Database

WAITING_LIMIT = 500
RESOLVED_LIMIT = 300
_DECISION_COLS = ("ticket_id", "channel", "intent", "route", "status", "created_at", "completed_at", "record")


def _ts(db: Database, value: datetime) -> Any:
    """A bound timestamp: native for Postgres (TIMESTAMPTZ), ISO text for SQLite (sorts in UTC)."""
    return value if db.dialect == "postgres" else value.isoformat()


def _json_text(db: Database, key: str) -> str:
    """SQL for a top-level text field of the decision record (``key`` is a constant, never input)."""
    return f"record->>'{key}'" if db.dialect == "postgres" else f"json_extract(record, '$.{key}')"


def _select(
    db: Database, cols: tuple[str, ...], rest: str, params: tuple[Any, ...] = (), json_col: str | None = None
) -> list[dict[str, Any]]:
    """``SELECT cols <rest>`` as dicts, ``json_col`` parsed (``rest`` is built from constants only)."""
    out = []
    for row in db.fetchall(f"SELECT {', '.join(cols)} {rest}", params):
        item = dict(zip(cols, row, strict=True))
        if json_col is not None:
            item[json_col] = db.load_json(item[json_col]) or {}
        out.append(item)
    return out


def _decisions(db: Database, where: str, order: str, limit: int) -> list[dict]:
    rest = f"FROM decisions WHERE {where} ORDER BY {order} LIMIT {int(limit)}"
    return _select(db, _DECISION_COLS, rest, json_col="record")


def actions_by_ticket(db: Database, ticket_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Human actions of these tickets, oldest first (chunked IN lists)."""
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in ticket_ids}
    cols = ("ticket_id", "actor", "action", "team", "corrected_intent", "created_at")
    for start in range(0, len(ticket_ids), 400):
        chunk = ticket_ids[start : start + 400]
        marks = ", ".join([db.placeholder] * len(chunk))
        rest = f"FROM human_actions WHERE ticket_id IN ({marks}) ORDER BY created_at"
        for item in _select(db, cols, rest, tuple(chunk)):
            out[item["ticket_id"]].append(item)
    return out


def undecided_intake(db: Database, limit: int = WAITING_LIMIT) -> list[dict[str, Any]]:
    cols = ("ticket_id", "channel", "state", "payload", "attempts", "accepted_at")
    rest = f"FROM intake WHERE state IN ('queued', 'processing') ORDER BY accepted_at LIMIT {int(limit)}"
    return _select(db, cols, rest, json_col="payload")


def board_cards(audit_db: Database, intake_db: Database | None) -> list[Card]:
    """Every card the board can show: decided tickets first (they win over a stale intake row)."""
    waiting = _decisions(audit_db, "status = 'pending_review'", "created_at, ticket_id", WAITING_LIMIT)
    resolved = _decisions(
        audit_db,
        "status IN ('auto_resolved', 'completed')",
        "COALESCE(completed_at, created_at) DESC, ticket_id",
        RESOLVED_LIMIT,
    )
    rows = waiting + resolved
    actions = actions_by_ticket(audit_db, [r["ticket_id"] for r in rows])
    cards = [card_from_decision(r, actions.get(r["ticket_id"], [])) for r in rows]
    if intake_db is not None:
        cards += [card_from_intake(r) for r in undecided_intake(intake_db)]
    return cards


def queue_sizes(audit_db: Database, intake_db: Database | None) -> dict[str, int]:
    """Tickets per waiting column (not capped by what the board shows)."""
    sizes = {"new": 0, "suggested": 0, "escalated": 0}
    rows = audit_db.fetchall(
        "SELECT route, count(*) FROM decisions WHERE status = 'pending_review' GROUP BY route"
    )
    for route, n in rows:
        sizes["escalated" if route == "escalate" else "suggested"] += int(n)
    if intake_db is not None:
        row = intake_db.fetchone("SELECT count(*) FROM intake WHERE state IN ('queued', 'processing')")
        sizes["new"] = int(row[0]) if row else 0
    return sizes


def route_mix(audit_db: Database, since: datetime) -> dict[str, int]:
    """Decisions made since ``since`` by the route *as decided* (not the queue they wait in now)."""
    expr = _json_text(audit_db, "route")
    rows = audit_db.fetchall(
        f"SELECT {expr}, count(*) FROM decisions WHERE created_at >= {audit_db.placeholder} GROUP BY {expr}",
        (_ts(audit_db, since),),
    )
    return {str(route): int(n) for route, n in rows}


def first_action_delays(audit_db: Database, since: datetime) -> list[float]:
    """Seconds from decision to the first human action, for tickets decided since ``since``."""
    ph = audit_db.placeholder
    rows = audit_db.fetchall(
        "SELECT d.ticket_id, d.created_at, MIN(a.created_at) FROM decisions d"
        " JOIN human_actions a ON a.ticket_id = d.ticket_id"
        f" WHERE a.action <> 'check' AND d.created_at >= {ph} GROUP BY d.ticket_id, d.created_at",
        (_ts(audit_db, since),),
    )
    out = []
    for _, decided, first in rows:
        start, end = as_datetime(decided), as_datetime(first)
        if start is not None and end is not None:
            out.append(max(0.0, (end - start).total_seconds()))
    return out


def _actions_since(db: Database, which: str, cols: tuple[str, ...], since: datetime) -> list[dict[str, Any]]:
    """Human actions matching ``which`` (a constant SQL condition) since ``since``, oldest first."""
    rest = f"FROM human_actions WHERE {which} AND created_at >= {db.placeholder} ORDER BY created_at"
    return _select(db, cols, rest, (_ts(db, since),))


def spot_checks(audit_db: Database, since: datetime) -> list[dict[str, Any]]:
    """The latest spot check per auto-resolved ticket since ``since`` (``note`` holds the verdict)."""
    cols = ("ticket_id", "actor", "note", "corrected_intent", "created_at")
    latest = {item["ticket_id"]: item for item in _actions_since(audit_db, "action = 'check'", cols, since)}
    return list(latest.values())


def review_outcomes(audit_db: Database, since: datetime) -> list[dict[str, Any]]:
    """The completing action of each ticket a reviewer finished since ``since``."""
    cols = ("ticket_id", "action", "corrected_intent", "created_at")
    first: dict[str, dict[str, Any]] = {}
    for item in _actions_since(audit_db, "action NOT IN ('check', 'escalate')", cols, since):
        first.setdefault(item["ticket_id"], item)  # the first completing action is the outcome
    return list(first.values())
