"""Append-only JSONL of finished (system, ticket) results: what makes a crashed run resumable.

One file per run fingerprint (tickets + models + LLM + seed): the same command resumes, a
different one starts fresh. A line is written and flushed only after a ticket finishes, so a
kill leaves at most one torn last line, which is ignored on reading.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from src.eval.types import BenchTicket, TicketResult


def run_fingerprint(tickets: Iterable[BenchTicket], config: dict) -> str:
    """Stable short hash of the exact tickets (ids + text + labels) and the run's model configuration."""
    h = hashlib.sha256()
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for t in tickets:
        h.update(json.dumps([t.id, t.text, t.label, t.should_escalate], ensure_ascii=False).encode())
    return h.hexdigest()[:16]


class ResultLog:
    """Reads what a previous attempt finished and appends new results one line at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> dict[tuple[str, str], TicketResult]:
        """Finished results keyed by (system, ticket_id); torn lines and later duplicates are ignored,
        except that a later successful row replaces an error row (errors are retried on resume)."""
        done: dict[tuple[str, str], TicketResult] = {}
        if not self.path.exists():
            return done
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    res = TicketResult.model_validate_json(line)
                except (ValidationError, ValueError):
                    continue  # a line torn by a kill mid-write
                key = (res.system, res.ticket_id)
                if key not in done or (done[key].error and not res.error):
                    done[key] = res  # first finished row wins; a successful retry replaces an error row
        return done

    def append(self, result: TicketResult) -> None:
        """Write one finished result (flushed) before the next ticket starts."""
        with self.path.open("a", encoding="utf-8") as fh:
            if fh.tell() > 0 and not self._ends_with_newline():
                fh.write("\n")  # start clean after a torn line
            fh.write(result.model_dump_json() + "\n")
            fh.flush()

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, 2)
            return fh.read(1) == b"\n"
