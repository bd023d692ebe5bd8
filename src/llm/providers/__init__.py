"""Pick the configured provider (cached per process).

``spec`` is ``kind[:model]``: ``local``, ``local:qwen2.5-1.5b``, ``local:/path/m.gguf``,
``openai:gpt-4o-mini``, ``anthropic:claude-haiku-4-5``. Without a spec the kind comes from
``Settings.resolved_llm_provider()``: no API key configured means ``local`` (no network call).
PII masking wraps external providers by default (``mask_pii_external``) and local ones on request
(``mask_pii_local``).
"""

from __future__ import annotations

import threading

from src.config import Settings, get_settings
from src.llm.models import local_model_file
from src.llm.providers.base import LLMProvider
from src.llm.providers.masking import MaskingProvider
from src.llm.types import LLMUnavailable

DEFAULT_MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini"}
KINDS = ("local", "anthropic", "openai")

_cache: dict[tuple, LLMProvider] = {}
_lock = threading.Lock()

__all__ = ["LLMProvider", "get_provider", "parse_spec", "clear_provider_cache"]


def parse_spec(spec: str | None, settings: Settings) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; missing parts come from settings."""
    kind, _, model = (spec or "").partition(":")
    kind = kind.strip() or settings.resolved_llm_provider()
    if kind not in KINDS:
        raise ValueError(f"unknown LLM provider {kind!r}; choose one of {', '.join(KINDS)}")
    model = model.strip()
    if not model:
        if kind == "local":
            model = str(settings.local_model_path) if settings.local_model_path else settings.local_model
        else:
            model = settings.llm_model or DEFAULT_MODELS[kind]
    return kind, model


def _build(kind: str, model: str, settings: Settings) -> LLMProvider:
    provider: LLMProvider
    if kind == "local":
        from src.llm.providers.local import LocalProvider

        try:
            path = local_model_file(model, settings)
        except FileNotFoundError as exc:
            raise LLMUnavailable(str(exc)) from exc
        name = model if "/" not in model and not model.endswith(".gguf") else path.stem
        provider = LocalProvider(
            path,
            model=name,
            n_ctx=settings.llm_context,
            n_threads=settings.llm_threads,
            prompt_cache_mb=settings.llm_prompt_cache_mb,
            timeout_s=settings.node_timeout_s,  # a local call never outlives a graph step
        )
        return MaskingProvider(provider) if settings.mask_pii_local else provider
    if kind == "anthropic":
        from src.llm.providers.anthropic_provider import AnthropicProvider

        if settings.anthropic_api_key is None:
            raise LLMUnavailable("anthropic provider selected but ANTHROPIC_API_KEY is not set")
        provider = AnthropicProvider(
            model,
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            prices=settings.llm_prices,
            deadline_s=settings.node_timeout_s,
        )
    else:
        from src.llm.providers.openai_compat import OpenAIProvider

        if settings.openai_api_key is None and not settings.openai_base_url:
            raise LLMUnavailable("openai provider selected but neither OPENAI_API_KEY nor a base URL is set")
        provider = OpenAIProvider(
            model,
            api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
            base_url=settings.openai_base_url,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            prices=settings.llm_prices,
            deadline_s=settings.node_timeout_s,
        )
    return MaskingProvider(provider) if settings.mask_pii_external else provider


def get_provider(settings: Settings | None = None, spec: str | None = None) -> LLMProvider:
    """The provider for ``spec`` (or the settings), built once per process per configuration.

    Raises ``LLMUnavailable`` with the fix when the provider cannot be set up (model not installed,
    key missing), ``ValueError`` for an unknown kind.
    """
    settings = settings or get_settings()
    kind, model = parse_spec(spec, settings)
    key = (
        kind,
        model,
        settings.anthropic_base_url if kind == "anthropic" else settings.openai_base_url,
        settings.llm_timeout_s,
        settings.llm_max_retries,
        settings.mask_pii_external if kind != "local" else settings.mask_pii_local,
        settings.llm_threads,
        settings.llm_context,
        settings.llm_prompt_cache_mb,
        settings.node_timeout_s,
        str(settings.models_cache_dir),
    )
    with _lock:
        if key not in _cache:
            _cache[key] = _build(kind, model, settings)
        return _cache[key]


def clear_provider_cache() -> None:
    """Forget built providers (tests that change settings)."""
    with _lock:
        _cache.clear()
