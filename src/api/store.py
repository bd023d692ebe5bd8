"""The service's rows next to the audit log: API keys, intake records, idempotency keys, deliveries.

Built on ``src.audit.db`` (the same SQLite file or Postgres schema as the audit store; tables from
migration v5). The intake row is written *before* the API answers 202 and is the durable queue of
record: whatever happens to a broker message or a worker, a row in state ``queued`` or
``processing`` is re-enqueued by the sweep until the ticket has its decision. Times are epoch
seconds (one column type for both dialects, cheap comparisons).

Inserts use ``ON CONFLICT DO NOTHING`` plus a per-call nonce read back, so "did *I* create this
row?" has one answer on both backends without relying on driver row counts.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from src.audit.db import Database

QUEUED, PROCESSING, DECIDED = "queued", "processing", "decided"
UNDECIDED = (QUEUED, PROCESSING)
# Keys of the intake payload dropped once the ticket is decided (raw text and who wrote it).
PURGED_KEYS = ("text", "subject", "customer")


@dataclass
class KeyRow:
    key_id: str
    name: str
    salt: str
    key_hash: str
    created_at: float
    revoked_at: float | None

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
        }


@dataclass
class IntakeRow:
    ticket_id: str
    channel: str
    source_id: str | None
    state: str
    payload: dict[str, Any]
    attempts: int
    accepted_at: float
    updated_at: float
    decided_at: float | None
    route: str | None
    status: str | None
    last_error: str | None
    writeback: str | None


_KEY_COLS = "key_id, name, salt, key_hash, created_at, revoked_at"
_INTAKE_COLS = (
    "ticket_id",
    "channel",
    "source_id",
    "state",
    "payload",
    "attempts",
    "accepted_at",
    "updated_at",
    "decided_at",
    "route",
    "status",
    "last_error",
    "writeback",
)


class ApiStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.p = db.placeholder

    # --- API keys -------------------------------------------------------------------------
    def add_key(self, key_id: str, name: str, salt: str, key_hash: str) -> None:
        p = self.p
        self.db.execute(
            f"INSERT INTO api_keys (key_id, name, salt, key_hash, created_at) "
            f" VALUES ({p}, {p}, {p}, {p}, {p})",
            (key_id, name, salt, key_hash, time.time()),
        )

    def get_key(self, key_id: str) -> KeyRow | None:
        row = self.db.fetchone(
            f"SELECT {_KEY_COLS} FROM api_keys WHERE key_id = {self.p}",
            (key_id,),
        )
        return KeyRow(*row) if row else None

    def list_keys(self) -> list[KeyRow]:
        rows = self.db.fetchall(f"SELECT {_KEY_COLS} FROM api_keys ORDER BY created_at")
        return [KeyRow(*r) for r in rows]

    def revoke_key(self, key_id: str) -> bool:
        p = self.p
        n = self.db.execute(
            f"UPDATE api_keys SET revoked_at = {p} WHERE key_id = {p} AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        return n > 0

    # --- intake ---------------------------------------------------------------------------
    def add_intake(
        self, ticket_id: str, channel: str, source_id: str | None, payload: dict[str, Any]
    ) -> tuple[IntakeRow, bool]:
        """Insert unless the ticket exists; returns (row, created)."""
        p = self.p
        now = time.time()
        nonce = secrets.token_hex(8)
        with self.db.transaction() as tx:  # one commit: the insert and the read-back
            tx.execute(
                "INSERT INTO intake (ticket_id, channel, source_id, state, payload, nonce, attempts,"
                f" accepted_at, updated_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, 0, {p}, {p})"
                " ON CONFLICT (ticket_id) DO NOTHING",
                (ticket_id, channel, source_id, QUEUED, json.dumps(payload), nonce, now, now),
            )
            row = tx.fetchone(f"SELECT nonce, {', '.join(_INTAKE_COLS)} FROM intake WHERE ticket_id = {p}",
                              (ticket_id,))  # fmt: skip
        if row is None:  # pragma: no cover - the insert above makes this impossible
            raise RuntimeError(f"intake row for {ticket_id} vanished")
        return self._row(row[1:]), row[0] == nonce

    def get_intake(self, ticket_id: str) -> IntakeRow | None:
        row = self.db.fetchone(
            f"SELECT {', '.join(_INTAKE_COLS)} FROM intake WHERE ticket_id = {self.p}", (ticket_id,)
        )
        return None if row is None else self._row(row)

    def _row(self, row: tuple[Any, ...]) -> IntakeRow:
        values = dict(zip(_INTAKE_COLS, row, strict=True))
        values["payload"] = self.db.load_json(values["payload"]) or {}
        return IntakeRow(**values)

    def mark_processing(self, ticket_id: str) -> None:
        p = self.p
        self.db.execute(
            f"UPDATE intake SET state = {p}, attempts = attempts + 1, updated_at = {p}"
            f" WHERE ticket_id = {p} AND state <> {p}",
            (PROCESSING, time.time(), ticket_id, DECIDED),
        )

    def mark_failed_attempt(self, ticket_id: str, error: str) -> None:
        """Processing could not run (e.g. the service cannot start): back to queued for the sweep."""
        p = self.p
        self.db.execute(
            f"UPDATE intake SET state = {p}, last_error = {p}, updated_at = {p}"
            f" WHERE ticket_id = {p} AND state <> {p}",
            (QUEUED, error[:500], time.time(), ticket_id, DECIDED),
        )

    def mark_decided(
        self, ticket_id: str, route: str | None, status: str | None, writeback: str | None
    ) -> None:
        """Record the outcome and drop the raw text (the audit row and the PII vault keep what is kept)."""
        p = self.p
        now = time.time()
        with self.db.transaction() as tx:  # one commit
            row = tx.fetchone(f"SELECT payload FROM intake WHERE ticket_id = {p}", (ticket_id,))
            if row is None:
                return
            payload = self.db.load_json(row[0]) or {}
            kept = {k: v for k, v in payload.items() if k not in PURGED_KEYS}
            tx.execute(
                f"UPDATE intake SET state = {p}, route = {p}, status = {p}, payload = {p}, decided_at = {p},"
                f" updated_at = {p}, writeback = {p}, last_error = NULL WHERE ticket_id = {p}",
                (DECIDED, route, status, json.dumps(kept), now, now, writeback, ticket_id),
            )

    def set_writeback(self, ticket_id: str, writeback: str) -> None:
        p = self.p
        self.db.execute(
            f"UPDATE intake SET writeback = {p}, updated_at = {p} WHERE ticket_id = {p}",
            (writeback[:500], time.time(), ticket_id),
        )

    def set_status(self, ticket_id: str, status: str) -> None:
        p = self.p
        self.db.execute(
            f"UPDATE intake SET status = {p}, updated_at = {p} WHERE ticket_id = {p}",
            (status, time.time(), ticket_id),
        )

    def stale_undecided(self, older_than_s: float, limit: int = 500) -> list[str]:
        """Tickets accepted but not decided whose last touch is older than ``older_than_s``."""
        p = self.p
        rows = self.db.fetchall(
            f"SELECT ticket_id FROM intake WHERE state IN ({p}, {p}) AND updated_at <= {p}"
            f" ORDER BY accepted_at LIMIT {int(limit)}",
            (QUEUED, PROCESSING, time.time() - older_than_s),
        )
        return [r[0] for r in rows]

    def pending_writebacks(self, older_than_s: float, limit: int = 200) -> list[str]:
        """Decided helpdesk tickets whose write-back has not succeeded yet (last try long enough ago)."""
        p = self.p
        rows = self.db.fetchall(
            f"SELECT ticket_id FROM intake WHERE state = {p} AND writeback LIKE {p}"
            f" AND updated_at <= {p}"
            f" ORDER BY decided_at LIMIT {int(limit)}",
            (DECIDED, "pending%", time.time() - older_than_s),
        )
        return [r[0] for r in rows]

    def count_by_state(self) -> dict[str, int]:
        rows = self.db.fetchall("SELECT state, count(*) FROM intake GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    # --- idempotency keys and webhook deliveries ---------------------------------------------
    def claim_idempotency_key(self, scope_key: str, ticket_id: str, request_hash: str) -> tuple[str, str]:
        """First writer wins; returns the (ticket id, request hash) stored for the key."""
        p = self.p
        self.db.execute(
            "INSERT INTO idempotency_keys (scope_key, ticket_id, request_hash, created_at)"
            f" VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (scope_key) DO NOTHING",
            (scope_key, ticket_id, request_hash, time.time()),
        )
        row = self.db.fetchone(
            f"SELECT ticket_id, request_hash FROM idempotency_keys WHERE scope_key = {p}", (scope_key,)
        )
        assert row is not None
        return str(row[0]), str(row[1])

    def first_delivery(self, provider: str, delivery_key: str) -> bool:
        """True the first time a (helpdesk, delivery) pair is seen; False for a replay or retry."""
        p = self.p
        nonce = secrets.token_hex(8)
        self.db.execute(
            "INSERT INTO webhook_deliveries (provider, delivery_key, nonce, received_at)"
            f" VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (provider, delivery_key) DO NOTHING",
            (provider, delivery_key[:200], nonce, time.time()),
        )
        row = self.db.fetchone(
            f"SELECT nonce FROM webhook_deliveries WHERE provider = {p} AND delivery_key = {p}",
            (provider, delivery_key[:200]),
        )
        return bool(row) and row[0] == nonce
