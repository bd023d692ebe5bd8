"""Benchmark tickets that are in the knowledge base would be answered by retrieving themselves.

The check uses the knowledge base's own dedupe key (normalised-text hash of the PII-masked text,
``src.retrieval.records.text_hash``, exactly as ingest stores it), so a ticket ingested verbatim
is found whatever the KB's source was (e.g. ingest fell back to the classifier's own corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def kb_overlap(texts: Sequence[str], kb: Any, batch: int = 512) -> set[int]:
    """Indexes of ``texts`` whose masked, normalised text is stored in ``kb``."""
    from src.retrieval.records import text_hash
    from src.text.pii import mask_pii

    hashes = [text_hash(mask_pii(t.strip()).text) for t in texts]
    found: set[str] = set()
    for i in range(0, len(hashes), batch):
        found |= set(kb.existing_hashes(hashes[i : i + batch]))
    return {i for i, h in enumerate(hashes) if h in found}


def near_copies(texts: Sequence[str], kb: Any, threshold: float = 0.98) -> int | None:
    """How many ``texts`` have a stored neighbour at least ``threshold`` similar (None: not measurable)."""
    embedder, nearest = getattr(kb, "embedder", None), getattr(kb, "max_similarity", None)
    if embedder is None or nearest is None or not texts:
        return None
    sims = np.asarray(nearest(embedder.encode(list(texts))))
    return int((sims >= threshold).sum())
