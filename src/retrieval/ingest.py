"""Ingest resolved tickets into the knowledge base: stream, validate, mask, dedupe, embed, upsert.

Sources (CSV/TSV, JSONL, Parquet, a hub dataset) are read in chunks, embedded in batches and
upserted in batches, so memory stays flat as the corpus grows. Idempotent and resumable: ids
come from content, so re-running the same file (or resuming after a crash) skips every stored
row before embedding it. Near-identical texts are dropped through the index, not an in-memory
matrix: same normalised-text hash already stored (payload index), or a stored nearest neighbour
with cosine above ``Settings.retrieval_dedupe_cosine`` (search before insert). Rows that cannot
be used are skipped and counted by reason; a file that cannot be used at all is rejected before
any write.

Bitext rows carry no resolution date, so ``resolved_at`` stays empty for them (no synthetic
dates): recency then plays no part in their ranking, which is the honest reading of the data.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
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
from src.retrieval.sources import RowStream, SourceError, SourceRows, open_rows, resolve_columns
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
    index_seconds: float = 0.0  # HNSW builds (embedded Edge), not included in ``seconds``

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
            "index_seconds": round(self.index_seconds, 3),
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


def _prepare_chunk(
    chunk: list[dict[str, object]], mapping: dict[str, str], stats: IngestStats, max_chars: int
) -> list[tuple[ResolvedTicket, str]]:
    """Valid, masked rows of one chunk, without repeats of a normalised text inside the chunk."""
    prepared: list[tuple[ResolvedTicket, str]] = []
    seen: set[str] = set()
    for row in chunk:
        result = prepare_row(row, mapping, max_chars=max_chars)
        if isinstance(result, str):
            stats.skipped[result] += 1
        elif result[1] in seen:
            stats.deduped += 1
        else:
            seen.add(result[1])
            prepared.append(result)
    return prepared


def ingest_stream(
    kb: KnowledgeBase,
    stream: RowStream,
    mapping: dict[str, str],
    *,
    settings: Settings,
    progress: bool = True,
    total: int | None = None,
    build_index: bool = True,
) -> IngestStats:
    """Run the pipeline chunk by chunk (see module docstring); memory does not grow with the file.

    Per chunk: validate + mask, drop ids already stored (resume), embed, drop texts whose hash or
    nearest stored neighbour (cosine > ``retrieval_dedupe_cosine``) is already in the index, then
    upsert. The upsert of one chunk runs in a worker thread while the next chunk is prepared and
    embedded; the next chunk's duplicate checks wait for it, so they always see it.
    """
    stats = IngestStats()
    kb.ensure_collection()  # loads the embedder and checks the model before the clock starts
    start, cpu_start = time.perf_counter(), time.process_time()
    threshold = settings.retrieval_dedupe_cosine
    every = max(settings.qdrant_optimize_every, 1)
    since_index = 0
    bar = tqdm(total=total, desc="ingest", unit="row", disable=not progress, file=sys.stderr, smoothing=0.1)
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-upsert")
    pending: Future[int] | None = None
    try:
        for chunk in stream.chunks():
            stats.read += len(chunk)
            fresh = _prepare_chunk(chunk, mapping, stats, settings.max_ticket_chars)
            present = kb.existing_ids([t.id for t, _ in fresh])
            stats.already_present += len(present)
            fresh = [(t, h) for t, h in fresh if t.id not in present]
            vectors = kb.embedder.encode([t.text for t, _ in fresh]) if fresh else None
            if pending is not None:  # the previous chunk must be visible to the checks below
                written, pending = pending.result(), None
                stats.upserted += written
                since_index += written
            if since_index >= every:
                t0 = time.perf_counter()
                kb.optimize()
                stats.index_seconds += time.perf_counter() - t0
                since_index = 0
            if fresh and vectors is not None:
                stored = kb.existing_hashes([h for _, h in fresh])
                dup = np.array([h in stored for _, h in fresh], dtype=bool)
                dup |= _near_duplicates(vectors, np.zeros((0, vectors.shape[1]), np.float32), threshold)
                if threshold < 1.0 and (~dup).any():
                    idx = np.flatnonzero(~dup)
                    dup[idx[kb.max_similarity(vectors[idx]) > threshold]] = True
                keep = np.flatnonzero(~dup)
                stats.deduped += int(dup.sum())
                if len(keep):
                    pending = writer.submit(
                        kb.upsert, [fresh[j][0] for j in keep], vectors[keep], [fresh[j][1] for j in keep]
                    )
            bar.update(len(chunk))
            bar.set_postfix(stored=stats.upserted, dupes=stats.deduped, refresh=False)
        if pending is not None:
            stats.upserted += pending.result()
            pending = None
    finally:
        if pending is not None:
            pending.result()
        writer.shutdown(wait=True)
        bar.close()
    if stream.malformed:
        stats.read += stream.malformed
        stats.skipped["malformed"] += stream.malformed
    stats.seconds = time.perf_counter() - start
    stats.cpu_seconds = time.process_time() - cpu_start
    if build_index and stats.upserted:
        t0 = time.perf_counter()
        kb.optimize()  # HNSW over what was written (embedded Edge; a server indexes by itself)
        stats.index_seconds += time.perf_counter() - t0
    return stats


def ingest_rows(
    kb: KnowledgeBase,
    source: SourceRows,
    mapping: dict[str, str],
    *,
    settings: Settings,
    progress: bool = True,
) -> IngestStats:
    """Ingest rows already in memory (small sources, tests): the same pipeline as a stream."""
    chunks = (source.rows[i : i + CHUNK] for i in range(0, len(source.rows), CHUNK))
    stream = RowStream(source.columns, chunks, malformed=source.malformed)
    return ingest_stream(kb, stream, mapping, settings=settings, progress=progress, total=len(source.rows))


def ingest_file(
    source: Path | str,
    *,
    settings: Settings | None = None,
    kb: KnowledgeBase | None = None,
    columns: dict[str, str | None] | None = None,
    limit: int | None = None,
    recreate: bool = False,
    encoding: str = "utf-8",
    progress: bool = True,
    chunk_rows: int = CHUNK,
    build_index: bool = True,
) -> IngestStats:
    """Stream, validate and ingest ``source``. Raises SourceError / RetrievalUnavailable."""
    settings = settings or get_settings()
    stream = open_rows(source, encoding=encoding, limit=limit, chunk_rows=chunk_rows)
    mapping = resolve_columns(stream.columns, columns or {})
    kb = kb or KnowledgeBase.from_settings(settings)
    if recreate:
        kb.recreate()
    return ingest_stream(
        kb, stream, mapping, settings=settings, progress=progress, total=limit, build_index=build_index
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.retrieval.ingest",
        description="Stream resolved tickets (CSV/TSV/JSONL/Parquet or a hub dataset) into the Qdrant "
        "knowledge base (embedded under TRIAGE_QDRANT_PATH, or the server at TRIAGE_QDRANT_URL). "
        "Resumable: re-running skips rows already stored.",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="CSV/TSV/JSONL/Parquet file or a Hugging Face dataset id (default: the Bitext 2023-08-18 "
        "release in the shared data folder, else the Bitext dataset from the hub)",
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
        "--chunk-rows", type=int, default=CHUNK, help=f"rows read, embedded and upserted per batch ({CHUNK})"
    )
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="skip the final HNSW build (embedded Edge; search stays exact)",
    )
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
    if args.chunk_rows < 1:
        print("error: --chunk-rows must be >= 1", file=sys.stderr)
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
            chunk_rows=args.chunk_rows,
            build_index=not args.no_index,
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
        f"({s['tickets_per_cpu_s']} per CPU-second; index build {s['index_seconds']} s) "
        f"-> collection {settings.qdrant_collection!r} at {settings.qdrant_url or settings.qdrant_path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
