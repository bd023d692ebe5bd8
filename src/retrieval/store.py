"""The resolved-ticket knowledge base on Qdrant: local mode on disk by default, a server by URL.

``TRIAGE_QDRANT_URL`` (+ ``TRIAGE_QDRANT_API_KEY``) switches from the embedded on-disk store
(``TRIAGE_QDRANT_PATH``) to a Qdrant server or cluster with the same API. The collection records
the embedding model and dimension in its metadata; opening it with another model raises
:class:`CollectionMismatch` instead of silently comparing incompatible vectors. Any failure at
search time is a :class:`RetrievalUnavailable` that the graph turns into 'no evidence'.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

from src.config import Settings, get_settings
from src.retrieval.embedder import TextEmbedder, get_embedder
from src.retrieval.ranking import blended_score, merge_with_fallback, rank, recency_factor
from src.retrieval.types import CollectionMismatch, Hit, ResolvedTicket, RetrievalUnavailable, SearchResult

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
INDEXED_FIELDS: dict[str, models.PayloadSchemaType] = {
    "intent": models.PayloadSchemaType.KEYWORD,
    "category": models.PayloadSchemaType.KEYWORD,
    "resolved_at": models.PayloadSchemaType.DATETIME,
    "text_hash": models.PayloadSchemaType.KEYWORD,
}
_TICKET_FIELDS = tuple(ResolvedTicket.model_fields)

# Local mode allows one client per storage folder per process: keep exactly one per location.
_CLIENTS: dict[tuple[str, ...], QdrantClient] = {}
_CLIENTS_LOCK = threading.Lock()


_BLAS: Any = None


@contextlib.contextmanager
def _single_blas_thread() -> Iterator[None]:
    """Run local-mode brute-force search with one BLAS thread.

    Its matrix-vector product is memory-bound, so a second BLAS thread mostly spins: on the
    shared 2-core box one thread was twice as fast (36 -> 17 ms per query at 4k tickets).
    The limit is process-wide while held (microseconds per query).
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def _client_key(settings: Settings) -> tuple[str, ...]:
    if settings.qdrant_url:
        return ("url", settings.qdrant_url)
    return ("path", str(settings.qdrant_path.expanduser().resolve()))


def get_client(settings: Settings) -> QdrantClient:
    """The process-wide client for the configured location (raises RetrievalUnavailable)."""
    key = _client_key(settings)
    with _CLIENTS_LOCK:
        if key in _CLIENTS:
            return _CLIENTS[key]
        try:
            if settings.qdrant_url:
                api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
                client = QdrantClient(
                    url=settings.qdrant_url,
                    api_key=api_key,
                    timeout=settings.qdrant_timeout_s,
                    check_compatibility=False,  # no network call at construction; fail on first use
                )
            else:
                path = settings.qdrant_path.expanduser().resolve()
                path.mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=str(path))
        except Exception as exc:  # noqa: BLE001 - e.g. the folder is locked by another process
            hint = (
                " (local mode allows one process per folder: stop the other process, or run a Qdrant "
                "server and set TRIAGE_QDRANT_URL)"
                if not settings.qdrant_url
                else ""
            )
            raise RetrievalUnavailable(f"cannot open Qdrant at {key[1]}: {exc}{hint}") from exc
        _CLIENTS[key] = client
        return client


