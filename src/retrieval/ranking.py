"""Pure ranking rules: time decay blended into similarity, and filtered + fallback merging.

Similarity decides; recency only breaks near-ties (``weight`` is small by default), so an old but
exact resolution still beats a new vague one. Tickets without a date get no recency bonus.
"""

from __future__ import annotations

from datetime import datetime

from src.retrieval.types import Hit

SECONDS_PER_DAY = 86_400.0


def recency_factor(resolved_at: datetime | None, now: datetime, half_life_days: float) -> float:
    """1.0 for 'just resolved', halving every ``half_life_days``; undated -> 0.0; future -> 1.0."""
    if resolved_at is None or half_life_days <= 0:
        return 0.0
    age_days = (now - resolved_at).total_seconds() / SECONDS_PER_DAY
    if age_days <= 0:
        return 1.0
    return float(0.5 ** (age_days / half_life_days))


def blended_score(similarity: float, recency: float, weight: float) -> float:
    """Convex blend: ``(1 - w) * cosine + w * recency`` (``w`` clipped to [0, 1])."""
    w = min(max(weight, 0.0), 1.0)
    return (1.0 - w) * similarity + w * recency


def rank(hits: list[Hit], k: int) -> list[Hit]:
    """Best ``k`` by blended score; ties broken by raw similarity, then id (deterministic)."""
    return sorted(hits, key=lambda h: (-h.score, -h.similarity, h.id))[:k]


def merge_with_fallback(filtered: list[Hit], unfiltered: list[Hit], k: int) -> list[Hit]:
    """Filtered hits first (they match what was asked), topped up with unseen unfiltered hits.

    The top-up hits are marked ``fallback=True`` so a caller can treat them as weaker evidence.
    """
    seen = {h.id for h in filtered}
    extra = [h.model_copy(update={"fallback": True}) for h in unfiltered if h.id not in seen]
    return list(filtered[:k]) + extra[: max(k - len(filtered), 0)]
