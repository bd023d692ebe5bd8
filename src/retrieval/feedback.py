"""Resolved tickets flow back into the knowledge base: retrieval improves with use.

For every ticket a reviewer completed with a reply (accept = the draft as sent, edit / respond = the
human's own text), the knowledge base gets one resolved ticket: the masked ticket text, the human's
final reply as the resolution, the intent as corrected (the latest correction of any action, else the
predicted one) and the review time as ``resolved_at``. It goes through the normal ingest pipeline
(``src.retrieval.ingest.ingest_rows``: PII masking, content ids, hash and near-duplicate dedupe
through the index), so running it again adds nothing twice.

Never ingested: a ticket any reviewer marked as a bad example, a ticket closed or reassigned without
a reply, and an accepted clarifying question (a question is not a resolution).

    python -m src.retrieval.feedback [--since 2026-12-01] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from src.config import Settings, get_settings

COLUMNS = ["text", "response", "intent", "resolved_at", "tags", "language"]
MAPPING = {c: c for c in COLUMNS}
REPLYING = ("accept", "edit", "respond")
COMPLETING = ("accept", "edit", "respond", "reassign", "ignore")


def _is_clarification(decision: dict[str, Any]) -> bool:
    from src.graph.clarify import CLARIFY_REASON

    return any(str(r).startswith(CLARIFY_REASON) for r in decision.get("reasons") or [])


def resolved_rows(reviews: Iterable[dict[str, Any]]) -> tuple[list[dict[str, object]], Counter]:
    """Knowledge-base rows from ``AuditStore.review_log()`` items, and why the others were left out."""
    by_ticket: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in reviews:
        by_ticket[item["ticket_id"]].append(item)
    rows: list[dict[str, object]] = []
    left_out: Counter = Counter()
    for actions in by_ticket.values():
        decision = actions[0].get("decision") or {}
        done = next((a for a in actions if a.get("action") in COMPLETING), None)
        if any(a.get("bad_example") for a in actions):
            left_out["marked bad example"] += 1
        elif done is None:
            left_out["not completed"] += 1
        elif done["action"] not in REPLYING:
            left_out[f"{done['action']} (no reply sent)"] += 1
        elif done["action"] == "accept" and _is_clarification(decision):
            left_out["clarifying question (not a resolution)"] += 1
        else:
            reply = decision.get("draft") if done["action"] == "accept" else done.get("edited_draft")
            corrected = [a["corrected_intent"] for a in actions if a.get("corrected_intent")]
            rows.append({
                "text": decision.get("text") or "", "response": reply or "",
                "intent": corrected[-1] if corrected else decision.get("intent"),
                "resolved_at": done.get("created_at"), "tags": "feedback",
                "language": decision.get("language"),
            })  # fmt: skip
    return rows, left_out


def grow_knowledge_base(audit: Any, *, settings: Settings | None = None, kb: Any = None,
                        since: datetime | None = None, progress: bool = True) -> dict[str, Any]:
    """Ingest the reviewed tickets since ``since`` (all by default); returns counts for the report."""
    from src.retrieval.ingest import ingest_rows
    from src.retrieval.sources import SourceRows
    from src.retrieval.store import KnowledgeBase

    settings = settings or get_settings()
    rows, left_out = resolved_rows(audit.review_log(since))
    out: dict[str, Any] = {"reviewed_with_reply": len(rows), "left_out": dict(left_out)}
    if not rows:
        return {**out, "upserted": 0}
    kb = kb or KnowledgeBase.from_settings(settings)
    stats = ingest_rows(kb, SourceRows(list(COLUMNS), rows), MAPPING, settings=settings, progress=progress)
    return {**out, **stats.as_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.retrieval.feedback",
        description="Add reviewed tickets (the human's final reply as the resolution, the corrected intent) "
        "to the knowledge base; bad examples and replies that are not resolutions are left out.",
    )
    parser.add_argument("--since", type=datetime.fromisoformat, help="only reviews at or after this ISO time")
    parser.add_argument("--dry-run", action="store_true", help="count what would be ingested, write nothing")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from src.audit.errors import AuditUnavailable
    from src.audit.store import open_audit_store
    from src.retrieval.types import RetrievalUnavailable

    try:
        audit = open_audit_store(outbox=False)
        if args.dry_run:
            rows, left_out = resolved_rows(audit.review_log(args.since))
            print(f"would ingest {len(rows)} reviewed tickets; left out: {dict(left_out) or 'none'}")
            return 0
        result = grow_knowledge_base(audit, since=args.since, progress=not args.no_progress)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    except RetrievalUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"reviewed tickets with a reply: {result['reviewed_with_reply']}; upserted {result['upserted']}, "
          f"already present {result.get('already_present', 0)}, near duplicates {result.get('deduped', 0)}; "
          f"left out: {result['left_out'] or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
