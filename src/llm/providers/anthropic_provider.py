"""Claude through the official SDK; structured output via a forced tool call.

The tool's ``input_schema`` is the JSON schema we want; the tool_use block's ``input`` is the
result. Retries are the SDK's own (``max_retries``; they honour ``Retry-After``), under one overall
deadline (``deadline_s``; see ``base.DeadlineTransport``).

No ``temperature``: the SDK (2.x) speaks API version 2026-10-21, which removed the sampling
parameters (``temperature``/``top_p``/``top_k`` are rejected with HTTP 400 even at their defaults) and
the SDK no longer accepts them. Claude's answers are therefore not pinned to greedy decoding; the
graph never relies on that (every answer is validated and the rules decide the floor).
"""

from __future__ import annotations

from typing import Any

import anthropic

from src.llm.providers.base import ApiAdapter, DeadlineReached
from src.llm.types import LLMInvalidOutput, LLMTimeout, LLMUnavailable, Usage

TOOL_NAME = "record_result"


class _Stop(DeadlineReached, anthropic.AnthropicError):
    """An AnthropicError that is not a connection/status error, so the SDK does not retry it."""


class AnthropicProvider(ApiAdapter):
    name = "anthropic"
    stop_error = _Stop

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        prices: dict[str, tuple[float, float]] | None = None,
        deadline_s: float | None = None,
    ) -> None:
        super().__init__(model, max_retries=max_retries, prices=prices, deadline_s=deadline_s)
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=anthropic.DefaultHttpxClient(transport=self.transport(), timeout=timeout_s),
        )

    def _create(self, **kwargs: Any) -> tuple[Any, float]:
        def once() -> Any:
            try:
                return self._client.messages.create(model=self.model, **kwargs)
            except _Stop as exc:
                cls = LLMTimeout if exc.timeout else LLMUnavailable
                raise cls(f"anthropic: {exc}") from exc
            except anthropic.APITimeoutError as exc:
                raise LLMTimeout(f"anthropic timeout: {exc}") from exc
            except anthropic.APIConnectionError as exc:
                raise LLMUnavailable(f"anthropic connection error: {exc}") from exc
            except anthropic.APIStatusError as exc:
                raise LLMUnavailable(f"anthropic HTTP {exc.status_code}: {exc.message}") from exc
            except anthropic.APIResponseValidationError as exc:
                raise LLMInvalidOutput(f"anthropic response did not match the API schema: {exc}") from exc
            except ValueError as exc:  # a 200 whose body is not JSON (broken proxy / server)
                raise LLMInvalidOutput(f"anthropic response body is not valid JSON: {exc}") from exc

        return self._timed(once)

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]:
        resp, latency = self._create(
            max_tokens=max_tokens,
            system=system,
            messages=[{"role": "user", "content": user}],
            tools=[{"name": TOOL_NAME, "description": "Record the result.", "input_schema": schema}],
            tool_choice={"type": "tool", "name": TOOL_NAME},
        )
        for block in getattr(resp, "content", None) or []:
            if getattr(block, "type", None) == "tool_use":
                data = block.input
                if not isinstance(data, dict):
                    raise LLMInvalidOutput("anthropic tool_use input is not an object")
                return dict(data), self._usage(resp, latency)
        raise LLMInvalidOutput("anthropic response has no tool_use block")

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]:
        resp, latency = self._create(
            max_tokens=max_tokens, system=system, messages=[{"role": "user", "content": user}]
        )
        parts = [b.text for b in getattr(resp, "content", None) or [] if getattr(b, "type", None) == "text"]
        if not parts:
            raise LLMInvalidOutput("anthropic response has no text block")
        return "".join(parts), self._usage(resp, latency)
