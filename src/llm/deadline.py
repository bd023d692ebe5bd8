"""One overall deadline for the LLM calls of a graph step (a context variable, so threads inherit it).

``call_with_timeout`` in the graph runs a node body in a worker thread; a Python thread cannot be
killed, so the work itself has to stop. The node sets a deadline around its body
(:func:`run_with_deadline`); the local provider checks it between generated tokens and the HTTP
adapters clamp each attempt (and skip retries) to it. Nested scopes keep the earlier deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_deadline: ContextVar[float | None] = ContextVar("triage_llm_deadline", default=None)


def deadline_at() -> float | None:
    """The current deadline as a ``time.monotonic()`` value, or None."""
    return _deadline.get()


def remaining(limit_s: float | None = None) -> float | None:
    """Seconds left (may be <= 0) under the current deadline and ``limit_s``; None when unbounded."""
    left = [d - time.monotonic() for d in (_deadline.get(),) if d is not None]
    if limit_s is not None and limit_s > 0:
        left.append(limit_s)
    return min(left) if left else None


@contextmanager
def deadline_scope(seconds: float | None) -> Iterator[float | None]:
    """Within the block, work must finish ``seconds`` from now (or by an earlier enclosing deadline)."""
    if seconds is None or seconds <= 0:
        yield _deadline.get()
        return
    new = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(new if current is None else min(current, new))
    try:
        yield _deadline.get()
    finally:
        _deadline.reset(token)


def run_with_deadline(seconds: float | None, fn: Callable[[], T]) -> T:
    """``fn()`` under :func:`deadline_scope` (for ``executor.submit(ctx.run, run_with_deadline, s, fn)``)."""
    with deadline_scope(seconds):
        return fn()
