"""The graph's typed state.

Values are plain JSON-able dicts/lists (pydantic models are dumped) so any checkpointer can persist
them and an audit/export can read them without importing model classes. Keys written by the two
parallel branches (analyze, retrieve) use reducers so their updates merge instead of colliding.

No customer data in clear: the state is checkpointed (kept until the checkpointer is cleaned) and
traced, so it holds only PII-masked text. The submitted text, subject, source metadata and the PII
map live in the audit database's ``pii_vault`` (``AuditStore.save_private`` / ``get_private``),
are read there by ``preprocess`` and by the service when it renders a view, and are purged by the
retention command.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class TriageState(TypedDict, total=False):
    # input
    ticket_id: str  # "{channel}:{source id}" (src.graph.service.ticket_id_for)
    channel: str
    content_hash: str  # sha256 of the full submitted text
    trace_id: str | None
    received_at: str
    # produced by nodes
    pre: dict[str, Any]  # Preprocessed without ``text`` and ``pii_map`` (masked_text, language, flags, valid)
    signals: list[dict[str, Any]]  # rule-based Signal dumps
    injection: list[str]  # prompt-injection pattern names
    prediction: dict[str, Any] | None  # Prediction
    analysis: dict[str, Any] | None  # Analysis
    hits: list[dict[str, Any]]  # Hit dumps
    retrieval: dict[str, Any]  # filtered, fallback_used, neighbours (unfiltered: id, intent, similarity)
    draft: dict[str, Any] | None  # Draft (PII-masked text; unmasked only when the service renders a view)
    score: dict[str, Any]  # Score
    assignment: dict[str, Any]  # Assignment
    audit_id: str
    status: str  # auto_resolved | pending_review | completed
    action: dict[str, Any] | None  # the reviewer's resume value (its text re-masked with the ticket's map)
    outcome: dict[str, Any]  # what happened after review
    # merged from any node
    failures: Annotated[list[str], operator.add]
    latency_ms: Annotated[dict[str, float], merge_dicts]
    usage: Annotated[list[dict[str, Any]], operator.add]
