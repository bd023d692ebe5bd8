"""Typed records of the resolved-ticket knowledge base."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ResolvedTicket(BaseModel):
    """A resolved ticket as stored in Qdrant (text is PII-masked before storage)."""

    id: str  # stable, derived from content
    text: str
    intent: str | None = None
    category: str | None = None
    response: str = ""
    resolved_at: datetime | None = None
    csat: float | None = None
    tags: list[str] = Field(default_factory=list)
    language: str | None = None


class Hit(BaseModel):
    """A search result: ``score`` blends cosine similarity and recency; ``similarity`` is raw cosine.

    ``fallback`` is True when the hit came from the unfiltered search that tops up a filtered one
    returning too few hits, so callers can weigh it as weaker evidence.
    """

    id: str
    score: float
    similarity: float
    ticket: ResolvedTicket
    fallback: bool = False


class SearchResult(list[Hit]):
    """``list[Hit]`` plus how it was obtained (a plain list for callers that don't care)."""

    def __init__(
        self, hits: list[Hit] | None = None, *, filtered: bool = False, fallback_used: bool = False
    ) -> None:
        super().__init__(hits or [])
        self.filtered = filtered  # an intent/category filter was requested
        self.fallback_used = fallback_used  # unfiltered hits were added because the filter found too few


class RetrievalUnavailable(RuntimeError):
    """The vector store cannot be reached or used; callers treat it as 'no evidence'."""


class CollectionMismatch(RetrievalUnavailable):
    """An existing collection was built with a different embedding model or vector size.

    A subclass of :class:`RetrievalUnavailable` so the graph degrades to 'no evidence' instead of
    crashing, while the CLIs show the specific message.
    """