def close_clients() -> None:
    """Close every cached client (tests, and before handing a local folder to another process)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("error closing qdrant client", exc_info=True)
        _CLIENTS.clear()
    get_knowledge_base.cache_clear()


# Close before interpreter teardown: a local client's __del__ then fails noisily on exit.
atexit.register(close_clients)


def _tune_local_storage(client: QdrantClient, collection: str) -> None:
    """Make local-mode writes ~50x faster: WAL + synchronous=NORMAL on its SQLite file.

    qdrant-client's local mode commits (and fsyncs) once per point: measured 17 ms/point here,
    i.e. ~60 tickets/s. WAL keeps commits atomic and crash-safe for the application; a power loss
    can drop the last commits, which an idempotent re-ingest restores. Best effort: if the
    client's internals change, ingest is just slower.
    """
    try:
        conn = client._client.collections[collection].storage.storage  # type: ignore[attr-defined]
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except Exception:  # noqa: BLE001 - internals of another library; never fatal
        log.debug("could not tune qdrant local storage", exc_info=True)


def build_filter(intent: str | None = None, category: str | None = None) -> models.Filter | None:
    """Payload filter for the requested intent/category (``None`` when neither is given)."""
    must: list[models.Condition] = []
    if intent:
        must.append(models.FieldCondition(key="intent", match=models.MatchValue(value=intent)))
    if category:
        must.append(models.FieldCondition(key="category", match=models.MatchValue(value=category)))
    return models.Filter(must=must) if must else None


def payload_matches(payload: dict[str, Any], intent: str | None, category: str | None) -> bool:
    """Client-side twin of :func:`build_filter` (exact match on the fields that are given)."""
    return (not intent or payload.get("intent") == intent) and (
        not category or payload.get("category") == category
    )


def ticket_from_payload(payload: dict[str, Any]) -> ResolvedTicket:
    """Rebuild the typed record from a stored payload (extra bookkeeping keys are ignored)."""
    return ResolvedTicket.model_validate({k: payload[k] for k in _TICKET_FIELDS if k in payload})


@dataclass(frozen=True)
class _LocalSnapshot:
    """Normalised vectors with their payloads: exact cosine search as one matrix-vector product."""

    ids: list[str]
    matrix: np.ndarray  # (n, dim), rows L2-normalised
    payloads: list[dict[str, Any]]
    intents: np.ndarray
    categories: np.ndarray

    @classmethod
    def build(
        cls, ids: list[str], vectors: list[list[float]], payloads: list[dict[str, Any]], dim: int
    ) -> _LocalSnapshot:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(ids), dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1.0, norms)
        intents = np.array([str(p.get("intent")) for p in payloads], dtype=object)
        categories = np.array([str(p.get("category")) for p in payloads], dtype=object)
        return cls(ids, matrix, payloads, intents, categories)

    def top(
        self,
        vector: np.ndarray,
        limit: int,
        intent: str | None,
        category: str | None,
        min_score: float | None,
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """The ``limit`` most similar points matching the filter (same semantics as build_filter)."""
        if not self.ids:
            return []
        query = np.asarray(vector, dtype=np.float32)
        query = query / (float(np.linalg.norm(query)) or 1.0)
        sims = self.matrix @ query
        keep = np.ones(len(sims), dtype=bool)
        if intent:
            keep &= self.intents == intent
        if category:
            keep &= self.categories == category
        if min_score is not None:
            keep &= sims >= min_score
        candidates = np.flatnonzero(keep)
        if len(candidates) > limit:
            candidates = candidates[np.argpartition(-sims[candidates], limit - 1)[:limit]]
        order = candidates[np.argsort(-sims[candidates], kind="stable")]
        return [(self.ids[i], float(sims[i]), self.payloads[i]) for i in order]


class KnowledgeBase:
    """Search and write access to the resolved-ticket collection.

    The client and the embedder are created lazily, so constructing a KnowledgeBase never fails
    or blocks; problems surface on the first call as :class:`RetrievalUnavailable`.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: TextEmbedder | None = None,
        client: QdrantClient | None = None,
    ) -> None:
        self.settings = settings
        self.collection = settings.qdrant_collection
        self._embedder = embedder
        self._client = client
        self._ready = False
        self._lock = threading.RLock()
        self._snapshot: _LocalSnapshot | None = None

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
    def client(self) -> QdrantClient:
        if self._client is None:
            self._client = get_client(self.settings)
        return self._client

    @property
    def is_local(self) -> bool:
        return not self.settings.qdrant_url

    @property
    def location(self) -> str:
        return self.settings.qdrant_url or str(self.settings.qdrant_path)

    def _search_threads(self) -> contextlib.AbstractContextManager[None]:
        return _single_blas_thread() if self.is_local else contextlib.nullcontext()

    def ensure_collection(self) -> None:
        """Create the collection on first use, or check it was built with the same model."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            embedder = self.embedder
            if self.client.collection_exists(self.collection):
                self._check_compatible(embedder)
            else:
                self._create(embedder)
            if self.is_local:
                _tune_local_storage(self.client, self.collection)
            self._ready = True

    def _create(self, embedder: TextEmbedder) -> None:
        try:
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=embedder.dimension, distance=models.Distance.COSINE),
                # Cluster layout (ignored by local mode): see docs/retrieval.md.
                shard_number=None if self.is_local else self.settings.qdrant_shard_number,
                replication_factor=None if self.is_local else self.settings.qdrant_replication_factor,
                metadata={
                    "embedding_model": embedder.model_id,
                    "dimension": embedder.dimension,
                    "schema": SCHEMA_VERSION,
                },
            )
        except Exception:
            if self.client.collection_exists(self.collection):  # created concurrently: verify it
                self._check_compatible(embedder)
                return
            raise
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (it filters by scanning); servers need them.
            warnings.simplefilter("ignore", UserWarning)
            for field, schema in INDEXED_FIELDS.items():
                self.client.create_payload_index(self.collection, field, field_schema=schema)

    def _check_compatible(self, embedder: TextEmbedder) -> None:
        info = self.client.get_collection(self.collection)
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        meta = info.config.metadata or {}
        stored_model = meta.get("embedding_model")
        if size != embedder.dimension or (stored_model and stored_model != embedder.model_id):
            raise CollectionMismatch(
                f"collection {self.collection!r} at {self.location} was built with "
                f"{stored_model or 'an unknown model'} ({size}-d vectors) but the configured embedding "
                f"model is {embedder.model_id} ({embedder.dimension}-d). Re-ingest into a new collection "
                "(TRIAGE_QDRANT_COLLECTION=...) or rebuild this one with `python -m src.retrieval.ingest "
                "--recreate`."
            )
        if not stored_model:
            log.warning("collection %r has no embedding-model metadata; vector size matches", self.collection)

    def recreate(self) -> None:
        """Drop and re-create the collection (``ingest --recreate``)."""
        with self._lock:
            if self.client.collection_exists(self.collection):
                self.client.delete_collection(self.collection)
            self._ready = False
            self._snapshot = None
        self.ensure_collection()

    # --- writes ----------------------------------------------------------------------------
    def count(self) -> int:
        self.ensure_collection()
        return int(self.client.count(self.collection, exact=True).count)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are already stored (idempotent re-ingest)."""
        if not ids:
            return set()
        self.ensure_collection()
        points = self.client.retrieve(self.collection, ids=list(ids), with_payload=False, with_vectors=False)
        return {str(p.id) for p in points}

    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        """Which normalised-text hashes are already stored (near-identical text dedupe)."""
        if not hashes:
            return set()
        self.ensure_collection()
        flt = models.Filter(
            must=[models.FieldCondition(key="text_hash", match=models.MatchAny(any=list(hashes)))]
        )
        points, _ = self.client.scroll(
            self.collection, scroll_filter=flt, limit=len(hashes), with_payload=["text_hash"]
        )
        return {str((p.payload or {}).get("text_hash")) for p in points}

    def max_similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Cosine similarity of each vector to its nearest stored neighbour (0 when empty)."""
        self.ensure_collection()
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.float32)
        requests = [models.QueryRequest(query=v.tolist(), limit=1) for v in vectors]
        responses = self.client.query_batch_points(self.collection, requests=requests)
        return np.array([r.points[0].score if r.points else 0.0 for r in responses], dtype=np.float32)

    def upsert(self, tickets: Sequence[ResolvedTicket], vectors: np.ndarray, hashes: Sequence[str]) -> int:
        """Store tickets with their vectors; returns how many points were written."""
        if len(tickets) != len(vectors) or len(tickets) != len(hashes):
            raise ValueError("tickets, vectors and hashes must have the same length")
        if not tickets:
            return 0
        self.ensure_collection()
        model_id = self.embedder.model_id
        points = [
            models.PointStruct(
                id=t.id,
                vector=v.tolist(),
                payload={**t.model_dump(mode="json"), "text_hash": h, "embedding_model": model_id},
            )
            for t, v, h in zip(tickets, vectors, hashes, strict=True)
        ]
        with self._lock:
            self.client.upsert(self.collection, points=points, wait=True)
            self._snapshot = None
        return len(points)

    # --- search ----------------------------------------------------------------------------
    def search(
        self,
        text: str,
        k: int | None = None,
        intent: str | None = None,
        category: str | None = None,
        min_score: float | None = None,
        *,
        now: datetime | None = None,
    ) -> SearchResult:
        """The ``k`` most similar resolved tickets, newest first among near-ties.

        With ``intent``/``category``, only matching tickets, unless fewer than
        ``Settings.retrieval_min_filtered_hits`` match: then the list is topped up from an
        unfiltered search (hits marked ``fallback``). ``min_score`` is a floor on raw cosine
        similarity. Raises :class:`RetrievalUnavailable` for any store/embedding failure.
        """
        k = self.settings.retrieval_k if k is None else k
        if k < 1:
            raise ValueError("k must be >= 1")
        if not text or not text.strip():
            return SearchResult([])
        now = now or datetime.now(timezone.utc)
        try:
            self.ensure_collection()
            vector = self.embedder.encode([text[: self.settings.max_ticket_chars]])[0]
            flt = build_filter(intent, category)
            if flt is None:
                return SearchResult(self._query(vector, k, None, min_score, now))
            filtered = self._query(vector, k, flt, min_score, now, intent=intent, category=category)
            if len(filtered) >= min(k, self.settings.retrieval_min_filtered_hits):
                return SearchResult(filtered, filtered=True)
            unfiltered = self._query(vector, k, None, min_score, now)
            merged = merge_with_fallback(filtered, unfiltered, k)
            return SearchResult(merged, filtered=True, fallback_used=True)
        except RetrievalUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - any store/embedder failure means "no evidence"
            raise RetrievalUnavailable(
                f"knowledge base search failed at {self.location}: {type(exc).__name__}: {exc}"
            ) from exc

    def _query(
        self,
        vector: np.ndarray,
        k: int,
        flt: models.Filter | None,
        min_score: float | None,
        now: datetime,
        *,
        intent: str | None = None,
        category: str | None = None,
    ) -> list[Hit]:
        # Over-fetch so the recency blend can reorder near-ties that sit just below rank k.
        pool = max(4 * k, k + 16)
        if self.is_local:
            scored = self._local_snapshot().top(vector, pool, intent, category, min_score)
        else:
            with self._lock, self._search_threads():
                response = self.client.query_points(
                    self.collection,
                    query=vector.tolist(),
                    query_filter=flt,
                    limit=pool,
                    with_payload=True,
                    score_threshold=min_score,
                )
            scored = [(str(p.id), float(p.score), p.payload or {}) for p in response.points]
        return rank(list(self._to_hits(scored, now)), k)

    def _local_snapshot(self) -> _LocalSnapshot:
        """All stored vectors + payloads in memory, rebuilt after every write (local mode only).

        Local mode re-normalises every stored vector on each query and filters in Python per point
        (~8 ms unfiltered, ~250 ms filtered at 4k tickets); one normalised matrix makes both a
        single exact matrix-vector product.
        """
        with self._lock:
            if self._snapshot is None:
                ids: list[str] = []
                vectors: list[list[float]] = []
                payloads: list[dict[str, Any]] = []
                offset = None
                while True:
                    points, offset = self.client.scroll(
                        self.collection, limit=1024, offset=offset, with_payload=True, with_vectors=True
                    )
                    for point in points:
                        ids.append(str(point.id))
                        vectors.append(list(point.vector))  # type: ignore[arg-type]
                        payloads.append(point.payload or {})
                    if offset is None:
                        break
                self._snapshot = _LocalSnapshot.build(ids, vectors, payloads, self.embedder.dimension)
            return self._snapshot

    def _to_hits(self, scored: Iterable[tuple[str, float, dict[str, Any]]], now: datetime) -> Iterable[Hit]:
        half_life = self.settings.recency_half_life_days
        weight = self.settings.recency_weight
        for point_id, similarity, payload in scored:
            ticket = ticket_from_payload(payload)
            recency = recency_factor(ticket.resolved_at, now, half_life)
            yield Hit(
                id=point_id,
                score=blended_score(similarity, recency, weight),
                similarity=similarity,
                ticket=ticket,
            )


@lru_cache(maxsize=1)
def get_knowledge_base() -> KnowledgeBase:
    """The process-wide knowledge base for the process settings."""
    return KnowledgeBase.from_settings()
