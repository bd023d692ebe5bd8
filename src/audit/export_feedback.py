"""Export reviewers' corrected intents as ``text,label`` training rows (the feedback loop).

Usage: ``python -m src.audit.export_feedback --out data/feedback.csv`` (``.jsonl`` also works).
Reads the configured audit store (Postgres if TRIAGE_DATABASE_URL is set, else the SQLite file).
The text is the cleaned, PII-masked ticket text the classifier saw, so rows are safe to share.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from src.audit.errors import AuditUnavailable


def write_rows(rows: list[tuple[str, str]], out: Path) -> int:
    """Write rows as CSV (default) or JSONL (by suffix); returns the number written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".jsonl":
        with out.open("w", encoding="utf-8") as fh:
            for text, label in rows:
                fh.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
    else:
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.audit.export_feedback", description="Export corrected intents as text,label rows."
    )
    parser.add_argument("--out", required=True, type=Path, help="output file (.csv or .jsonl)")
    args = parser.parse_args(argv)
    from src.audit.store import open_audit_store

    try:
        store = open_audit_store(outbox=False)
        rows = store.feedback_rows()
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    n = write_rows(rows, args.out)
    print(f"wrote {n} corrected-intent rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
