"""LangSmith tracing, on only when configured (``LANGSMITH_TRACING=true``): offline by default.

The graph runs inside an explicit ``tracing_context``: enabled with a client built from Settings
(endpoint / API key / project from the standard ``LANGSMITH_*`` variables), or explicitly disabled
so that nothing is ever sent when tracing is off, whatever else is in the environment. Each node is
a child run named after the node; the root run id is the trace id stored in the audit row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from src.config import Settings


@contextmanager
def tracing_scope(settings: Settings) -> Iterator[Any | None]:
    """Yields the LangSmith client when tracing is on (flushed on exit), else None."""
    from langsmith.run_helpers import tracing_context

    if not settings.langsmith_tracing:
        with tracing_context(enabled=False):
            yield None
        return
    from langsmith import Client

    client = Client(
        api_url=settings.langsmith_endpoint,
        api_key=settings.langsmith_api_key.get_secret_value() if settings.langsmith_api_key else None,
    )
    try:
        with tracing_context(enabled=True, client=client, project_name=settings.langsmith_project):
            yield client
    finally:
        with suppress(Exception):  # tracing must never break triage
            client.flush()
