"""The resolved-ticket knowledge base: one facade over the embedded engine and a Qdrant server.

Without ``TRIAGE_QDRANT_URL`` the collection lives in-process on disk under
``TRIAGE_QDRANT_PATH``: Qdrant Edge by default (the Qdrant engine itself: HNSW, payload indexes,
sparse vectors), or qdrant-client's local mode (``TRIAGE_QDRANT_EMBEDDED=local``). With a URL
(+ ``TRIAGE_QDRANT_API_KEY``) it is a Qdrant server or cluster. The collection records the
embedding model and dimension; opening it with another model raises :class:`CollectionMismatch`
instead of silently comparing incompatible vectors. Any failure at search time is a
:class:`RetrievalUnavailable` that the graph turns into 'no evidence'.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import numpy as np

from src.config import Settings, get_settings
from src.retrieval.backends import (
    SCHEMA_VERSION,
    CollectionSpec,
    Found,
    SearchTuning,
    SparseVec,
    StoredPoint,
    VectorBackend,
    VectorQuery,
)
from src.retrieval.embedder import TextEmbedder, get_embedder
from src.retrieval.ranking import (
    blended_score,
    drop_cut_ties,
    merge_with_fallback,
    rank,
    recency_factor,
    rrf_fuse,
)
from src.retrieval.sparse import bm25_document, bm25_query
from src.retrieval.types import CollectionMismatch, Hit, ResolvedTicket, RetrievalUnavailable, SearchResult

log = logging.getLogger(__name__)

_TICKET_FIELDS = tuple(ResolvedTicket.model_fields)
HYBRID_BRANCH = 50  # candidates each of dense and BM25 contributes to the fusion

# Embedded engines allow one open store per folder per process: keep exactly one per location.
_BACKENDS: dict[tuple[str, ...], VectorBackend] = {}
_BACKENDS_LOCK = threading.Lock()


def _backend_key(settings: Settings) -> tuple[str, ...]:
    if settings.qdrant_url:
        return ("url", settings.qdrant_url, settings.qdrant_collection)
    path = str(settings.qdrant_path.expanduser().resolve())
    return (settings.qdrant_embedded, path, settings.qdrant_collection)


def _open_backend(settings: Settings) -> VectorBackend:
    from src.retrieval.client_backend import ClientBackend

    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = QdrantClient(
            url=settings.qdrant_url,
            api_key=api_key,
            timeout=settings.qdrant_timeout_s,
            check_compatibility=False,  # no network call at construction; fail on first use
        )
        return ClientBackend(
            client,
            settings.qdrant_collection,
            local=False,
            location=settings.qdrant_url,
            shard_number=settings.qdrant_shard_number,
            replication_factor=settings.qdrant_replication_factor,
        )
    path = settings.qdrant_path.expanduser().resolve()
    if settings.qdrant_embedded == "local":
        from qdrant_client import QdrantClient

        path.mkdir(parents=True, exist_ok=True)
        return ClientBackend(
            QdrantClient(path=str(path)), settings.qdrant_collection, local=True, location=str(path)
        )
    from src.retrieval.edge_backend import EdgeBackend

    return EdgeBackend(path, settings.qdrant_collection)


def get_backend(settings: Settings) -> VectorBackend:
    """The process-wide backend for the configured location (raises RetrievalUnavailable)."""
    key = _backend_key(settings)
    with _BACKENDS_LOCK:
        if key not in _BACKENDS:
            try:
                _BACKENDS[key] = _open_backend(settings)
            except Exception as exc:  # noqa: BLE001 - e.g. the folder is locked by another process
                raise RetrievalUnavailable(f"cannot open Qdrant at {key[1]}: {exc}{_LOCK_HINT}") from exc
        return _BACKENDS[key]


_LOCK_HINT = (
    " (an embedded store allows one process per folder: stop the other process, or run a Qdrant "
    "server and set TRIAGE_QDRANT_URL)"
)


def close_clients() -> None:
    """Close every open store (tests, and before handing a folder to another process)."""
    with _BACKENDS_LOCK:
        for backend in _BACKENDS.values():
            try:
                backend.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("error closing a knowledge-base backend", exc_info=True)
        _BACKENDS.clear()
    get_knowledge_base.cache_clear()


# Close before interpreter teardown: native handles and local clients then fail noisily on exit.
atexit.register(close_clients)


def payload_matches(payload: dict[str, Any], intent: str | None, category: str | None) -> bool:
    """Client-side twin of the engines' intent/category filter (exact match on given fields)."""
    return (not intent or payload.get("intent") == intent) and (
        not category or payload.get("category") == category
    )


