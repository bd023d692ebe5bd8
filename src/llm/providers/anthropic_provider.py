"""Claude through the official SDK; structured output via a forced tool call.

The tool's ``input_schema`` is the JSON schema we want; the tool_use block's ``input`` is the
result. SDK retries are off so ours are the only ones (bounded, exponential, counted).
"""

from __future__ import annotations

from typing import Any

import anthropic

from src.llm.providers.base import ApiAdapter, TransientError
from src.llm.types import LLMInvalidOutput, LLMUnavailable, Usage

TOOL_NAME = "record_result"


class AnthropicProvider(ApiAdapter):
    name = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        prices: dict[str, tuple[float, float]] | None = None,
        backoff_s: float = 0.5,
    ) -> None:
        super().__init__(model, max_retries=max_retries, prices=prices, backoff_s=backoff_s)
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def _create(self, **kwargs: Any) -> tuple[Any, float]:
        def once() -> Any:
            self.attempts += 1
            try:
                return self._client.messages.create(model=self.model, **kwargs)
            except anthropic.APITimeoutError as exc:
                raise TransientError(f"anthropic timeout: {exc}", timeout=True) from exc
            except anthropic.APIConnectionError as exc:
                raise TransientError(f"anthropic connection error: {exc}") from exc
            except anthropic.APIStatusError as exc:
                if exc.status_code == 429 or exc.status_code >= 500:
                    raise TransientError(f"anthropic HTTP {exc.status_code}") from exc
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
