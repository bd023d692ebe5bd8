"""OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp server) via the official SDK.

Structured output uses ``response_format={"type": "json_schema", ...}``. Some compatible servers
(llama-cpp-python's) only accept ``{"type": "json_object", "schema": ...}``: in ``auto`` mode an
error that *names* the response format (``response_format`` / ``json_schema`` in the message) from a
server that is not OpenAI's switches this provider to that form once and remembers it. Any other
400/422 is the request's own fault and is raised; OpenAI itself is never downgraded.

Retries are the SDK's own (``max_retries``; they honour ``Retry-After``), under one overall
deadline (``deadline_s``, no longer than the graph step's timeout; see ``base.DeadlineTransport``).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlparse

import httpx2
import openai

from src.llm.providers.base import ApiAdapter, DeadlineReached
from src.llm.providers.local import parse_json_object
from src.llm.types import LLMInvalidOutput, LLMTimeout, LLMUnavailable, Usage

JsonMode = Literal["auto", "json_schema", "json_object"]
_FORMAT_WORDS = ("response_format", "json_schema")


class _Stop(DeadlineReached, openai.OpenAIError):
    """An OpenAIError, so the SDK raises it at once instead of retrying."""


class _FormatRejected(LLMUnavailable):
    """The server named the response_format in its error: try the other structured-output form."""


def is_openai_url(base_url: str | None) -> bool:
    """True for OpenAI's own API (the SDK's default when no base URL is given)."""
    if not base_url:
        return True
    host = (urlparse(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


def names_response_format(message: str) -> bool:
    low = message.lower()
    return any(word in low for word in _FORMAT_WORDS)


class OpenAIProvider(ApiAdapter):
    name = "openai"
    tokens_in_attr = "prompt_tokens"
    tokens_out_attr = "completion_tokens"
    stop_error = _Stop

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        prices: dict[str, tuple[float, float]] | None = None,
        json_mode: JsonMode = "auto",
        deadline_s: float | None = None,
    ) -> None:
        super().__init__(model, max_retries=max_retries, prices=prices, deadline_s=deadline_s)
        self.json_mode: JsonMode = json_mode
        # Only compatible servers get the json_object fallback: OpenAI supports json_schema.
        self.format_fallback = not is_openai_url(base_url)
        # Local compatible servers need no key, but the SDK insists on one.
        self._client = openai.OpenAI(
            api_key=api_key or "no-key",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=openai.DefaultHttpxClient(transport=self.transport(), timeout=timeout_s),
        )

    def not_transient(self, response: httpx2.Response) -> bool:
        # llama-cpp-python's server answers an unknown response_format with a 500 that names it.
        return names_response_format(response.text)

    def _create(self, *, probing_format: bool = False, **kwargs: Any) -> tuple[Any, float]:
        def once() -> Any:
            try:
                return self._client.chat.completions.create(model=self.model, temperature=0.0, **kwargs)
            except _Stop as exc:
                cls = LLMTimeout if exc.timeout else LLMUnavailable
                raise cls(f"openai: {exc}") from exc
            except openai.APITimeoutError as exc:
                raise LLMTimeout(f"openai timeout: {exc}") from exc
            except openai.APIConnectionError as exc:
                raise LLMUnavailable(f"openai connection error: {exc}") from exc
            except openai.APIStatusError as exc:
                if probing_format and names_response_format(str(exc.message)):
                    raise _FormatRejected(f"openai HTTP {exc.status_code}: {exc.message}") from exc
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
                    probing_format=self.json_mode == "auto" and self.format_fallback,
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
