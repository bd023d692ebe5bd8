"""Durable local outbox: when the audit database is down, records wait on disk and are replayed later.

One JSON file per record, written atomically (temp file + fsync + rename), named by the record's
idempotency key: a retry overwrites the same file instead of queueing a duplicate, and replaying is
safe because the stores ignore keys they already hold. Nothing is lost if the process dies.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from src.audit.errors import AuditUnavailable
from src.audit.models import Decision, HumanAction, audit_id_for


class Outbox:
    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def put(self, kind: str, key: str, payload: dict[str, Any]) -> Path:
        path = self.dir / f"{kind}-{key}.json"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"kind": kind, "key": key, "payload": payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    def pending(self) -> list[Path]:
        """Oldest first (decisions before the actions that refer to them)."""
        files = list(self.dir.glob("*.json"))
        return sorted(files, key=lambda p: (0 if p.name.startswith("decision-") else 1, p.stat().st_mtime_ns))

    def __len__(self) -> int:
        return len(list(self.dir.glob("*.json")))


class OutboxAuditStore:
    """Wraps a store: writes that fail with ``AuditUnavailable`` go to the outbox; ``flush`` replays them."""

    def __init__(self, inner: Any, outbox_dir: Path | str, *, retry_after_s: float = 10.0) -> None:
        self.inner = inner
        self.outbox = Outbox(outbox_dir)
        self.backend = getattr(inner, "backend", "unknown")
        self.retry_after_s = retry_after_s
        self._down_since: float | None = None  # while recently down, write straight to the outbox
        self._lock = threading.Lock()

    def _cooling_down(self) -> bool:
        return self._down_since is not None and time.monotonic() - self._down_since < self.retry_after_s

    def _write(self, kind: str, key: str, record: Decision | HumanAction, write: Any) -> str | None:
        if not self._cooling_down():
            self.flush()
            try:
                result = write(record)
                self._down_since = None
                return result
            except AuditUnavailable:
                self._down_since = time.monotonic()
        self.outbox.put(kind, key, record.model_dump(mode="json"))
        return None

    def record_decision(self, decision: Decision) -> str:
        key = _safe_name(decision.ticket_id)
        written = self._write("decision", key, decision, self.inner.record_decision)
        return written or audit_id_for(decision.ticket_id)

    def record_action(self, action: HumanAction) -> str:
        return self._write("action", action.key(), action, self.inner.record_action) or action.key()

    def flush(self) -> int:
        """Replay queued records in order; stops at the first failure. Returns how many were written."""
        written = 0
        with self._lock:
            for path in self.outbox.pending():
                try:
                    item = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    continue  # a half-written temp file is never named *.json; skip anything unreadable
                try:
                    if item["kind"] == "decision":
                        self.inner.record_decision(Decision.model_validate(item["payload"]))
                    else:
                        self.inner.record_action(HumanAction.model_validate(item["payload"]))
                except AuditUnavailable:
                    self._down_since = time.monotonic()
                    break
                path.unlink(missing_ok=True)
                written += 1
        if written and not self.outbox.pending():
            self._down_since = None
        return written

    def pending(self) -> int:
        return len(self.outbox)

    def get_decision(self, ticket_id: str) -> dict | None:
        return self.inner.get_decision(ticket_id)

    def list_actions(self, ticket_id: str) -> list[dict]:
        return self.inner.list_actions(ticket_id)

    def count_decisions(self, ticket_id: str | None = None) -> int:
        return self.inner.count_decisions(ticket_id)

    def feedback_rows(self) -> list[tuple[str, str]]:
        return self.inner.feedback_rows()

    def close(self) -> None:
        self.inner.close()


def _safe_name(ticket_id: str) -> str:
    """Ticket ids come from outside: use their audit id (a uuid) as the file name."""
    return audit_id_for(ticket_id)


def main(argv: list[str] | None = None) -> int:
    """``python -m src.audit.outbox``: replay queued records into the configured audit store now."""
    import argparse
    import sys

    from src.audit.store import open_audit_store
    from src.config import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m src.audit.outbox",
        description="Flush the durable audit outbox (records kept while the audit database was down).",
    )
    parser.parse_args(argv)
    settings = get_settings()
    try:
        store = open_audit_store(settings)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    written = store.flush()  # type: ignore[attr-defined]
    left = store.pending()  # type: ignore[attr-defined]
    print(f"flushed {written} record(s) from {settings.outbox_dir}; {left} still pending")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
