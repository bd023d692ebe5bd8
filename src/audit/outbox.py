"""Durable local outbox: when the audit database is down, records wait on disk and are replayed later.

One JSON file per record, written atomically (temp file + fsync + rename), named by the record's
idempotency key: a retry overwrites the same file instead of queueing a duplicate, and replaying is
safe because the stores ignore keys they already hold. Nothing is lost if the process dies.

A record the database refuses for good (``AuditRejected``: a constraint or a value it cannot hold),
or a file that no longer parses, moves to ``<outbox>/dead/`` with the reason instead of blocking
every later record; ``python -m src.audit.outbox --dead`` lists them and ``--requeue`` retries them.
Only store-level trouble (``AuditUnavailable``) stops a replay — and then nothing is lost either.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from src.audit.errors import AuditUnavailable
from src.audit.models import Decision, HumanAction, audit_id_for, initial_status, utcnow

# replay order: the private part before the decision that refers to it, actions last
_KIND_ORDER = {"private": 0, "decision": 1, "piimap": 2, "action": 3}


class Outbox:
    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dead_dir = self.dir / "dead"

    @staticmethod
    def _write_atomic(path: Path, obj: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def path_for(self, kind: str, key: str) -> Path:
        return self.dir / f"{kind}-{key}.json"

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> Path:
        path = self.path_for(kind, key)
        self._write_atomic(path, {"kind": kind, "key": key, "payload": payload})
        return path

    def read(self, kind: str, key: str) -> dict[str, Any] | None:
        """The queued payload of one record, or None."""
        try:
            return json.loads(self.path_for(kind, key).read_text(encoding="utf-8"))["payload"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def pending(self) -> list[Path]:
        """Replay order: by kind (private, decision, piimap, action), then oldest first."""
        files = list(self.dir.glob("*.json"))
        return sorted(files, key=lambda p: (_KIND_ORDER.get(p.name.split("-", 1)[0], 9), _mtime(p)))

    def dead_letter(self, path: Path, reason: str, item: dict[str, Any] | None = None) -> Path:
        """Move a record out of the replay queue, keeping it and the reason (nothing is deleted)."""
        self.dead_dir.mkdir(parents=True, exist_ok=True)
        target = self.dead_dir / path.name
        if item is None:
            raw = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
            item = {"raw": raw}
        self._write_atomic(target, {**item, "reason": reason[:2000], "failed_at": utcnow().isoformat()})
        path.unlink(missing_ok=True)
        print(f"audit outbox: dead-lettered {path.name}: {reason[:300]}", file=sys.stderr)
        return target

    def dead(self) -> list[Path]:
        return sorted(self.dead_dir.glob("*.json")) if self.dead_dir.is_dir() else []

    def requeue_dead(self) -> int:
        """Move dead letters back into the queue (after the cause was fixed)."""
        n = 0
        for path in self.dead():
            item = json.loads(path.read_text(encoding="utf-8"))
            if "kind" in item and "payload" in item:
                self.put(item["kind"], item["key"], item["payload"])
                path.unlink()
                n += 1
        return n

    def __len__(self) -> int:
        return len(list(self.dir.glob("*.json")))


def _payload(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("payload")
    except (OSError, ValueError, AttributeError):
        return None


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


class OutboxAuditStore:
    """Wraps a store: writes that fail with ``AuditUnavailable`` go to the outbox; ``flush`` replays them."""

    def __init__(self, inner: Any, outbox_dir: Path | str, *, retry_after_s: float = 10.0) -> None:
        self.inner = inner
        self.outbox = Outbox(outbox_dir)
        self.backend = getattr(inner, "backend", "unknown")
        self.retry_after_s = retry_after_s
        self._down_since: float | None = None  # while recently down, write straight to the outbox
        self._lock = threading.Lock()

    @property
    def db(self) -> Any:
        """The inner store's ``Database`` (for stores kept next to the audit log)."""
        return self.inner.db

    def _cooling_down(self) -> bool:
        return self._down_since is not None and time.monotonic() - self._down_since < self.retry_after_s

    def _apply(self, kind: str, payload: dict[str, Any]) -> Any:
        """Write one queued record to the inner store (raises like the store)."""
        if kind == "decision":
            return self.inner.record_decision(Decision.model_validate(payload))
        if kind == "action":
            return self.inner.record_action(HumanAction.model_validate(payload))
        if kind == "private":
            return self.inner.save_private(
                payload["ticket_id"], payload["raw_text"], payload.get("subject"), payload.get("metadata")
            )
        if kind == "piimap":
            return self.inner.save_pii_map(payload["ticket_id"], payload["pii_map"])
        raise ValueError(f"unknown outbox record kind {kind!r}")

    def _write(self, kind: str, key: str, payload: dict[str, Any]) -> Any:
        """Write now if the store is up; else queue. A refused record is dead-lettered, never raised."""
        if not self._cooling_down():
            self.flush()
        if not self._cooling_down():
            try:
                result = self._apply(kind, payload)
                self._down_since = None
                return result
            except AuditUnavailable:
                self._down_since = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - AuditRejected or a bug: keep the record, say why
                path = self.outbox.put(kind, key, payload)
                item = {"kind": kind, "key": key, "payload": payload}
                self.outbox.dead_letter(path, f"{type(exc).__name__}: {exc}", item)
                return None
        self.outbox.put(kind, key, payload)
        return None

    def record_decision(self, decision: Decision) -> str:
        key = _safe_name(decision.ticket_id)
        written = self._write("decision", key, decision.model_dump(mode="json"))
        return written or audit_id_for(decision.ticket_id)

    def record_action(self, action: HumanAction) -> str:
        return self._write("action", action.key(), action.model_dump(mode="json")) or action.key()

    def save_private(
        self, ticket_id: str, raw_text: str, subject: str | None = None, metadata: dict | None = None
    ) -> None:
        payload = {"ticket_id": ticket_id, "raw_text": raw_text, "subject": subject}
        payload["metadata"] = metadata or {}
        self._write("private", _safe_name(ticket_id), payload)

    def save_pii_map(self, ticket_id: str, mapping: dict[str, str]) -> None:
        self._write("piimap", _safe_name(ticket_id), {"ticket_id": ticket_id, "pii_map": mapping})

    def flush(self) -> int:
        """Replay queued records in order. A refused record is dead-lettered and the replay goes on;
        only an unavailable store stops it. Returns how many were written."""
        written = 0
        with self._lock:
            for path in self.outbox.pending():
                try:
                    item = json.loads(path.read_text(encoding="utf-8"))
                    kind, payload = item["kind"], item["payload"]
                except FileNotFoundError:
                    continue  # replayed by another thread/process meanwhile
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    self.outbox.dead_letter(path, f"unreadable outbox file: {type(exc).__name__}: {exc}")
                    continue
                try:
                    self._apply(kind, payload)
                except AuditUnavailable:
                    self._down_since = time.monotonic()
                    break
                except Exception as exc:  # noqa: BLE001 - refused / invalid record: out of the way
                    self.outbox.dead_letter(path, f"{type(exc).__name__}: {exc}", item)
                    continue
                path.unlink(missing_ok=True)
                written += 1
        if written and not self.outbox.pending():
            self._down_since = None
        return written

    def pending(self) -> int:
        return len(self.outbox)

    def dead_letters(self) -> int:
        return len(self.outbox.dead())

    # --- reads: the store, falling back to what waits in the outbox ------------------------
    def get_decision(self, ticket_id: str) -> dict | None:
        """The stored decision; while it still waits in the outbox (or the store is down), that copy."""
        try:
            row = self.inner.get_decision(ticket_id)
        except AuditUnavailable:
            row = None
            if self.outbox.read("decision", _safe_name(ticket_id)) is None:
                raise
        if row is not None:
            return row
        queued = self.outbox.read("decision", _safe_name(ticket_id))
        if queued is None:
            return None
        completed = any(  # a queued reviewer action for the ticket completes it
            (_payload(p) or {}).get("ticket_id") == ticket_id for p in self.outbox.dir.glob("action-*.json")
        )
        status = "completed" if completed else initial_status(queued.get("route", "escalate"))
        return {"audit_id": audit_id_for(ticket_id), **queued, "status": status, "queued": True}

    def get_private(self, ticket_id: str) -> dict | None:
        try:
            found = self.inner.get_private(ticket_id)
        except AuditUnavailable:
            found = None
        private = self.outbox.read("private", _safe_name(ticket_id))
        piimap = self.outbox.read("piimap", _safe_name(ticket_id))
        if found is None and private is None and piimap is None:
            return None
        out = found or {"raw_text": None, "subject": None, "metadata": {}, "pii_map": {}, "purged": False}
        if private is not None and out.get("raw_text") is None and not out.get("purged"):
            out = {**out, "raw_text": private["raw_text"], "subject": private.get("subject"),
                   "metadata": private.get("metadata") or {}}
        if piimap is not None and not out.get("purged"):
            out = {**out, "pii_map": piimap["pii_map"]}
        return out

    def list_decisions(self, route: str | None = None, status: str | None = None, limit: int = 100,
                       offset: int = 0) -> list[dict]:
        return self.inner.list_decisions(route=route, status=status, limit=limit, offset=offset)

    def list_actions(self, ticket_id: str) -> list[dict]:
        return self.inner.list_actions(ticket_id)

    def count_decisions(self, ticket_id: str | None = None) -> int:
        return self.inner.count_decisions(ticket_id)

    def feedback_rows(self) -> list[tuple[str, str]]:
        return self.inner.feedback_rows()

    def review_log(self, since: Any = None) -> list[dict]:
        return self.inner.review_log(since)

    def purge_private(self, before: Any, *, dry_run: bool = False) -> dict[str, int]:
        return self.inner.purge_private(before, dry_run=dry_run)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


