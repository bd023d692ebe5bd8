"""The audit store on the shared ``Database`` helper: one implementation for Postgres and SQLite.

Writes are idempotent (``ON CONFLICT DO NOTHING`` on the ticket id / action key), so a retry, a
resumed graph or an outbox replay can repeat them safely. Besides decisions and reviewer actions it
keeps the *private* part of a ticket — raw text, subject, source metadata and the PII map — in
``pii_vault``: graph state and checkpoints only ever hold masked text, displays are unmasked on
read, and ``purge_private`` (the retention command) deletes the private part of finished tickets.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from src.audit.db import Database
from src.audit.migrations import ACTION_COLUMNS, ACTION_READ_COLUMNS, DECISION_COLUMNS
from src.audit.models import (
    COMPLETING_ACTIONS,
    Decision,
    HumanAction,
    _no_nul,
    action_row,
    decision_row,
    utcnow,
)

FINISHED = ("auto_resolved", "completed")
SUMMARY_COLUMNS = ("audit_id", "ticket_id", "channel", "intent", "route", "status", "score", "created_at",
                   "completed_at")  # fmt: skip


def _insert(table: str, columns: tuple[str, ...], ph: str, conflict: str) -> str:
    cols = ", ".join(columns)
    values = ", ".join([ph] * len(columns))
    return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({conflict}) DO NOTHING"


class SqlAuditStore:
    """Decisions, human actions and the PII vault in one database (``self.db``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.backend = db.dialect
        self.ph = db.placeholder

    def _ts(self, value: datetime) -> Any:
        """Timestamps: native for Postgres (TIMESTAMPTZ), ISO text for SQLite (sorts correctly in UTC)."""
        return value if self.db.dialect == "postgres" else value.isoformat()

    # --- decisions and actions ---------------------------------------------------------------
    def record_decision(self, decision: Decision) -> str:
        """Insert once per ticket id; a repeat is ignored and returns the original audit id."""
        with self.db.transaction() as tx:
            tx.execute(_insert("decisions", DECISION_COLUMNS, self.ph, "ticket_id"), decision_row(decision))
            query = f"SELECT audit_id FROM decisions WHERE ticket_id = {self.ph}"
            row = tx.fetchone(query, (decision.ticket_id,))
        assert row is not None
        return str(row[0])

    def record_action(self, action: HumanAction) -> str:
        """Insert once per idempotency key; a completing action marks a waiting decision completed.

        ``escalate`` moves a waiting decision to the escalation queue (``route`` is where the ticket
        waits now; the decision as made stays in ``record``); ``check`` (a spot check of an
        auto-resolved ticket) changes nothing but the log.
        """
        ph = self.ph
        with self.db.transaction() as tx:
            tx.execute(_insert("human_actions", ACTION_COLUMNS, ph, "action_key"), action_row(action))
            if action.action in COMPLETING_ACTIONS:
                tx.execute(
                    f"UPDATE decisions SET status = 'completed', completed_at = {ph}"
                    f" WHERE ticket_id = {ph} AND status = 'pending_review'",
                    (self._ts(action.created_at), action.ticket_id),
                )
            elif action.action == "escalate":
                tx.execute(
                    f"UPDATE decisions SET route = 'escalate'"
                    f" WHERE ticket_id = {ph} AND status = 'pending_review'",
                    (action.ticket_id,),
                )
        return action.key()

    def get_decision(self, ticket_id: str) -> dict | None:
        row = self.db.fetchone(
            f"SELECT audit_id, record, status, completed_at FROM decisions WHERE ticket_id = {self.ph}",
            (ticket_id,),
        )
        if row is None:
            return None
        completed = row[3].isoformat() if isinstance(row[3], datetime) else row[3]
        return {"audit_id": row[0], **self.db.load_json(row[1]), "status": row[2], "completed_at": completed}

    def list_decisions(
        self, route: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict]:
        """Decision summaries (oldest first: a review queue is worked in order), filtered by route/status."""
        where, params = [], []
        if route is not None:
            where.append(f"route = {self.ph}")
            params.append(route)
        if status is not None:
            where.append(f"status = {self.ph}")
            params.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        query = (
            f"SELECT {', '.join(SUMMARY_COLUMNS)}, record FROM decisions{clause}"
            f" ORDER BY created_at, ticket_id LIMIT {self.ph} OFFSET {self.ph}"
        )
        rows = self.db.fetchall(query, (*params, max(0, int(limit)), max(0, int(offset))))
        out = []
        for row in rows:
            item = dict(zip(SUMMARY_COLUMNS, row[:-1], strict=True))
            for key in ("created_at", "completed_at"):
                if isinstance(item[key], datetime):
                    item[key] = item[key].isoformat()
            record = self.db.load_json(row[-1])
            item["team"] = record.get("team")
            item["reasons"] = record.get("reasons", [])
            out.append(item)
        return out

    def list_actions(self, ticket_id: str) -> list[dict]:
        cols = ACTION_READ_COLUMNS
        query = f"SELECT {', '.join(cols)} FROM human_actions WHERE ticket_id = {self.ph} ORDER BY created_at"
        return [dict(zip(cols, r, strict=True)) for r in self.db.fetchall(query, (ticket_id,))]

    def count_decisions(self, ticket_id: str | None = None) -> int:
        if ticket_id is None:
            return int(self.db.fetchone("SELECT count(*) FROM decisions")[0])  # type: ignore[index]
        row = self.db.fetchone(f"SELECT count(*) FROM decisions WHERE ticket_id = {self.ph}", (ticket_id,))
        return int(row[0])  # type: ignore[index]

    def feedback_rows(self) -> list[tuple[str, str]]:
        """(ticket text, corrected intent) for every correction; the latest correction per ticket wins."""
        rows = self.db.fetchall(
            "SELECT d.record, a.corrected_intent, a.ticket_id FROM human_actions a"
            " JOIN decisions d ON d.ticket_id = a.ticket_id"
            " WHERE a.corrected_intent IS NOT NULL ORDER BY a.created_at"
        )
        latest: dict[str, tuple[str, str]] = {}
        for record, label, ticket in rows:
            latest[ticket] = (self.db.load_json(record).get("text", "") or "", label)
        return [v for v in latest.values() if v[0]]

    def review_log(self, since: datetime | None = None) -> list[dict]:
        """Every human action joined to the decision it acted on, oldest first (the feedback loop).

        Each item: the action's columns (``bad_example`` as a bool, ``created_at`` as ISO text),
        ``ticket_id``, ``status`` and ``decision``: the record as decided (masked text, predicted
        intent, bundle version, draft, reasons). ``src.classifier.feedback`` turns it into labels.
        """
        cols = ("ticket_id", *ACTION_READ_COLUMNS)
        where, params = "", ()
        if since is not None:
            where, params = f" WHERE a.created_at >= {self.ph}", (self._ts(since),)
        query = (
            f"SELECT {', '.join('a.' + c for c in cols)}, d.status, d.record FROM human_actions a"
            f" JOIN decisions d ON d.ticket_id = a.ticket_id{where} ORDER BY a.created_at, a.action_key"
        )
        out = []
        for row in self.db.fetchall(query, params):
            item = dict(zip(cols, row[: len(cols)], strict=True))
            if isinstance(item["created_at"], datetime):
                item["created_at"] = item["created_at"].isoformat()
            item["bad_example"] = bool(item.get("bad_example"))
            item["status"] = row[-2]
            item["decision"] = self.db.load_json(row[-1])
            out.append(item)
        return out

    # --- the PII vault -----------------------------------------------------------------------
    def save_private(
        self, ticket_id: str, raw_text: str, subject: str | None = None, metadata: dict | None = None
    ) -> None:
        """Keep the submitted text (first write wins: a retry of the same ticket is the same ticket)."""
        ph = self.ph
        self.db.execute(
            f"INSERT INTO pii_vault (ticket_id, raw_text, subject, metadata, created_at)"
            f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}) ON CONFLICT (ticket_id) DO UPDATE SET"
            " raw_text = COALESCE(pii_vault.raw_text, excluded.raw_text),"
            " subject = COALESCE(pii_vault.subject, excluded.subject),"
            " metadata = COALESCE(pii_vault.metadata, excluded.metadata)"
            " WHERE pii_vault.purged_at IS NULL",
            (
                ticket_id,
                json.dumps(raw_text),  # JSON-quoted: NUL and other control bytes survive Postgres TEXT
                None if subject is None else json.dumps(subject),
                _no_nul(json.dumps(metadata or {})),
                self._ts(utcnow()),
            ),
        )

    def save_pii_map(self, ticket_id: str, mapping: dict[str, str]) -> None:
        ph = self.ph
        self.db.execute(
            f"INSERT INTO pii_vault (ticket_id, pii_map, created_at) VALUES ({ph}, {ph}, {ph})"
            " ON CONFLICT (ticket_id) DO UPDATE SET pii_map = excluded.pii_map"
            " WHERE pii_vault.purged_at IS NULL",
            (ticket_id, _no_nul(json.dumps(mapping)), self._ts(utcnow())),
        )

    def get_private(self, ticket_id: str) -> dict | None:
        """``{raw_text, subject, metadata, pii_map, purged}`` or None when nothing was kept."""
        row = self.db.fetchone(
            "SELECT raw_text, subject, metadata, pii_map, purged_at FROM pii_vault"
            f" WHERE ticket_id = {self.ph}",
            (ticket_id,),
        )
        if row is None:
            return None
        return {
            "raw_text": None if row[0] is None else json.loads(row[0]),
            "subject": None if row[1] is None else json.loads(row[1]),
            "metadata": self.db.load_json(row[2]) or {},
            "pii_map": self.db.load_json(row[3]) or {},
            "purged": row[4] is not None,
        }

    def purge_private(self, before: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Forget raw text, subject, metadata and PII map of tickets finished before ``before``.

        Finished = auto-resolved, or completed by a reviewer (time of completion counts). Tickets
        still waiting for a human keep theirs: the reviewer needs them.
        """
        ph = self.ph
        finished = (
            f"SELECT d.ticket_id FROM decisions d WHERE d.status IN ('auto_resolved', 'completed')"
            f" AND COALESCE(d.completed_at, d.created_at) < {ph}"
        )
        cutoff = self._ts(before)
        with self.db.transaction() as tx:
            due = tx.fetchone(
                f"SELECT count(*) FROM pii_vault WHERE purged_at IS NULL AND ticket_id IN ({finished})",
                (cutoff,),
            )
            kept = tx.fetchone(
                f"SELECT count(*) FROM pii_vault v WHERE v.purged_at IS NULL AND v.created_at < {ph}"
                f" AND v.ticket_id NOT IN ({finished})",
                (cutoff, cutoff),
            )
            if not dry_run:
                tx.execute(
                    "UPDATE pii_vault SET raw_text = NULL, subject = NULL, metadata = NULL, pii_map = NULL,"
                    f" purged_at = {ph} WHERE purged_at IS NULL AND ticket_id IN ({finished})",
                    (self._ts(utcnow()), cutoff),
                )
        return {"purged" if not dry_run else "would_purge": int(due[0]), "kept_unfinished": int(kept[0])}  # type: ignore[index]

    # --- lifecycle ---------------------------------------------------------------------------
    def ping(self) -> None:
        self.db.ping()

    def migrate(self) -> list[int]:
        return self.db.migrate()

    def close(self) -> None:
        self.db.close()