def ticket_from_payload(payload: dict[str, Any]) -> ResolvedTicket:
    """Rebuild the typed record from a stored payload (extra bookkeeping keys are ignored)."""
    return ResolvedTicket.model_validate({k: payload[k] for k in _TICKET_FIELDS if k in payload})


class KnowledgeBase:
    """Search and write access to the resolved-ticket collection.

    The store and the embedder are opened lazily, so constructing a KnowledgeBase never fails
    or blocks; problems surface on the first call as :class:`RetrievalUnavailable`.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: TextEmbedder | None = None,
        backend: VectorBackend | None = None,
    ) -> None:
        self.settings = settings
        self.collection = settings.qdrant_collection
        self._embedder = embedder
        self._backend = backend
        self._ready = False
        self._lock = threading.Lock()
        self.tuning = SearchTuning(hnsw_ef=settings.qdrant_hnsw_ef, rrf_k=settings.retrieval_rrf_k)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> KnowledgeBase:
        """A knowledge base for ``settings`` (default: the process settings)."""
        return cls(settings or get_settings())

    # --- plumbing --------------------------------------------------------------------------
    @property
    def embedder(self) -> TextEmbedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.settings.embedding_model)
        return self._embedder

    @property
    def backend(self) -> VectorBackend:
        if self._backend is None:
            self._backend = get_backend(self.settings)
        return self._backend

    @property
    def is_local(self) -> bool:
        return not self.settings.qdrant_url

    @property
    def location(self) -> str:
        return self.settings.qdrant_url or str(self.settings.qdrant_path)

    def spec(self) -> CollectionSpec:
        return CollectionSpec(
            model_id=self.embedder.model_id,
            dimension=self.embedder.dimension,
            hnsw_m=self.settings.qdrant_hnsw_m,
            hnsw_ef_construct=self.settings.qdrant_hnsw_ef_construct,
            quantization=self.settings.qdrant_quantization,
        )

    def ensure_collection(self) -> None:
        """Create the collection on first use, or check it was built with the same model."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            embedder = self.embedder
            if self.backend.exists():
                self._check_compatible(embedder)
            else:
                try:
                    self.backend.create(self.spec())
                except Exception:
                    if not self.backend.exists():
                        raise
                    self._check_compatible(embedder)  # created concurrently: verify it
            self._ready = True

    def _check_compatible(self, embedder: TextEmbedder) -> None:
        meta = self.backend.metadata()
        size = meta.get("dimension")
        stored_model = meta.get("embedding_model")
        if size != embedder.dimension or (stored_model and stored_model != embedder.model_id):
            raise CollectionMismatch(
                f"collection {self.collection!r} at {self.location} was built with "
                f"{stored_model or 'an unknown model'} ({size}-d vectors) but the configured embedding "
                f"model is {embedder.model_id} ({embedder.dimension}-d). Re-ingest into a new collection "
                "(TRIAGE_QDRANT_COLLECTION=...) or rebuild this one with `python -m src.retrieval.ingest "
                "--recreate`."
            )
        if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise CollectionMismatch(
                f"collection {self.collection!r} at {self.location} has layout version {meta.get('schema')}, "
                f"this code needs {SCHEMA_VERSION} (named dense + bm25 vectors). Rebuild it with "
                "`python -m src.retrieval.ingest --recreate` (ingest is idempotent)."
            )
        if not stored_model:
            log.warning("collection %r has no embedding-model metadata; vector size matches", self.collection)

    def recreate(self) -> None:
        """Drop and re-create the collection (``ingest --recreate``)."""
        with self._lock:
            if self.backend.exists():
                self.backend.drop()
            self._ready = False
        self.ensure_collection()

    def optimize(self) -> None:
        """Build the HNSW index over points written since the last call (embedded Edge only)."""
        self.ensure_collection()
        self.backend.optimize()

    # --- writes ----------------------------------------------------------------------------
    def count(self) -> int:
        self.ensure_collection()
        return self.backend.count()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored (idempotent, resumable ingest)."""
        if not ids:
            return set()
        self.ensure_collection()
        return self.backend.existing_ids(ids)

    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        """Which normalised-text hashes are already stored (near-identical text dedupe)."""
        if not hashes:
            return set()
        self.ensure_collection()
        return self.backend.existing_hashes(hashes)

    def max_similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each vector to its nearest stored neighbour (0 when empty)."""
        self.ensure_collection()
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        queries = [VectorQuery(dense=v, limit=1, with_payload=False) for v in vectors]
        found = self.backend.search(queries, self.tuning)
        return np.array([f[0].similarity if f else 0.0 for f in found], dtype=np.float32)

    def upsert(self, tickets: Sequence[ResolvedTicket], vectors: np.ndarray, hashes: Sequence[str]) -> int:
        """Store tickets with their dense vectors (+ BM25 of the text); returns points written."""
        if len(tickets) != len(vectors) or len(tickets) != len(hashes):
            raise ValueError("tickets, vectors and hashes must have the same length")
        if not tickets:
            return 0
        self.ensure_collection()
        model_id = self.embedder.model_id
        avg_len = self.settings.retrieval_bm25_avg_len
        points = [
            StoredPoint(
                id=t.id,
                dense=np.asarray(v, dtype=np.float32),
                sparse=bm25_document(t.text, avg_len),
                payload={**t.model_dump(mode="json"), "text_hash": h, "embedding_model": model_id},
            )
            for t, v, h in zip(tickets, vectors, hashes, strict=True)
        ]
        self.backend.upsert(points)
        return len(points)

    # --- search ----------------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        """The query vector of ``text`` (capped like :meth:`search` caps it), to search twice with."""
        return self.embedder.encode([text[: self.settings.max_ticket_chars]])[0]

    def search(
        self,
        text: str,
        k: int | None = None,
        intent: str | None = None,
        category: str | None = None,
        min_score: float | None = None,
        *,
        now: datetime | None = None,
        vector: np.ndarray | None = None,
        hybrid: bool | None = None,
    ) -> SearchResult:
        """The ``k`` most similar resolved tickets, newest first among near-ties.

        With ``intent``/``category``, only matching tickets, unless fewer than
        ``Settings.retrieval_min_filtered_hits`` match: then the list is topped up from an
        unfiltered search (hits marked ``fallback``). ``min_score`` is a floor on raw cosine
        similarity. ``vector`` (from :meth:`embed_query`) skips embedding ``text`` again;
        ``hybrid`` (default ``Settings.retrieval_hybrid``) fuses BM25 with the dense ranking.
        Raises :class:`RetrievalUnavailable` for any store/embedding failure.
        """
        k = self.settings.retrieval_k if k is None else k
        if k < 1:
            raise ValueError("k must be >= 1")
        if not text or not text.strip():
            return SearchResult([])
        now = now or datetime.now(timezone.utc)
        hybrid = self.settings.retrieval_hybrid if hybrid is None else hybrid
        try:
            self.ensure_collection()
            dense = self.embed_query(text) if vector is None else np.asarray(vector, dtype=np.float32)
            capped = text[: self.settings.max_ticket_chars]
            sparse = bm25_query(capped, self.settings.retrieval_bm25_avg_len) if hybrid else None
            # Over-fetch so the recency blend can reorder near-ties that sit just below rank k.
            base = VectorQuery(dense=dense, limit=max(4 * k, k + 16), min_score=min_score)
            if not intent and not category:
                return SearchResult(self._ranked(self._find(base, sparse), k, now))
            filtered_q = replace(base, intent=intent, category=category)
            filtered = self._ranked(self._find(filtered_q, sparse), k, now)
            if len(filtered) >= min(k, self.settings.retrieval_min_filtered_hits):
                return SearchResult(filtered, filtered=True)
            unfiltered = self._ranked(self._find(base, sparse), k, now)
            merged = merge_with_fallback(filtered, unfiltered, k)
            return SearchResult(merged, filtered=True, fallback_used=True)
        except RetrievalUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any store/embedder failure means "no evidence"
            raise RetrievalUnavailable(
                f"knowledge base search failed at {self.location}: {type(exc).__name__}: {exc}"
            ) from exc

    def search_exact(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        """Ids of the exact (brute-force) top ``k`` per vector: the reference for recall checks."""
        self.ensure_collection()
        queries = [VectorQuery(dense=v, limit=k, exact=True, with_payload=False) for v in vectors]
        return [[f.id for f in found] for found in self.backend.search(queries, self.tuning)]

    def search_vectors(self, vectors: np.ndarray, k: int) -> list[list[str]]:
        """Ids of the indexed (HNSW) top ``k`` per vector, no payload: what recall is measured on."""
        self.ensure_collection()
        queries = [VectorQuery(dense=v, limit=k, with_payload=False) for v in vectors]
        return [[f.id for f in found] for found in self.backend.search(queries, self.tuning)]

    def _find(self, query: VectorQuery, sparse: SparseVec | None) -> list[Found]:
        """Dense results, or (hybrid) dense and BM25 results fused with RRF in one round trip."""
        if not sparse:
            return self.backend.search([query], self.tuning)[0]
        branch = max(query.limit, HYBRID_BRANCH)
        dense_found, sparse_found = self.backend.search(
            [replace(query, limit=branch), replace(query, limit=branch, sparse=sparse)], self.tuning
        )
        lists = [drop_cut_ties(dense_found, branch), drop_cut_ties(sparse_found, branch)]
        fused = rrf_fuse(lists, self.settings.retrieval_rrf_k, query.limit)
        floor = query.min_score
        return [f for f in fused if floor is None or f.similarity >= floor]

    def _ranked(self, found: list[Found], k: int, now: datetime) -> list[Hit]:
        return rank(list(self._to_hits(found, now)), k)

    def _to_hits(self, found: Iterable[Found], now: datetime) -> Iterable[Hit]:
        """Hits scored by blending recency into the relevance score.

        Dense search: relevance is cosine. Hybrid: the RRF score, rescaled so the best possible
        fused score (rank 1 in both lists) is 1, so the recency weight means the same in both.
        """
        half_life = self.settings.recency_half_life_days
        weight = self.settings.recency_weight
        best_fused = 2.0 / (self.settings.retrieval_rrf_k + 1)
        for f in found:
            ticket = ticket_from_payload(f.payload)
            recency = recency_factor(ticket.resolved_at, now, half_life)
            relevance = f.similarity if f.fused is None else f.fused / best_fused
            yield Hit(
                id=f.id,
                score=blended_score(relevance, recency, weight),
                similarity=f.similarity,
                ticket=ticket,
            )


@lru_cache(maxsize=1)
def get_knowledge_base() -> KnowledgeBase:
    """The process-wide knowledge base for the process settings."""
    return KnowledgeBase.from_settings()
