"""Retention: forget the raw text, subject, source metadata and PII map of finished tickets.

    python -m src.audit.retention --days 90 --dry-run
    python -m src.audit.retention            # TRIAGE_RETENTION_DAYS (default 90)

Only the vault (``pii_vault``) holds customer data in clear: graph state, checkpoints, traces and the
decision rows keep masked text. A ticket is *finished* once auto-resolved or completed by a
reviewer; its private part is purged when that happened more than N days ago. Tickets still waiting
for a human keep theirs (the reviewer needs it) and are counted as ``kept_unfinished``. After a
purge, views show placeholders (``[EMAIL_1]``) where the customer's data was.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from src.audit.errors import AuditUnavailable
from src.audit.models import utcnow


def main(argv: list[str] | None = None) -> int:
    from src.config import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m src.audit.retention",
        description="Purge raw ticket text and PII maps of tickets finished more than N days ago.",
    )
    parser.add_argument("--days", type=int, default=settings.retention_days,
                        help=f"keep N days after a ticket finished (default TRIAGE_RETENTION_DAYS = "
                             f"{settings.retention_days})")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="count what would be purged; change nothing")
    args = parser.parse_args(argv)
    if args.days < 0:
        parser.error("--days must be >= 0")
    from src.audit.store import open_audit_store

    try:
        store = open_audit_store(settings)
        store.flush()  # type: ignore[attr-defined] - queued records first, so their tickets count
        result = store.purge_private(utcnow() - timedelta(days=args.days), dry_run=args.dry_run)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    finally:
        if "store" in locals():
            store.close()
    print(json.dumps({"days": args.days, "dry_run": args.dry_run, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
