"""PII masking inside the provider path, so nothing unmasked leaves the box.

The wrapper masks the user message (ticket text and evidence; system prompts are ours) before
the inner provider sees it, and restores placeholders in what comes back, locally.
"""

from __future__ import annotations

from typing import Any

from src.llm.providers.base import LLMProvider
from src.llm.types import Usage
from src.text.pii import mask_pii, unmask


def _unmask_values(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, str):
        return unmask(value, mapping)
    if isinstance(value, list):
        return [_unmask_values(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _unmask_values(v, mapping) for k, v in value.items()}
    return value


class MaskingProvider:
    """Wraps any provider; ``last_masked`` keeps what was actually sent (for audits and tests)."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.last_masked: str | None = None

    def complete_json(
        self, system: str, user: str, schema: dict, *, max_tokens: int = 512
    ) -> tuple[dict, Usage]:
        masked = mask_pii(user)
        self.last_masked = masked.text
        data, usage = self.inner.complete_json(system, masked.text, schema, max_tokens=max_tokens)
        return _unmask_values(data, masked.mapping), usage

    def complete_text(self, system: str, user: str, *, max_tokens: int = 512) -> tuple[str, Usage]:
        masked = mask_pii(user)
        self.last_masked = masked.text
        text, usage = self.inner.complete_text(system, masked.text, max_tokens=max_tokens)
        return unmask(text, masked.mapping), usage