def _safe_name(ticket_id: str) -> str:
    """Ticket ids come from outside: use their audit id (a uuid) as the file name."""
    return audit_id_for(ticket_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m src.audit.outbox``: replay queued records into the configured audit store now."""
    import argparse

    from src.audit.store import open_audit_store
    from src.config import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m src.audit.outbox",
        description="Flush the durable audit outbox (records kept while the audit database was down).",
    )
    parser.add_argument("--dead", action="store_true", help="list dead-lettered records and their reasons")
    parser.add_argument("--requeue", action="store_true", help="move dead letters back into the queue first")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.dead:
        outbox = Outbox(settings.outbox_dir)
        for path in outbox.dead():
            item = json.loads(path.read_text(encoding="utf-8"))
            print(f"{path.name}\t{item.get('failed_at')}\t{item.get('reason')}")
        print(f"{len(outbox.dead())} dead-lettered record(s) in {outbox.dead_dir}")
        return 0
    try:
        store = open_audit_store(settings)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    if args.requeue:
        print(f"requeued {store.outbox.requeue_dead()} dead-lettered record(s)")  # type: ignore[attr-defined]
    written = store.flush()  # type: ignore[attr-defined]
    left = store.pending()  # type: ignore[attr-defined]
    dead = store.dead_letters()  # type: ignore[attr-defined]
    print(f"flushed {written} record(s) from {settings.outbox_dir}; {left} still pending;", end=" ")
    print(f"{dead} dead-lettered")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
