"""What the knowledge base needs from a vector engine, in the engine's own neutral terms.

Two implementations: :mod:`src.retrieval.edge_backend` (Qdrant Edge, the Qdrant engine embedded
in-process: the default) and :mod:`src.retrieval.client_backend` (qdrant-client against a server
or cluster, or its local mode). Both store the same named vectors (``dense`` cosine + ``bm25``
sparse with IDF), the same payload and the same payload indexes, so the facade in
:mod:`src.retrieval.store` and the congruence test treat them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

DENSE = "dense"
SPARSE = "bm25"
SCHEMA_VERSION = 2  # 2: named dense + bm25 sparse vectors (1 was one unnamed dense vector)
# Payload indexes created with the collection: filters on intent/category, recency ranges on
# resolved_at, and the near-identical-text lookup of ingest on text_hash.
INDEXED_FIELDS: dict[str, str] = {
    "intent": "keyword",
    "category": "keyword",
    "resolved_at": "datetime",
    "text_hash": "keyword",
}


@dataclass(frozen=True)
class SparseVec:
    """A sparse vector (BM25 term weights); empty when the text has no indexable token."""

    indices: list[int]
    values: list[float]

    def __bool__(self) -> bool:
        return bool(self.indices)


@dataclass(frozen=True)
class StoredPoint:
    id: str
    dense: np.ndarray
    sparse: SparseVec
    payload: dict[str, Any]


@dataclass(frozen=True)
class VectorQuery:
    """One search: nearest by ``dense`` (cosine), or by ``sparse`` (BM25) when that is given.

    A BM25 search still carries the dense query vector: each hit's cosine ``similarity`` is
    computed from its stored dense vector, so evidence strength means the same in every mode.
    """

    dense: np.ndarray
    limit: int
    intent: str | None = None
    category: str | None = None
    min_score: float | None = None  # floor on cosine similarity (dense candidates)
    sparse: SparseVec | None = None
    exact: bool = False  # brute force instead of HNSW (recall checks)
    with_payload: bool = True


@dataclass(frozen=True)
class Found:
    """A result: the engine's ``score`` (cosine or BM25), cosine ``similarity`` always, and
    ``fused`` (the RRF score) once dense and BM25 results were fused."""

    id: str
    similarity: float
    payload: dict[str, Any]
    score: float = 0.0
    fused: float | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """Everything fixed when a collection is created; recorded in its metadata."""

    model_id: str
    dimension: int
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    full_scan_threshold_kb: int = 10_000
    quantization: str = "int8"  # "int8" (scalar, in RAM, rescored with the originals) or "none"
    schema: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "embedding_model": self.model_id,
            "dimension": self.dimension,
            "schema": self.schema,
            "hnsw_m": self.hnsw_m,
            "hnsw_ef_construct": self.hnsw_ef_construct,
            "quantization": self.quantization,
            **self.extra,
        }


@dataclass(frozen=True)
class SearchTuning:
    """Query-time knobs (not fixed at creation)."""

    hnsw_ef: int = 128
    rrf_k: int = 60
    oversampling: float = 2.0  # quantised candidates rescored with the original vectors


def similarity_from_vector(query: np.ndarray, stored: Sequence[float] | None) -> float:
    """Cosine of the (unit) query with a stored vector, normalising the stored one."""
    if stored is None:
        return 0.0
    v = np.asarray(stored, dtype=np.float32)
    norm = float(np.linalg.norm(v)) or 1.0
    return float(np.dot(query, v) / norm)


def found_points(q: VectorQuery, points: Sequence[Any]) -> list[Found]:
    """Scored points of either engine (qdrant-client and Qdrant Edge share the shape) as ``Found``.

    A hybrid query's score is the fused rank, not a similarity: the cosine is recomputed from the
    returned dense vector so thresholds downstream keep meaning similarity.
    """
    if not q.sparse:
        return [Found(str(p.id), float(p.score), dict(p.payload or {}), float(p.score)) for p in points]
    vectors = [p.vector.get(DENSE) if isinstance(p.vector, dict) else None for p in points]
    return [
        Found(str(p.id), similarity_from_vector(q.dense, v), dict(p.payload or {}), float(p.score))
        for p, v in zip(points, vectors, strict=True)
    ]


class VectorBackend(Protocol):
    """The operations the facade uses; every method may raise (the facade wraps errors)."""

    location: str

    def exists(self) -> bool: ...

    def metadata(self) -> dict[str, Any]: ...

    def create(self, spec: CollectionSpec) -> None: ...

    def drop(self) -> None: ...

    def count(self) -> int: ...

    def existing_ids(self, ids: Sequence[str]) -> set[str]: ...

    def existing_hashes(self, hashes: Sequence[str]) -> set[str]: ...

    def upsert(self, points: Sequence[StoredPoint]) -> None: ...

    def search(self, queries: Sequence[VectorQuery], tuning: SearchTuning) -> list[list[Found]]: ...

    def optimize(self) -> None: ...

    def close(self) -> None: ...
