"""The graph's typed state.

Values are plain JSON-able dicts/lists (pydantic models are dumped) so any checkpointer can persist
them and an audit/export can read them without importing model classes. Keys written by the two
parallel branches (analyze, retrieve) use reducers so their updates merge instead of colliding.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class TriageState(TypedDict, total=False):
    # input
    ticket_id: str
    channel: str
    subject: str | None
    raw_text: str  # bounded copy (4 x max_ticket_chars) of the submitted text
    content_hash: str  # sha256 of the full submitted text
    metadata: dict[str, Any]
    trace_id: str | None
    received_at: str
    # produced by nodes
    pre: dict[str, Any]  # Preprocessed
    signals: list[dict[str, Any]]  # rule-based Signal dumps
    injection: list[str]  # prompt-injection pattern names
    prediction: dict[str, Any] | None  # Prediction
    analysis: dict[str, Any] | None  # Analysis
    hits: list[dict[str, Any]]  # Hit dumps
    retrieval: dict[str, Any]  # filtered, fallback_used, neighbours (unfiltered: id, intent, similarity)
    draft: dict[str, Any] | None  # Draft (PII-masked text)
    draft_display: str | None  # draft with PII restored, for the reviewer / customer
    score: dict[str, Any]  # Score
    assignment: dict[str, Any]  # Assignment
    audit_id: str
    status: str  # auto_resolved | pending_review | completed
    action: dict[str, Any] | None  # the reviewer's resume value
    outcome: dict[str, Any]  # what happened after review
    # merged from any node
    failures: Annotated[list[str], operator.add]
    latency_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[list[dict[str, Any]], operator.add]
