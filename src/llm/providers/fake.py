"""A scripted provider for everyone's unit tests: no model, no network, fully deterministic."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from src.llm.types import LLMError, LLMInvalidOutput, Usage

JsonScript = dict | str | Exception | Callable[[str, str, dict], Any]


class FakeProvider:
    """Returns scripted responses in order (the last one repeats) and records every call.

    ``json_responses`` items may be a dict (returned), a str (parsed; unparsable -> LLMInvalidOutput,
    like the real adapters), an exception (raised) or a callable ``(system, user, schema) -> item``.
    ``fail_with`` makes every call raise that LLMError (a provider that is down).
    """

    name = "fake"

    def __init__(
        self,
        json_responses: JsonScript | Sequence[JsonScript] | None = None,
        text_responses: str | Exception | Sequence[str | Exception] | None = None,
        fail_with: LLMError | None = None,
        model: str = "fake-model",
    ) -> None:
        self.model = model
        self._json = self._as_list(json_responses)
        self._text = self._as_list(text_responses)
        self.fail_with = fail_with
        self.calls: list[dict[str, Any]] = []

    @staticmethod
    def _as_list(value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return list(value)
        return [value]

    def _next(self, script: list[Any], kind: str) -> Any:
        if not script:
            raise AssertionError(f"FakeProvider has no scripted {kind} response")
        n = sum(1 for c in self.calls if c["kind"] == kind) - 1
        return script[min(n, len(script) - 1)]

    def _usage(self, system: str, user: str, out: str) -> Usage:
        return Usage(
            provider=self.name,
            model=self.model,
            tokens_in=(len(system) + len(user)) // 4,
            tokens_out=len(out) // 4,
        )

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]:
        self.calls.append({"kind": "json", "system": system, "user": user, "schema": schema})
        if self.fail_with is not None:
            raise self.fail_with
        item = self._next(self._json, "json")
        if callable(item) and not isinstance(item, Exception):
            item = item(system, user, schema)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, str):
            try:
                item = json.loads(item)
            except json.JSONDecodeError as exc:
                raise LLMInvalidOutput(f"fake provider returned non-JSON: {exc}") from exc
            if not isinstance(item, dict):
                raise LLMInvalidOutput("fake provider returned JSON that is not an object")
        return dict(item), self._usage(system, user, json.dumps(item))

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]:
        self.calls.append({"kind": "text", "system": system, "user": user})
        if self.fail_with is not None:
            raise self.fail_with
        item = self._next(self._text, "text")
        if isinstance(item, Exception):
            raise item
        return str(item), self._usage(system, user, str(item))
