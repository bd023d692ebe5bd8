"""Provider plumbing: retries/backoff, cost table, provider selection, PII masking wrapper, fake."""

from __future__ import annotations

import pytest

from src.config import Settings
from src.llm.providers import clear_provider_cache, get_provider, parse_spec
from src.llm.providers.base import LLMProvider, TransientError, cost_usd, with_retries
from src.llm.providers.fake import FakeProvider
from src.llm.providers.local import LocalProvider, parse_json_object
from src.llm.providers.masking import MaskingProvider
from src.llm.types import LLMInvalidOutput, LLMTimeout, LLMUnavailable


def test_retries_back_off_exponentially_then_type_the_failure() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        raise TransientError("503", timeout=False)

    with pytest.raises(LLMUnavailable) as info:
        with_retries(flaky, max_retries=3, backoff_s=0.5, sleep=sleeps.append)
    assert calls["n"] == 4 and info.value.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_retries_succeed_and_timeouts_become_llm_timeout() -> None:
    outcomes = iter([TransientError("t", timeout=True), "ok"])

    def once() -> str:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    assert with_retries(once, max_retries=1, sleep=lambda s: None) == "ok"
    with pytest.raises(LLMTimeout):
        with_retries(lambda: (_ for _ in ()).throw(TransientError("t", timeout=True)), max_retries=0)


def test_permanent_errors_are_not_retried() -> None:
    calls = {"n": 0}

    def bad() -> None:
        calls["n"] += 1
        raise LLMInvalidOutput("nope")

    with pytest.raises(LLMInvalidOutput):
        with_retries(bad, max_retries=5, sleep=lambda s: None)
    assert calls["n"] == 1


def test_cost_table() -> None:
    prices = {"claude-haiku-4-5": (1.0, 5.0), "gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6)}
    assert cost_usd("claude-haiku-4-5", 1_000_000, 0, prices) == 1.0
    assert cost_usd("claude-haiku-4-5-20251001", 0, 1_000_000, prices) == 5.0  # dated id -> prefix
    assert cost_usd("gpt-4o-mini-2024", 1_000_000, 1_000_000, prices) == pytest.approx(0.75)  # longest prefix
    assert cost_usd("smollm2", 10_000, 10_000, prices) == 0.0


def test_no_key_means_local_and_no_network() -> None:
    clear_provider_cache()
    settings = Settings(_env_file=None, anthropic_api_key=None, openai_api_key=None, openai_base_url=None)
    assert parse_spec(None, settings) == ("local", "smollm2")
    provider = get_provider(settings)
    assert isinstance(provider, LocalProvider) and provider.name == "local"
    assert get_provider(settings) is provider  # cached per process


def test_spec_and_keys_select_external_providers_masked_by_default() -> None:
    clear_provider_cache()
    settings = Settings(_env_file=None, anthropic_api_key="k", openai_api_key=None)
    anth = get_provider(settings)
    assert isinstance(anth, MaskingProvider) and (anth.name, anth.model) == ("anthropic", "claude-haiku-4-5")
    oai = get_provider(
        Settings(_env_file=None, openai_base_url="http://127.0.0.1:1/v1"), spec="openai:gpt-4o"
    )
    assert (oai.name, oai.model) == ("openai", "gpt-4o")
    unmasked = get_provider(Settings(_env_file=None, anthropic_api_key="k", mask_pii_external=False))
    assert not isinstance(unmasked, MaskingProvider)
    masked_local = get_provider(Settings(_env_file=None, mask_pii_local=True), spec="local")
    assert isinstance(masked_local, MaskingProvider)
    clear_provider_cache()


def test_provider_setup_errors_are_clear() -> None:
    clear_provider_cache()
    with pytest.raises(LLMUnavailable, match="ANTHROPIC_API_KEY"):
        get_provider(Settings(_env_file=None, anthropic_api_key=None), spec="anthropic")
    with pytest.raises(LLMUnavailable, match="fetch_models.py"):
        get_provider(Settings(_env_file=None, models_cache_dir="/nonexistent"), spec="local:qwen2.5-1.5b")
    with pytest.raises(ValueError, match="unknown LLM provider"):
        get_provider(Settings(_env_file=None), spec="gemini")


def test_masking_provider_sends_placeholders_and_restores_locally() -> None:
    fake = FakeProvider(
        json_responses=lambda system, user, schema: {"echo": user, "nested": ["[EMAIL_1]"]},
        text_responses="Dear [EMAIL_1], we called [PHONE_1].",
    )
    masked = MaskingProvider(fake)
    data, _ = masked.complete_json("sys", "mail bob@corp.io or +1 (555) 123-4567", {})
    assert "bob@corp.io" not in fake.calls[0]["user"] and "[EMAIL_1]" in fake.calls[0]["user"]
    assert data == {"echo": "mail bob@corp.io or +1 (555) 123-4567", "nested": ["bob@corp.io"]}
    text, _ = masked.complete_text("sys", "bob@corp.io, +1 (555) 123-4567")
    assert text == "Dear bob@corp.io, we called +1 (555) 123-4567."


def test_fake_provider_scripts_and_failures() -> None:
    fake = FakeProvider(json_responses=['{"a": 1}', "not json", {"b": 2}])
    assert isinstance(fake, LLMProvider)
    assert fake.complete_json("s", "u", {})[0] == {"a": 1}
    with pytest.raises(LLMInvalidOutput):
        fake.complete_json("s", "u", {})
    assert fake.complete_json("s", "u", {})[0] == {"b": 2}
    assert fake.complete_json("s", "u", {})[0] == {"b": 2}  # last repeats
    down = FakeProvider(fail_with=LLMTimeout("down"))
    with pytest.raises(LLMTimeout):
        down.complete_text("s", "u")


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"a": 1}', {"a": 1}), ('```json\n{"a": 1}\n```', {"a": 1}), ("  {}  ", {})],
)
def test_parse_json_object(text: str, expected: dict) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ["", "[1, 2]", '{"a": ', "Sure! Here is the JSON"])
def test_parse_json_object_rejects(text: str) -> None:
    with pytest.raises(LLMInvalidOutput):
        parse_json_object(text)
