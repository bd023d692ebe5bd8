"""Human reviews -> labelled rows with provenance (the feedback loop's data).

Every reviewer action that says what a ticket *is* becomes one labelled row: an intent correction
(any action with a corrected intent, "wrong intent" on the board, a spot check marked wrong with the
right intent) or a confirmation (accept / edit / respond without a correction, a spot check marked
correct). ``reassign``, ``ignore`` and ``escalate`` say where a ticket goes, not what it is: they carry
a label only when the reviewer also corrected the intent. Each row keeps its provenance: ticket,
reviewer, time, action, the bundle version that made the prediction and the predicted intent.

A ticket any reviewer marked as a *bad example* keeps ``bad_example=True`` and is dropped by every
consumer (retraining, the knowledge base). Usage::

    python -m src.classifier.feedback --out data/feedback.jsonl   # .csv works too
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CONFIRMING = ("accept", "edit", "respond")
CHECK_CORRECT, CHECK_WRONG = "correct", "wrong"  # spot-check verdicts (src/api/board/router.py)


@dataclass(frozen=True)
class LabelledRow:
    """One reviewed ticket as a training row, with where the label came from."""

    ticket_id: str
    text: str  # cleaned, PII-masked text the classifier saw
    label: str
    source: str  # "corrected" (the reviewer named another intent) | "confirmed" (prediction upheld)
    predicted: str | None
    action: str
    reviewer: str
    reviewed_at: str
    bundle_version: str | None
    bad_example: bool = False


def _verdict(note: str | None) -> str | None:
    head = (note or "").split(":", 1)[0].strip().lower()
    return head if head in (CHECK_CORRECT, CHECK_WRONG) else None


def label_of(action: dict[str, Any], predicted: str | None) -> tuple[str, str] | None:
    """(label, source) that one action implies, or None when it says nothing about the intent (pure)."""
    corrected = action.get("corrected_intent")
    if corrected and corrected != predicted:
        return corrected, "corrected"
    kind = action.get("action")
    if kind == "check":
        correct = predicted and _verdict(action.get("note")) == CHECK_CORRECT
        return (predicted, "confirmed") if correct else None
    if kind in CONFIRMING and predicted:
        return predicted, "confirmed"
    return None


def labelled_rows(reviews: Iterable[dict[str, Any]]) -> list[LabelledRow]:
    """One row per ticket from ``AuditStore.review_log()`` items: the latest labelling action wins.

    A bad-example mark on *any* action of a ticket marks its row (a later accept does not undo it).
    """
    latest: dict[str, LabelledRow] = {}
    bad: set[str] = set()
    for item in reviews:
        ticket = item["ticket_id"]
        if item.get("bad_example"):
            bad.add(ticket)
        decision = item.get("decision") or {}
        predicted = decision.get("intent")
        found = label_of(item, predicted)
        text = (decision.get("text") or "").strip()
        if found is None or not text:
            continue
        latest[ticket] = LabelledRow(
            ticket_id=ticket, text=text, label=found[0], source=found[1], predicted=predicted,
            action=str(item.get("action")), reviewer=str(item.get("actor") or "unknown"),
            reviewed_at=str(item.get("created_at") or ""), bundle_version=decision.get("bundle_version"),
        )  # fmt: skip
    return [
        LabelledRow(**{**asdict(row), "bad_example": row.ticket_id in bad}) for row in latest.values()
    ]


def load_feedback(store: Any, since: Any = None) -> list[LabelledRow]:
    """Labelled rows from an audit store (its public ``review_log``)."""
    return labelled_rows(store.review_log(since))


def read_feedback(path: Path) -> list[LabelledRow]:
    """Rows written by :func:`write_feedback` (CSV or JSONL)."""
    names = {f.name for f in fields(LabelledRow)}
    if path.suffix.lower() == ".jsonl":
        items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            items = list(csv.DictReader(fh))
    out = []
    for item in items:
        item = {k: v for k, v in item.items() if k in names}
        item["bad_example"] = str(item.get("bad_example", "")).lower() in ("true", "1")
        item["predicted"] = item.get("predicted") or None
        item["bundle_version"] = item.get("bundle_version") or None
        out.append(LabelledRow(**item))
    return out


def write_feedback(rows: list[LabelledRow], out: Path) -> int:
    """CSV (default) or JSONL by suffix, every provenance column included; returns rows written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    dicts = [asdict(r) for r in rows]
    if out.suffix.lower() == ".jsonl":
        with out.open("w", encoding="utf-8") as fh:
            for d in dicts:
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    else:
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[f.name for f in fields(LabelledRow)])
            writer.writeheader()
            writer.writerows(dicts)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.classifier.feedback",
        description="Export every human review that labels a ticket (corrections and confirmations) with "
        "provenance: ticket, reviewer, time, action, bundle version, predicted intent, bad-example mark.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output file (.csv or .jsonl)")
    parser.add_argument("--corrections-only", action="store_true", help="only corrected-intent rows")
    parser.add_argument("--include-bad", action="store_true", help="keep tickets marked as bad examples")
    args = parser.parse_args(argv)
    from src.audit.errors import AuditUnavailable
    from src.audit.store import open_audit_store

    try:
        store = open_audit_store(outbox=False)
        rows = load_feedback(store)
    except AuditUnavailable as exc:
        print(f"error: audit store unavailable: {exc}", file=sys.stderr)
        return 2
    n_bad = sum(r.bad_example for r in rows)
    rows = [r for r in rows if (args.include_bad or not r.bad_example)]
    if args.corrections_only:
        rows = [r for r in rows if r.source == "corrected"]
    n = write_feedback(rows, args.out)
    corrected = sum(r.source == "corrected" for r in rows)
    print(f"wrote {n} labelled rows ({corrected} corrected, {n - corrected} confirmed; "
          f"{n_bad} bad examples {'kept' if args.include_bad else 'left out'}) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
