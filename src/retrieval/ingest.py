"""Ingest resolved tickets (CSV/JSONL) into the knowledge base: validate, mask, dedupe, embed, upsert.

Idempotent: ids come from content, so re-running the same file writes nothing. Near-identical
texts are dropped twice over: same normalised text (hash), then cosine similarity above
``Settings.retrieval_dedupe_cosine`` to a ticket already kept. Rows that cannot be used are
skipped and counted by reason; a file that cannot be used at all is rejected before any write.

Bitext rows carry no resolution date, so ``resolved_at`` stays empty for them (no synthetic
dates): recency then plays no part in their ranking, which is the honest reading of the data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from src.config import Settings, get_settings
from src.retrieval.records import (
    parse_resolved_at,
    skip_reason,
    split_tags,
    stable_id,
    text_hash,
)
from src.retrieval.sources import SourceError, SourceRows, read_rows, resolve_columns
from src.retrieval.store import KnowledgeBase
from src.retrieval.types import ResolvedTicket, RetrievalUnavailable
from src.text.pii import mask_pii

DEFAULT_SOURCE = Path("bitext-customer-support") / "bitext_release_2023-08-18.csv"
# Without the shared data folder (a user's clone), the same public corpus comes from the hub.
DEFAULT_HUB_SOURCE = Path("bitext/Bitext-customer-support-llm-chatbot-training-dataset")
CHUNK = 256


@dataclass
class IngestStats:
    """What happened to every row read (read = skipped + deduped + already_present + upserted)."""

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    deduped: int = 0
    already_present: int = 0
    upserted: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU time: comparable across busy and idle machines

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def tickets_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def tickets_per_cpu_s(self) -> float:
        return self.read / self.cpu_seconds if self.cpu_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "skipped": self.skipped_total,
            "skipped_by_reason": dict(self.skipped),
            "deduped": self.deduped,
            "already_present": self.already_present,
            "upserted": self.upserted,
            "seconds": round(self.seconds, 3),
            "tickets_per_s": round(self.tickets_per_s, 1),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "tickets_per_cpu_s": round(self.tickets_per_cpu_s, 1),
        }


def _cell(row: dict[str, object], column: str | None) -> object:
    if column is None:
        return None
    value = row.get(column)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _label(value: object) -> str | None:
    """A short label cell: stripped, empty -> None."""
    text = _as_text(value)
    return text.strip() or None if text is not None else None


def prepare_row(
    row: dict[str, object], mapping: dict[str, str], *, max_chars: int
) -> tuple[ResolvedTicket, str] | str:
    """One row -> (PII-masked ticket, normalised-text hash), or the reason it is skipped."""
    text = _as_text(_cell(row, mapping["text"]))
    response = _as_text(_cell(row, mapping["response"]))
    reason = skip_reason(text, response, max_chars=max_chars)
    if reason:
        return reason
    assert text is not None and response is not None
    try:
        resolved_at = parse_resolved_at(_cell(row, mapping.get("resolved_at")))
    except ValueError:
        return "bad_resolved_at"
    csat_raw = _cell(row, mapping.get("csat"))
    try:
        csat = float(csat_raw) if csat_raw not in (None, "") else None
    except (TypeError, ValueError):
        return "bad_csat"
    masked_text = mask_pii(text.strip()).text
    masked_response = mask_pii(response.strip()).text
    ticket = ResolvedTicket(
        id=stable_id(masked_text, masked_response),
        text=masked_text,
        intent=_label(_cell(row, mapping.get("intent"))),
        category=_label(_cell(row, mapping.get("category"))),
        response=masked_response,
        resolved_at=resolved_at,
        csat=csat,
        tags=split_tags(_cell(row, mapping.get("tags"))),
        language=_label(_cell(row, mapping.get("language"))),
    )
    return ticket, text_hash(masked_text)


def _near_duplicates(vectors: np.ndarray, kept: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask: vector i duplicates one in ``kept`` or an earlier kept one in this chunk."""
    dup = np.zeros(len(vectors), dtype=bool)
    if threshold >= 1.0 or len(vectors) == 0:
        return dup
    if len(kept):
        dup |= (vectors @ kept.T).max(axis=1) > threshold
    sims = vectors @ vectors.T
    for i in range(len(vectors)):
        if dup[i]:
            continue
        later = sims[i, i + 1 :] > threshold
        dup[i + 1 :] |= later
    return dup


