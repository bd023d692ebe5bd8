"""Local spool for intake records while the database is down: accept now, import later.

"Intake still accepts with Postgres down" needs a durable place that is not Postgres: one JSON file
per ticket in ``<data_dir>/intake_spool`` (written to a temp file, fsynced, renamed), named by a
hash of the ticket id so a retried webhook finds its earlier file. The sweep imports the files into
the intake table once the database answers, enqueues what is new, and deletes the files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


class IntakeSpool:
    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)

    def _path(self, ticket_id: str) -> Path:
        return self.dir / f"{hashlib.sha256(ticket_id.encode()).hexdigest()[:40]}.json"

    def put(self, ticket_id: str, channel: str, source_id: str | None, payload: dict[str, Any]) -> bool:
        """Keep the record durably; False when this ticket is already spooled (a retry)."""
        path = self._path(ticket_id)
        if path.exists():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        record = {"ticket_id": ticket_id, "channel": channel, "source_id": source_id, "payload": payload}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return True

    def items(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                out.append((path, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, json.JSONDecodeError):
                continue  # half-written by a crash before the rename cannot happen; skip anything else
        return out

    def __len__(self) -> int:
        return len(list(self.dir.glob("*.json"))) if self.dir.is_dir() else 0
