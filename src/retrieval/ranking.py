"""Pure ranking rules: time decay blended into similarity, filtered + fallback merging, RRF fusion.

Similarity decides; recency only breaks near-ties (``weight`` is small by default), so an old but
exact resolution still beats a new vague one. Tickets without a date get no recency bonus.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from src.retrieval.backends import Found
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


def competition_ranks(scores: list[float], decimals: int = 5) -> list[int]:
    """1-based ranks where equal scores share a rank ("1224"): engines order ties differently,
    so a rank must not depend on which of two equal scores came first."""
    rounded = [round(s, decimals) for s in scores]
    ordered = sorted(rounded, reverse=True)
    first = {}
    for i, s in enumerate(ordered):
        first.setdefault(s, i + 1)
    return [first[s] for s in rounded]


def rrf_fuse(lists: list[list[Found]], k: int, limit: int) -> list[Found]:
    """Reciprocal rank fusion: ``sum(1 / (k + rank))`` over the lists a result appears in.

    Ties in an input list share a rank, and the output is ordered by fused score, then cosine
    similarity, then id, so the result is the same whichever engine produced the lists.
    """
    fused: dict[str, float] = {}
    best: dict[str, Found] = {}
    for found in lists:
        for f, r in zip(found, competition_ranks([f.score for f in found]), strict=True):
            fused[f.id] = fused.get(f.id, 0.0) + 1.0 / (k + r)
            best.setdefault(f.id, f)
    order = sorted(fused, key=lambda i: (-round(fused[i], 9), -best[i].similarity, i))[:limit]
    return [replace(best[i], fused=fused[i]) for i in order]


def drop_cut_ties(found: list[Found], limit: int, decimals: int = 5) -> list[Found]:
    """A full list (``limit`` results) loses the tie group at its end: which members of a tie
    made the cut is the engine's arbitrary choice, so none of them count (short BM25 queries
    tie a lot)."""
    if len(found) < limit or not found:
        return found
    last = round(found[-1].score, decimals)
    return [f for f in found if round(f.score, decimals) != last]
