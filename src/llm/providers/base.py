"""The one small provider protocol, plus the retry/cost helpers every adapter shares.

Adapters stay thin: they translate one request to one SDK call. The SDKs retry transient failures
(timeouts, connection errors, 408/409/429/5xx) themselves and honour ``Retry-After``;
:class:`DeadlineTransport` keeps those retries under one overall deadline. Callers only ever see
``LLMError`` subclasses. (``with_retries`` is a generic helper for callers without an SDK.)
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx2  # the HTTP layer of the official openai and anthropic SDKs

from src.llm.deadline import deadline_scope, remaining
from src.llm.types import LLMError, LLMTimeout, LLMUnavailable, Usage

T = TypeVar("T")


@runtime_checkable
class LLMProvider(Protocol):
    """What ``analyze`` and ``draft`` need from any model: JSON under a schema, or plain text."""

    name: str
    model: str

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]: ...

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]: ...


class TransientError(Exception):
    """Raised by an adapter for failures worth retrying; ``timeout`` picks the final error type."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


def cost_usd(model: str, tokens_in: int, tokens_out: int, prices: dict[str, tuple[float, float]]) -> float:
    """USD for one call from a per-1M-token price table; unknown (incl. local) models cost 0.

    Dated model ids (``claude-haiku-4-5-20251001``) are priced by their longest matching prefix.
    """
    price = prices.get(model)
    if price is None:
        matches = [k for k in prices if model.startswith(k)]
        price = prices[max(matches, key=len)] if matches else (0.0, 0.0)
    return round((tokens_in * price[0] + tokens_out * price[1]) / 1_000_000, 8)


def with_retries(
    call: Callable[[], T],
    *,
    max_retries: int,
    backoff_s: float = 0.5,
    max_backoff_s: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
    on_attempt: Callable[[int], None] | None = None,
) -> T:
    """Run ``call``; retry ``TransientError`` up to ``max_retries`` times with exponential backoff.

    Any ``LLMError`` passes straight through (not transient). After the last attempt the
    transient failure becomes ``LLMTimeout`` or ``LLMUnavailable`` carrying the attempt count.
    """
    attempt = 0
    while True:
        attempt += 1
        if on_attempt is not None:
            on_attempt(attempt)
        try:
            return call()
        except TransientError as exc:
            if attempt > max_retries:
                cls = LLMTimeout if exc.timeout else LLMUnavailable
                err = cls(f"{exc} (after {attempt} attempts)")
                err.attempts = attempt
                raise err from exc
            sleep(min(max_backoff_s, backoff_s * 2 ** (attempt - 1)))
        except LLMError as exc:
            exc.attempts = attempt
            raise


# What the official SDKs (openai, anthropic) do between attempts: exponential backoff from 0.5 s,
# capped at 8 s, unless the server's Retry-After (up to 60 s) says otherwise.
SDK_INITIAL_RETRY_DELAY_S = 0.5
SDK_MAX_RETRY_DELAY_S = 8.0
SDK_MAX_RETRY_AFTER_S = 60.0
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_MARGIN_S = 0.05  # an attempt needs at least this long to be worth starting


class DeadlineReached(Exception):
    """Raised inside the SDK (as an SDK error type, so it is not retried) when the deadline is spent."""

    def __init__(self, message: str, *, timeout: bool = True) -> None:
        super().__init__(message)
        self.timeout = timeout


