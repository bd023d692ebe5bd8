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
    """A search result: ``score`` blends cosine similarity and recency; ``similarity`` is raw cosine."""

    id: str
    score: float
    similarity: float
    ticket: ResolvedTicket


class RetrievalUnavailable(RuntimeError):
    """The vector store cannot be reached or used; callers treat it as 'no evidence'."""


class CollectionMismatch(RuntimeError):
    """An existing collection was built with a different embedding model or vector size."""
