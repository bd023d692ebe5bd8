"""OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp server) via the official SDK.

Structured output uses ``response_format={"type": "json_schema", ...}``. Some compatible servers
(llama-cpp-python's) only accept ``{"type": "json_object", "schema": ...}``: in ``auto`` mode a
rejection of ``json_schema`` (400/422, or an error naming ``response_format``) switches this
provider to that form once and remembers it.
The SDK's own retries are off so ours (bounded, exponential, counted) are the only ones.
"""

from __future__ import annotations

from typing import Any, Literal

import openai

from src.llm.providers.base import ApiAdapter, TransientError
from src.llm.providers.local import parse_json_object
from src.llm.types import LLMInvalidOutput, LLMUnavailable, Usage

JsonMode = Literal["auto", "json_schema", "json_object"]


class _FormatRejected(LLMUnavailable):
    """The server refused the response_format (400/422): try the other structured-output form."""


class OpenAIProvider(ApiAdapter):
    name = "openai"
    tokens_in_attr = "prompt_tokens"
    tokens_out_attr = "completion_tokens"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        prices: dict[str, tuple[float, float]] | None = None,
        backoff_s: float = 0.5,
        json_mode: JsonMode = "auto",
    ) -> None:
        super().__init__(model, max_retries=max_retries, prices=prices, backoff_s=backoff_s)
        self.json_mode: JsonMode = json_mode
        # Local compatible servers need no key, but the SDK insists on one.
        self._client = openai.OpenAI(
            api_key=api_key or "no-key", base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def _create(self, *, probing_format: bool = False, **kwargs: Any) -> tuple[Any, float]:
        def once() -> Any:
            self.attempts += 1
            try:
                return self._client.chat.completions.create(model=self.model, temperature=0.0, **kwargs)
            except openai.APITimeoutError as exc:
                raise TransientError(f"openai timeout: {exc}", timeout=True) from exc
            except openai.APIConnectionError as exc:
                raise TransientError(f"openai connection error: {exc}") from exc
            except openai.APIStatusError as exc:
                # llama-cpp-python's server answers an unknown response_format with a 500 that names it.
                if probing_format and (
                    exc.status_code in (400, 422) or "response_format" in str(exc.message)
                ):
                    raise _FormatRejected(f"openai HTTP {exc.status_code}: {exc.message}") from exc
                if exc.status_code == 429 or exc.status_code >= 500:
                    raise TransientError(f"openai HTTP {exc.status_code}") from exc
                raise LLMUnavailable(f"openai HTTP {exc.status_code}: {exc.message}") from exc
            except openai.APIResponseValidationError as exc:
                raise LLMInvalidOutput(f"openai response did not match the API schema: {exc}") from exc
            except ValueError as exc:  # a 200 whose body is not JSON (broken proxy / server)
                raise LLMInvalidOutput(f"openai response body is not valid JSON: {exc}") from exc

        return self._timed(once)

    @staticmethod
    def _content(resp: Any) -> str:
        try:
            content = resp.choices[0].message.content
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMInvalidOutput(f"openai response has no message: {exc}") from exc
        if content is None:
            raise LLMInvalidOutput("openai response has empty content")
        return content

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]:
        json_schema = {
            "type": "json_schema",
            "json_schema": {"name": schema.get("title", "result"), "schema": schema, "strict": False},
        }
        json_object = {"type": "json_object", "schema": schema}
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if self.json_mode == "json_object":
            resp, latency = self._create(
                messages=messages, max_tokens=max_tokens, response_format=json_object
            )
        else:
            try:
                resp, latency = self._create(
                    messages=messages,
                    max_tokens=max_tokens,
                    response_format=json_schema,
                    probing_format=self.json_mode == "auto",
                )
            except _FormatRejected:
                self.json_mode = "json_object"
                resp, latency = self._create(
                    messages=messages, max_tokens=max_tokens, response_format=json_object
                )
        return parse_json_object(self._content(resp)), self._usage(resp, latency)

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]:
        resp, latency = self._create(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            max_tokens=max_tokens,
        )
        return self._content(resp), self._usage(resp, latency)