def retry_after_s(headers: Any) -> float | None:
    """The server's requested wait (``retry-after-ms``, ``retry-after`` seconds or HTTP date), if sane."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            wait = float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            wait = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    return wait if 0 < wait <= SDK_MAX_RETRY_AFTER_S else None


class DeadlineTransport(httpx2.HTTPTransport):
    """The SDK's HTTP transport, made to respect one overall deadline (``src/llm/deadline.py``).

    The SDKs retry by themselves (honouring ``Retry-After``); this layer only (1) counts wire calls,
    (2) clamps each attempt's timeouts to the time left, (3) tells the SDK not to retry
    (``x-should-retry: false``, a header both SDKs obey) when the wait before the next attempt would
    overrun the deadline or when the error is not transient (``adapter.not_transient``), and (4) stops
    instead of a retry after a failed attempt when no time is left for the SDK's backoff.
    """

    def __init__(self, adapter: ApiAdapter) -> None:
        super().__init__()
        self.adapter = adapter

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        adapter = self.adapter
        left = remaining()
        if left is not None and left <= _MARGIN_S:
            raise adapter.stop_error(f"{adapter.name}: overall deadline spent before attempt", timeout=True)
        adapter.attempts += 1
        if left is not None:
            limits = dict(request.extensions.get("timeout") or {})
            request.extensions["timeout"] = {
                k: left if limits.get(k) is None else min(float(limits[k]), left)
                for k in ("connect", "read", "write", "pool")
            }
        retry = int(request.headers.get("x-stainless-retry-count") or 0)
        backoff = min(SDK_INITIAL_RETRY_DELAY_S * 2**retry, SDK_MAX_RETRY_DELAY_S)
        try:
            response = super().handle_request(request)
        except httpx2.TransportError as exc:
            after = remaining()
            if after is not None and after < backoff + _MARGIN_S:
                timeout = isinstance(exc, httpx2.TimeoutException)
                message = f"{adapter.name}: {exc!r}; no time left to retry"
                raise adapter.stop_error(message, timeout=timeout) from exc
            raise
        if response.status_code >= 400:
            response.read()
            if adapter.not_transient(response):
                response.headers["x-should-retry"] = "false"
            elif response.status_code in _RETRYABLE_STATUS or response.status_code >= 500:
                after = remaining()
                wait = retry_after_s(response.headers) or backoff
                if after is not None and after - wait < _MARGIN_S:
                    response.headers["x-should-retry"] = "false"
        return response


class ApiAdapter:
    """What the HTTP adapters share: the SDK's retries under one deadline, the wire-call count, usage.

    Subclasses set ``name``, the names of the token counters in their SDK's ``usage`` object, and
    ``stop_error`` (a :class:`DeadlineReached` that is also an SDK error, so the SDK does not retry it).
    """

    name = "api"
    tokens_in_attr = "input_tokens"
    tokens_out_attr = "output_tokens"
    stop_error: type[DeadlineReached] = DeadlineReached

    def __init__(
        self,
        model: str,
        *,
        max_retries: int,
        prices: dict[str, tuple[float, float]] | None,
        deadline_s: float | None = None,
    ) -> None:
        self.model = model
        self.max_retries = max_retries  # handed to the SDK, which retries timeouts, 408/409/429/5xx
        self.prices = prices or {}
        self.deadline_s = deadline_s  # one call, retries and waits included (<= Settings.node_timeout_s)
        self.attempts = 0  # total wire calls made (retries included), for tests and logs

    def transport(self) -> DeadlineTransport:
        return DeadlineTransport(self)

    def not_transient(self, response: httpx2.Response) -> bool:
        """An error response the SDK must not retry (adapters override)."""
        return False

    def _timed(self, once: Callable[[], T]) -> tuple[T, float]:
        """``once`` (one SDK call, its own retries included) under the deadline, and the seconds it took."""
        start = time.perf_counter()
        first = self.attempts
        with deadline_scope(self.deadline_s):
            try:
                resp = once()
            except LLMError as exc:
                exc.attempts = max(1, self.attempts - first)
                raise
        return resp, time.perf_counter() - start

    def _usage(self, resp: Any, latency: float) -> Usage:
        u = getattr(resp, "usage", None)
        tin = int(getattr(u, self.tokens_in_attr, 0) or 0)
        tout = int(getattr(u, self.tokens_out_attr, 0) or 0)
        return Usage(
            provider=self.name,
            model=self.model,
            tokens_in=tin,
            tokens_out=tout,
            latency_s=round(latency, 4),
            cost_usd=cost_usd(self.model, tin, tout, self.prices),
        )
