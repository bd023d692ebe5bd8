"""LangSmith tracing, on only when configured (``LANGSMITH_TRACING=true``): offline by default.

The graph runs inside an explicit ``tracing_context``: enabled with a client built from Settings
(endpoint / API key / project from the standard ``LANGSMITH_*`` variables), or explicitly disabled
so that nothing is ever sent when tracing is off, whatever else is in the environment. Each node is
a child run named after the node; the root run id is the trace id stored in the audit row.

Traces leave the box, so the client is built with :func:`anonymize` as its anonymizer: LangSmith
applies it to every run's inputs, outputs, metadata and error text before anything is queued for
upload. It drops keys that exist to hold unmasked data (:data:`SENSITIVE_KEYS`, and a ``text`` that
sits beside its ``masked_text``) and runs every remaining string through ``mask_pii``, so a value is
masked even when it turns up somewhere unexpected (a failure message, a reviewer payload).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from src.config import Settings
from src.text.pii import mask_pii

# Keys whose whole value is unmasked customer data or the means to unmask it.
SENSITIVE_KEYS = frozenset(
    {
        "raw_text",  # the submitted ticket, before masking
        "pii_map",  # placeholder -> original value
        "mapping",  # the same map inside a serialised Masked
        "draft_display",  # the draft with PII restored for the agent
        "unmasked_text",
        "original_text",
    }
)
REDACTED = "[redacted]"


def anonymize(value: Any) -> Any:
    """A JSON value with sensitive keys dropped and PII masked in every string (pure, recursive)."""
    if isinstance(value, str):
        return mask_pii(value).text if value else value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key in SENSITIVE_KEYS or (key == "text" and "masked_text" in value):
                out[key] = REDACTED  # keep the key: a trace reader sees that something was withheld
            else:
                out[key] = anonymize(item)
        return out
    if isinstance(value, (list, tuple)):
        return [anonymize(v) for v in value]
    return value


def make_client(settings: Settings) -> Any:
    """The LangSmith client for ``settings``: every payload goes through :func:`anonymize` first."""
    from langsmith import Client

    return Client(
        api_url=settings.langsmith_endpoint,
        api_key=settings.langsmith_api_key.get_secret_value() if settings.langsmith_api_key else None,
        anonymizer=anonymize,
    )


@contextmanager
def tracing_scope(settings: Settings) -> Iterator[Any | None]:
    """Yields the LangSmith client when tracing is on (flushed on exit), else None."""
    from langsmith.run_helpers import tracing_context

    if not settings.langsmith_tracing:
        with tracing_context(enabled=False):
            yield None
        return
    client = make_client(settings)
    try:
        with tracing_context(enabled=True, client=client, project_name=settings.langsmith_project):
            yield client
    finally:
        with suppress(Exception):  # tracing must never break triage
            client.flush()
