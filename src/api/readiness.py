"""Readiness checks for ``/readyz``: each dependency answers within a deadline or is reported down.

Checked: the database (intake + audit), the triage service (classifier bundle loaded), the
checkpointer, Qdrant (the knowledge base answers a count), the LLM provider being configured, and
the broker when one is set. A check never raises; it returns ``(ok, detail)``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from src.api.runtime import Runtime

CHECK_TIMEOUT_S = 3.0
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="triage-readyz")


def _timed(fn: Callable[[], str]) -> tuple[bool, str]:
    future = _pool.submit(fn)
    try:
        return True, future.result(timeout=CHECK_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT_S:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure is "down, because ..."
        return False, f"{type(exc).__name__}: {str(exc)[:200]}"


def check_all(rt: Runtime) -> dict[str, dict[str, Any]]:
    checks: dict[str, Callable[[], str]] = {"database": lambda: (rt.db.ping(), rt.db.description)[1]}
    service: Any = None
    try:
        service = rt.service()
    except Exception as exc:  # noqa: BLE001
        results = {name: _result(*_timed(fn)) for name, fn in checks.items()}
        results["bundle"] = _result(
            False, f"triage service not started: {type(exc).__name__}: {str(exc)[:200]}"
        )
        return results

    def bundle() -> str:
        clf = service.deps.classifier
        if clf is None:
            raise RuntimeError("no classifier bundle loaded")
        return f"version {getattr(clf, 'version', '?')}, {len(getattr(clf, 'labels', []))} intents"

    def checkpointer() -> str:
        service.checkpointer.get_tuple({"configurable": {"thread_id": "__readyz__", "checkpoint_ns": ""}})
        return type(service.checkpointer).__name__

    def qdrant() -> str:
        kb = service.deps.knowledge_base
        if kb is None:
            raise RuntimeError("knowledge base not configured/available")
        count = kb.count() if hasattr(kb, "count") else None
        return f"{count} resolved tickets" if count is not None else "reachable"

    def llm() -> str:
        if not rt.settings.service_llm:
            return "off (classifier-only fast path)"
        if service.deps.provider is None:
            raise RuntimeError("no LLM provider available (see startup notes)")
        return type(service.deps.provider).__name__

    checks.update({"bundle": bundle, "checkpointer": checkpointer, "qdrant": qdrant, "llm": llm})
    queue = rt.queue
    if queue is not None and hasattr(queue, "ping"):
        checks["broker"] = lambda: (queue.ping(), "reachable")[1]
    return {name: _result(*_timed(fn)) for name, fn in checks.items()}


def _result(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": ok, "detail": detail}
