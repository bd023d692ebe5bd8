"""BM25 sparse vectors for hybrid search, computed in-process by Qdrant's own BM25 model.

``qdrant_edge.Bm25`` is the tokenizer + stemmer + BM25 term weighting of the Qdrant engine
(English stop words and Snowball stemming), so the embedded store and a server get the same
sparse vectors; the collection's ``bm25`` vector has the IDF modifier, so the engine supplies the
inverse document frequencies from the stored corpus at query time.
"""

from __future__ import annotations

import threading

import qdrant_edge as qe

from src.retrieval.backends import SparseVec

_MODELS: dict[float, qe.Bm25] = {}
_LOCK = threading.Lock()


def _model(avg_len: float) -> qe.Bm25:
    with _LOCK:
        if avg_len not in _MODELS:
            _MODELS[avg_len] = qe.Bm25(qe.Bm25Config(avg_len=avg_len, language="english"))
        return _MODELS[avg_len]


def bm25_document(text: str, avg_len: float) -> SparseVec:
    """Term-frequency weights of a stored ticket (length-normalised against ``avg_len`` tokens)."""
    v = _model(avg_len).embed_document(text)
    return SparseVec(list(v.indices), [float(x) for x in v.values])


def bm25_query(text: str, avg_len: float) -> SparseVec:
    """Each distinct query term weighs 1; the engine multiplies in the IDF."""
    v = _model(avg_len).embed_query(text)
    return SparseVec(list(v.indices), [float(x) for x in v.values])
