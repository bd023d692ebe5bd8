"""Qdrant Edge backend: the Qdrant engine itself (HNSW, payload indexes, sparse vectors) in-process.

One shard folder per collection, ``<TRIAGE_QDRANT_PATH>/edge/<collection>/``, in the server's
segment format, plus ``<collection>.json`` beside it with the metadata a server keeps on the
collection (embedding model, vector size, schema), which Edge has no place for. Edge takes a lock
on the shard's write-ahead log: one process per folder, like qdrant-client's local mode.

Writes land in an appendable segment that is searched by brute force until :meth:`optimize`
builds the HNSW index (ingest calls it at the end and every ``Settings.qdrant_optimize_every``
points). Pinned version: qdrant-edge-py is beta (see docs/retrieval.md).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from src.retrieval.backends import (
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    CollectionSpec,
    Found,
    SearchTuning,
    StoredPoint,
    VectorQuery,
    found_points,
)

MAX_SEGMENT_KB = 256_000  # ~170k 384-d points per segment
FLUSH_EVERY = 20_000  # points between flushes (each write is in the write-ahead log meanwhile)
_SCHEMA_TYPES = {
    "keyword": qe.PayloadSchemaType.Keyword,
    "datetime": qe.PayloadSchemaType.Datetime,
}


def _filter(intent: str | None, category: str | None) -> qe.Filter | None:
    must: list[Any] = []
    if intent:
        must.append(qe.FieldCondition(key="intent", match=qe.MatchValue(intent)))
    if category:
        must.append(qe.FieldCondition(key="category", match=qe.MatchValue(category)))
    return qe.Filter(must=must) if must else None


def _sparse(vec: Any) -> qe.SparseVector:
    return qe.SparseVector(indices=list(vec.indices), values=[float(v) for v in vec.values])


class EdgeBackend:
    """A shard folder opened lazily; thread-safe for searches, writes serialised by a lock."""

    def __init__(self, root: Path, collection: str) -> None:
        self.root = root.expanduser().resolve() / "edge"
        self.path = self.root / collection
        self.meta_path = self.root / f"{collection}.json"
        self.location = str(self.path)
        self._shard: qe.EdgeShard | None = None
        self._write = threading.Lock()
        self._unflushed = 0
        self._open = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / "edge_config.json").exists()

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            with self._open:
                if self._shard is None:
                    self._shard = qe.EdgeShard.load(str(self.path))
        return self._shard

    def metadata(self) -> dict[str, Any]:
        try:
            return json.loads(self.meta_path.read_text())
        except (OSError, ValueError):
            return {}

    def create(self, spec: CollectionSpec) -> None:
        quant = (
            qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
            if spec.quantization == "int8"
            else None
        )
        # Memory: the int8 copy stays in RAM for the HNSW walk; the float32 originals (read only
        # to rescore a few candidates) and the payload stay on disk, so RSS does not grow ~10 KB
        # per ticket (measured: 1.4 GB at 120k points with the defaults, 0.4 GB like this).
        # Segments are capped so each HNSW build, and its peak memory, stays bounded.
        config = qe.EdgeConfig(
            vectors={
                DENSE: qe.EdgeVectorParams(
                    size=spec.dimension, distance=qe.Distance.Cosine, memory=qe.Memory.Cold
                )
            },
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=spec.hnsw_m,
                ef_construct=spec.hnsw_ef_construct,
                full_scan_threshold=spec.full_scan_threshold_kb,
            ),
            quantization_config=quant,
            payload_memory=qe.Memory.Cold,
            optimizers=qe.EdgeOptimizersConfig(max_segment_size=MAX_SEGMENT_KB),
        )
        self.root.mkdir(parents=True, exist_ok=True)
        with self._open:
            self._shard = qe.EdgeShard.create(str(self.path), config)
        for name, kind in INDEXED_FIELDS.items():
            self._shard.update(qe.UpdateOperation.create_field_index(name, _SCHEMA_TYPES[kind]))
        tmp = self.meta_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(spec.metadata(), indent=2))
        os.replace(tmp, self.meta_path)  # atomic: a reader never sees half a file

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self.meta_path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._open:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
                self._shard = None

    def optimize(self) -> None:
        with self._write:
            self.shard.optimize()

    # --- reads and writes --------------------------------------------------------------------
    def count(self) -> int:
        return int(self.shard.count(qe.CountRequest(exact=True)))

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        records = self.shard.retrieve(list(ids), with_payload=False, with_vector=False)
        return {str(r.id) for r in records}

    def existing_hashes(self, hashes: Sequence[str]) -> set[str]:
        flt = qe.Filter(must=[qe.FieldCondition(key="text_hash", match=qe.MatchAny(list(hashes)))])
        records, _ = self.shard.scroll(
            qe.ScrollRequest(limit=len(hashes), filter=flt, with_payload=["text_hash"])
        )
        return {str((r.payload or {}).get("text_hash")) for r in records}

    def upsert(self, points: Sequence[StoredPoint]) -> None:
        batch = [
            qe.Point(p.id, {DENSE: p.dense.tolist(), SPARSE: _sparse(p.sparse)}, p.payload) for p in points
        ]
        with self._write:
            self.shard.update(qe.UpdateOperation.upsert_points(batch))
            self._unflushed += len(batch)
            if self._unflushed >= FLUSH_EVERY:  # segments durable: the write-ahead log can shrink
                self.shard.flush()
                self._unflushed = 0

    def search(self, queries: Sequence[VectorQuery], tuning: SearchTuning) -> list[list[Found]]:
        requests = [self._request(q, tuning) for q in queries]
        if len(requests) == 1:
            results = [self.shard.query(requests[0])]
        else:
            results = self.shard.query_batch(qe.QueryBatchRequest(requests))
        return [found_points(q, points) for q, points in zip(queries, results, strict=True)]

    def _request(self, q: VectorQuery, tuning: SearchTuning) -> qe.QueryRequest:
        flt = _filter(q.intent, q.category)
        if q.sparse:
            return qe.QueryRequest(
                limit=q.limit,
                query=qe.Query.Nearest(_sparse(q.sparse), using=SPARSE),
                filter=flt,
                params=qe.SearchParams(exact=q.exact),
                with_payload=q.with_payload,
                with_vector=[DENSE],
            )
        return qe.QueryRequest(
            limit=q.limit,
            query=qe.Query.Nearest(q.dense.tolist(), using=DENSE),
            filter=flt,
            score_threshold=q.min_score,
            params=qe.SearchParams(
                hnsw_ef=tuning.hnsw_ef,
                exact=q.exact,
                quantization=qe.QuantizationSearchParams(
                    ignore=q.exact, rescore=True, oversampling=tuning.oversampling
                ),
            ),
            with_payload=q.with_payload,
        )

