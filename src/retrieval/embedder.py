"""Sentence embeddings for tickets and queries (all-MiniLM-L6-v2 offline by default).

The model is loaded once per process (it costs seconds and ~100 MB) and never at import time.
Vectors are L2-normalised so cosine similarity is a dot product, and the dimension is read from
the model so a different ``TRIAGE_EMBEDDING_MODEL`` needs no code change.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from src.classifier.base_models import ALIASES, resolve_base_model
from src.config import get_settings

log = logging.getLogger(__name__)


class TextEmbedder(Protocol):
    """What the store needs from an embedder (the real one, or a fake in unit tests)."""

    model_id: str
    dimension: int

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def canonical_model_id(name: str) -> str:
    """A machine-independent id recorded in the collection (aliases -> hub id, dirs -> folder name)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return f"local:{path.resolve().name}"
    return ALIASES.get(name.lower(), name)


class SentenceEmbedder:
    """A thin wrapper over ``SentenceTransformer``: batched, normalised float32 vectors."""

    def __init__(self, name: str) -> None:
        from sentence_transformers import SentenceTransformer  # heavy import: only when used

        self.model_id = canonical_model_id(name)
        self._model = SentenceTransformer(resolve_base_model(name), device="cpu")
        dim = self._model.get_embedding_dimension()
        if not dim:
            raise ValueError(f"embedding model {name!r} does not report its output dimension")
        self.dimension = int(dim)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` -> ``(len(texts), dimension)`` unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


_CACHE: dict[tuple[str, str], TextEmbedder] = {}
_LOCK = threading.Lock()


def _onnx_embedder(name: str) -> TextEmbedder:
    """ONNX Runtime embedder; a fresh export is checked against torch before it is trusted."""
    import torch

    from src.retrieval.onnx_embedder import PROBES, OnnxSentenceEmbedder, UnsupportedForOnnx

    cache = get_settings().models_cache_dir.parent / "encoders" / "onnx"
    onnx = OnnxSentenceEmbedder(name, canonical_model_id(name), cache, threads=torch.get_num_threads())
    if onnx.exported:
        reference = SentenceEmbedder(name).encode(PROBES)
        diff = float(np.abs(onnx.encode(PROBES) - reference).max())
        if diff > 1e-4:
            onnx.path.unlink(missing_ok=True)
            raise UnsupportedForOnnx(f"ONNX export differs from torch by {diff:.2e}")
    return onnx


def get_embedder(model: str | None = None, backend: str | None = None) -> TextEmbedder:
    """The process-wide embedder for ``model`` (default ``Settings.embedding_model``).

    ``backend`` (default ``Settings.embedding_backend``): ``onnx`` (ONNX Runtime, same vectors,
    faster on CPU), ``torch`` (sentence-transformers), or ``auto`` = ONNX when the model can be
    exported, else torch. Both give the same ``model_id``, so collections work with either.
    """
    settings = get_settings()
    name = model or settings.embedding_model
    backend = backend or settings.embedding_backend
    with _LOCK:
        key = (name, backend)
        if key not in _CACHE:
            if backend == "torch":
                _CACHE[key] = SentenceEmbedder(name)
            elif backend == "onnx":
                _CACHE[key] = _onnx_embedder(name)
            else:
                try:
                    _CACHE[key] = _onnx_embedder(name)
                except Exception as exc:  # noqa: BLE001 - any ONNX problem: torch still works
                    log.warning("ONNX embedder unavailable for %s (%s); using torch", name, exc)
                    _CACHE[key] = SentenceEmbedder(name)
        return _CACHE[key]