def ingest_rows(
    kb: KnowledgeBase,
    source: SourceRows,
    mapping: dict[str, str],
    *,
    settings: Settings,
    progress: bool = True,
) -> IngestStats:
    """Run the pipeline over already-read rows (see module docstring)."""
    stats = IngestStats(read=len(source.rows) + source.malformed)
    if source.malformed:
        stats.skipped["malformed"] = source.malformed
    kb.ensure_collection()  # loads the embedder and checks the model before the clock starts
    had_points = kb.count() > 0
    start, cpu_start = time.perf_counter(), time.process_time()

    prepared: list[tuple[ResolvedTicket, str]] = []
    seen_hashes: set[str] = set()
    for row in source.rows:
        result = prepare_row(row, mapping, max_chars=settings.max_ticket_chars)
        if isinstance(result, str):
            stats.skipped[result] += 1
            continue
        if result[1] in seen_hashes:
            stats.deduped += 1
            continue
        seen_hashes.add(result[1])
        prepared.append(result)

    todo: list[tuple[ResolvedTicket, str]] = []
    for i in range(0, len(prepared), CHUNK):
        batch = prepared[i : i + CHUNK]
        present = kb.existing_ids([t.id for t, _ in batch]) if had_points else set()
        stats.already_present += len(present)
        fresh = [(t, h) for t, h in batch if t.id not in present]
        if had_points and fresh:
            stored = kb.existing_hashes([h for _, h in fresh])
            stats.deduped += sum(1 for _, h in fresh if h in stored)
            fresh = [(t, h) for t, h in fresh if h not in stored]
        todo.extend(fresh)

    threshold = settings.retrieval_dedupe_cosine
    kept = np.zeros((0, kb.embedder.dimension), dtype=np.float32)
    bar = tqdm(total=len(todo), desc="embed+upsert", unit="ticket", disable=not progress, file=sys.stderr)
    for i in range(0, len(todo), CHUNK):
        batch = todo[i : i + CHUNK]
        vectors = kb.embedder.encode([t.text for t, _ in batch])
        dup = _near_duplicates(vectors, kept, threshold)
        if had_points and threshold < 1.0 and (~dup).any():
            idx = np.flatnonzero(~dup)
            dup[idx[kb.max_similarity(vectors[idx]) > threshold]] = True
        keep = np.flatnonzero(~dup)
        stats.deduped += int(dup.sum())
        stats.upserted += kb.upsert([batch[j][0] for j in keep], vectors[keep], [batch[j][1] for j in keep])
        kept = np.vstack([kept, vectors[keep]])
        bar.update(len(batch))
    bar.close()
    stats.seconds = time.perf_counter() - start
    stats.cpu_seconds = time.process_time() - cpu_start
    return stats


def ingest_file(
    source: Path,
    *,
    settings: Settings | None = None,
    kb: KnowledgeBase | None = None,
    columns: dict[str, str | None] | None = None,
    limit: int | None = None,
    recreate: bool = False,
    encoding: str = "utf-8",
    progress: bool = True,
) -> IngestStats:
    """Read, validate and ingest ``source``. Raises SourceError / RetrievalUnavailable."""
    settings = settings or get_settings()
    rows = read_rows(source, encoding=encoding, limit=limit)
    mapping = resolve_columns(rows.columns, columns or {})
    kb = kb or KnowledgeBase.from_settings(settings)
    if recreate:
        kb.recreate()
    return ingest_rows(kb, rows, mapping, settings=settings, progress=progress)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.retrieval.ingest",
        description="Ingest resolved tickets (CSV/JSONL) into the Qdrant knowledge base "
        "(local folder TRIAGE_QDRANT_PATH, or the server at TRIAGE_QDRANT_URL).",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="CSV/TSV/JSONL file or a Hugging Face dataset id (default: the Bitext 2023-08-18 release in "
        "the shared data folder, else the Bitext dataset from the hub)",
    )
    for name, what in (
        ("text", "ticket text"),
        ("response", "reply/resolution text"),
        ("intent", "intent label"),
        ("category", "category"),
        ("resolved-at", "resolution date/time"),
    ):
        parser.add_argument(
            f"--{name}-column", default=None, help=f"column holding the {what} (auto-detected)"
        )
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--recreate", action="store_true", help="drop and re-create the collection first")
    parser.add_argument("--encoding", default="utf-8", help="file encoding (default utf-8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy shared CPU)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    source = args.source or settings.shared_data_dir / DEFAULT_SOURCE
    if args.source is None and not source.exists():
        source = DEFAULT_HUB_SOURCE
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be >= 1", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    columns = {
        "text": args.text_column,
        "response": args.response_column,
        "intent": args.intent_column,
        "category": args.category_column,
        "resolved_at": args.resolved_at_column,
    }
    try:
        stats = ingest_file(
            source,
            settings=settings,
            columns=columns,
            limit=args.limit,
            recreate=args.recreate,
            encoding=args.encoding,
            progress=not args.no_progress,
        )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RetrievalUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    s = stats.as_dict()
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(stats.skipped.items())) or "none"
    print(
        f"read={s['read']} skipped={s['skipped']} ({reasons}) deduped={s['deduped']} "
        f"already_present={s['already_present']} upserted={s['upserted']}"
    )
    print(
        f"{s['read']} tickets in {s['seconds']} s = {s['tickets_per_s']} tickets/s "
        f"({s['tickets_per_cpu_s']} per CPU-second) "
        f"-> collection {settings.qdrant_collection!r} at {settings.qdrant_url or settings.qdrant_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
