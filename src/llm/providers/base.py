"""The one small provider protocol, plus the retry/cost helpers every adapter shares.

Adapters stay thin: they translate one request to one wire call and classify failures as
*transient* (timeouts, 429, 5xx, connection errors: retried with exponential backoff) or
*permanent* (bad key, bad request: raised at once). Callers only ever see ``LLMError`` subclasses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

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


class ApiAdapter:
    """What the HTTP adapters share: retry settings, the wire-call counter, timing and usage.

    Subclasses set ``name`` and the names of the token counters in their SDK's ``usage`` object.
    """

    name = "api"
    tokens_in_attr = "input_tokens"
    tokens_out_attr = "output_tokens"

    def __init__(
        self, model: str, *, max_retries: int, prices: dict[str, tuple[float, float]] | None, backoff_s: float
    ) -> None:
        self.model = model
        self.max_retries = max_retries
        self.prices = prices or {}
        self.backoff_s = backoff_s
        self.attempts = 0  # total wire calls made (retries included), for tests and logs

    def _timed(self, once: Callable[[], T]) -> tuple[T, float]:
        """``once`` with retries, and the seconds it took in all."""
        start = time.perf_counter()
        resp = with_retries(once, max_retries=self.max_retries, backoff_s=self.backoff_s)
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
