"""Results of text preprocessing shared by every package."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Masked(BaseModel):
    """PII-masked text plus the reversible placeholder -> original map (kept local, never sent out)."""

    text: str
    mapping: dict[str, str] = Field(default_factory=dict)


class Signal(BaseModel):
    """A rule-based escalation signal: transparent (which rule, which words matched)."""

    name: str  # e.g. "legal_threat", "chargeback", "supervisor_request"
    matched: str
    sensitive_flag: str | None = None  # which SensitiveFlags field it raises, if any


class Preprocessed(BaseModel):
    """A ticket ready for the models."""

    text: str  # cleaned (HTML, signatures, quotes, banners removed), whitespace collapsed, capped
    masked_text: str  # ``text`` with PII replaced by placeholders
    pii_map: dict[str, str] = Field(default_factory=dict)
    language: str | None = None
    flags: list[str] = Field(default_factory=list)  # empty | binary | truncated | html | non_english ...
    valid: bool = True
