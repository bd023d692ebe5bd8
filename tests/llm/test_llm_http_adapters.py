"""Anthropic and OpenAI adapters over real HTTP against a local server speaking their wire formats.

Success paths (structured output, usage, cost), failure paths (timeout, 500, 401, malformed
output) -> typed LLMError with the retries counted, and PII masking on the wire.
"""

from __future__ import annotations

import time

import pytest
from llm_wire import Reply, ScriptedServer, anthropic_text_reply, anthropic_tool_reply, openai_reply

from src.config import Settings
from src.llm.analyze import analyze
from src.llm.providers import clear_provider_cache, get_provider
from src.llm.providers.anthropic_provider import AnthropicProvider
from src.llm.providers.masking import MaskingProvider
from src.llm.providers.openai_compat import OpenAIProvider
from src.llm.types import LLMInvalidOutput, LLMTimeout, LLMUnavailable

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
FAST = {"retry-after-ms": "20"}  # the SDKs honour it: keeps the retry tests fast
PRICES = {"claude-haiku-4-5": (1.0, 5.0), "gpt-4o-mini": (0.15, 0.6)}
ANALYSIS = {
    "language": "en",
    "summary": "Customer threatens legal action over a late order.",
    "sentiment": "angry",
    "priority": "P2",
    "escalation_risk": True,
    "reason": "legal threat",
    "legal_threat": True,
    "health_safety": False,
    "security_account_takeover": False,
    "churn": False,
}


def _anthropic(server: ScriptedServer, **kw: object) -> AnthropicProvider:
    opts = {"timeout_s": 5.0, "max_retries": 2, "prices": PRICES, **kw}
    return AnthropicProvider("claude-haiku-4-5", api_key="test-key", base_url=server.url, **opts)


def _openai(server: ScriptedServer, **kw: object) -> OpenAIProvider:
    opts = {"timeout_s": 5.0, "max_retries": 2, "prices": PRICES, **kw}
    return OpenAIProvider("gpt-4o-mini", api_key="test-key", base_url=server.url + "/v1", **opts)


# --- Anthropic -------------------------------------------------------------------------------


def test_anthropic_tool_use_structured_output(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=anthropic_tool_reply({"answer": "42"}, tokens=(1000, 200)))]
    data, usage = _anthropic(scripted_server).complete_json("sys", "question", SCHEMA, max_tokens=50)
    assert data == {"answer": "42"}
    assert (usage.provider, usage.model, usage.tokens_in, usage.tokens_out) == (
        "anthropic",
        "claude-haiku-4-5",
        1000,
        200,
    )
    assert usage.cost_usd == pytest.approx((1000 * 1.0 + 200 * 5.0) / 1e6)
    assert usage.latency_s > 0
    req = scripted_server.requests[0]
    assert req["path"] == "/v1/messages"
    assert req["body"]["tool_choice"] == {"type": "tool", "name": "record_result"}
    assert req["body"]["tools"][0]["input_schema"] == SCHEMA
    assert req["body"]["system"] == "sys"
    assert "test-key" in (req["headers"].get("x-api-key", "") + req["headers"].get("authorization", "")), req[
        "headers"
    ]


def test_anthropic_text(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=anthropic_text_reply("Hello there"))]
    text, usage = _anthropic(scripted_server).complete_text("sys", "hi")
    assert text == "Hello there"
    assert "tools" not in scripted_server.requests[0]["body"]


def test_anthropic_500_retried_then_succeeds(scripted_server: ScriptedServer) -> None:
    err = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    scripted_server.replies = [
        Reply(500, err, headers=FAST),
        Reply(529, err, headers=FAST),
        Reply(body=anthropic_tool_reply({"answer": "ok"})),
    ]
    provider = _anthropic(scripted_server)
    data, _ = provider.complete_json("sys", "q", SCHEMA)
    assert data == {"answer": "ok"}
    assert provider.attempts == 3 and len(scripted_server.requests) == 3


def test_anthropic_500_exhausts_retries(scripted_server: ScriptedServer) -> None:
    err = {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    scripted_server.replies = [Reply(500, err, headers=FAST)]
    with pytest.raises(LLMUnavailable) as info:
        _anthropic(scripted_server, max_retries=2).complete_json("sys", "q", SCHEMA)
    assert info.value.attempts == 3
    assert len(scripted_server.requests) == 3


def test_anthropic_timeout(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=anthropic_tool_reply({"answer": "late"}), delay_s=1.5)]
    with pytest.raises(LLMTimeout) as info:
        _anthropic(scripted_server, timeout_s=0.3, max_retries=1).complete_json("sys", "q", SCHEMA)
    assert info.value.attempts == 2
    assert info.value.kind == "timeout"


def test_anthropic_auth_error_not_retried(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [
        Reply(401, {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
    ]
    with pytest.raises(LLMUnavailable):
        _anthropic(scripted_server).complete_json("sys", "q", SCHEMA)
    assert len(scripted_server.requests) == 1


def test_anthropic_missing_tool_use_is_invalid_output(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=anthropic_text_reply("I refuse to use tools"))]
    with pytest.raises(LLMInvalidOutput):
        _anthropic(scripted_server).complete_json("sys", "q", SCHEMA)


def test_anthropic_malformed_body_is_typed_failure(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body='{"id": "msg", "content": [ {broken')]
    with pytest.raises((LLMInvalidOutput, LLMUnavailable)):
        _anthropic(scripted_server, max_retries=0).complete_json("sys", "q", SCHEMA)


def test_get_provider_masks_pii_before_anthropic(scripted_server: ScriptedServer) -> None:
    """Through get_provider with a key: analyze() goes out masked, comes back whole."""
    clear_provider_cache()
    settings = Settings(anthropic_api_key="k", anthropic_base_url=scripted_server.url, llm_max_retries=0)
    provider = get_provider(settings)
    assert isinstance(provider, MaskingProvider) and provider.name == "anthropic"
    reply = dict(ANALYSIS, reason="Customer [EMAIL_1] mentions a lawyer.")  # the answer's text field
    scripted_server.replies = [Reply(body=anthropic_tool_reply(reply))]
    ticket = "I'm jane@example.com, card 4111 1111 1111 1111. My lawyer will call you about my late order."
    result = analyze(ticket, provider)
    sent = str(scripted_server.requests[0]["body"])
    assert "jane@example.com" not in sent and "4111" not in sent
    assert "[EMAIL_1]" in sent and "[CARD_1]" in sent
    assert result.reason.startswith("Customer jane@example.com mentions a lawyer.")
    assert result.reliable and result.sensitive.legal_threat
    clear_provider_cache()


# --- OpenAI-compatible -----------------------------------------------------------------------


def test_openai_json_schema_structured_output(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=openai_reply('{"answer": "42"}', tokens=(1000, 100)))]
    data, usage = _openai(scripted_server).complete_json("sys", "q", SCHEMA, max_tokens=40)
    assert data == {"answer": "42"}
    assert usage.cost_usd == pytest.approx((1000 * 0.15 + 100 * 0.6) / 1e6)
    body = scripted_server.requests[0]["body"]
    assert scripted_server.requests[0]["path"] == "/v1/chat/completions"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["messages"][0] == {"role": "system", "content": "sys"}


def test_openai_falls_back_to_json_object_when_schema_format_rejected(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.replies = [
        Reply(422, {"error": {"message": "response_format.type: unsupported"}}),
        Reply(body=openai_reply('{"answer": "ok"}')),
        Reply(body=openai_reply('{"answer": "again"}')),
    ]
    provider = _openai(scripted_server)
    assert provider.complete_json("sys", "q", SCHEMA)[0] == {"answer": "ok"}
    assert provider.complete_json("sys", "q", SCHEMA)[0] == {"answer": "again"}
    formats = [r["body"]["response_format"]["type"] for r in scripted_server.requests]
    assert formats == ["json_schema", "json_object", "json_object"]  # remembered after one rejection


def test_openai_malformed_json_content_is_invalid_output(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=openai_reply('{"answer": "unterminated'))]
    with pytest.raises(LLMInvalidOutput):
        _openai(scripted_server).complete_json("sys", "q", SCHEMA)
    assert len(scripted_server.requests) == 1  # invalid output is not a transient error


def test_openai_500_and_429_retried_with_count(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [
        Reply(429, {"error": {"message": "slow down"}}, headers=FAST),
        Reply(500, {"error": {}}, headers=FAST),
    ]
    with pytest.raises(LLMUnavailable) as info:
        _openai(scripted_server, max_retries=3).complete_json("sys", "q", SCHEMA)
    assert info.value.attempts == 4 and len(scripted_server.requests) == 4


def test_openai_timeout(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(body=openai_reply("{}"), delay_s=1.5)]
    with pytest.raises(LLMTimeout) as info:
        _openai(scripted_server, timeout_s=0.3, max_retries=0).complete_json("sys", "q", SCHEMA)
    assert info.value.attempts == 1


def test_openai_connection_refused_is_unavailable() -> None:
    provider = OpenAIProvider(
        "m", base_url="http://127.0.0.1:9/v1", timeout_s=1, max_retries=1
    )
    with pytest.raises(LLMUnavailable) as info:
        provider.complete_text("sys", "hi")
    assert info.value.attempts == 2


def test_get_provider_masks_pii_before_openai_compatible_server(scripted_server: ScriptedServer) -> None:
    """The external adapter masks raw ticket text itself (not only text the graph masked before)."""
    from src.llm.draft import draft
    from src.llm.types import Analysis
    from src.retrieval.types import Hit, ResolvedTicket

    clear_provider_cache()
    settings = Settings(llm_provider="openai", openai_base_url=scripted_server.url + "/v1", llm_max_retries=0)
    provider = get_provider(settings)
    assert isinstance(provider, MaskingProvider) and provider.name == "openai"
    reply = '{"evidence_ids": ["kb-1"], "reply": "Hello [PERSON_1], you can cancel it on the Orders page."}'
    scripted_server.replies = [Reply(body=openai_reply(reply))]
    ticket = ("my name is jane doe, born 02/03/1991, phone 07700900123, iban gb82west12345698765432, "
              "I live at 12 baker street. Please cancel my order.")
    resolved = ResolvedTicket(id="kb-1", text="cancel my order", response="Cancel it on the Orders page.")
    hit = Hit(id="kb-1", score=0.9, similarity=0.9, ticket=resolved)
    result = draft(ticket, Analysis(language="en"), [hit], provider)
    sent = str(scripted_server.requests[0]["body"]).lower()
    for secret in ("jane", "doe", "02/03/1991", "07700900123", "gb82west", "baker"):
        assert secret not in sent, secret
    assert "[person_1]" in sent and "[iban_1]" in sent
    assert result.text.startswith("Hello jane doe,")  # restored locally
    clear_provider_cache()


# --- issue #10 item 19: format fallback only when named and not OpenAI, SDK retries, one deadline ------

OK = openai_reply('{"answer": "ok"}')


def _formats(server: ScriptedServer) -> list[str]:
    return [r["body"].get("response_format", {}).get("type") for r in server.requests]


def test_openai_auto_mode_keeps_json_schema_after_an_unrelated_400(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(400, {"error": {"message": "max_tokens is too large"}}), Reply(body=OK)]
    provider = _openai(scripted_server)
    with pytest.raises(LLMUnavailable):
        provider.complete_json("sys", "q", SCHEMA)
    assert provider.complete_json("sys", "q", SCHEMA)[0] == {"answer": "ok"}
    assert _formats(scripted_server) == ["json_schema", "json_schema"] and provider.json_mode == "auto"


def test_openai_switches_on_a_500_naming_response_format_without_retrying_it(
    scripted_server: ScriptedServer,
) -> None:
    """llama-cpp-python's server answers json_schema with a 500 that names it: not transient."""
    scripted_server.replies = [
        Reply(500, {"error": {"message": "Unsupported response_format type: json_schema"}}),
        Reply(body=OK),
    ]
    provider = _openai(scripted_server, max_retries=3)
    assert provider.complete_json("sys", "q", SCHEMA)[0] == {"answer": "ok"}
    assert _formats(scripted_server) == ["json_schema", "json_object"]
    assert provider.json_mode == "json_object"


def test_openai_base_url_never_switches_format() -> None:
    assert OpenAIProvider("m", api_key="k").format_fallback is False  # the SDK's default URL is OpenAI's
    assert OpenAIProvider("m", api_key="k", base_url="https://api.openai.com/v1").format_fallback is False
    assert OpenAIProvider("m", base_url="http://127.0.0.1:8080/v1").format_fallback is True


def test_format_rejection_without_fallback_is_an_error(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [Reply(400, {"error": {"message": "Invalid response_format"}})]
    provider = _openai(scripted_server)
    provider.format_fallback = False  # as for api.openai.com
    with pytest.raises(LLMUnavailable):
        provider.complete_json("sys", "q", SCHEMA)
    assert _formats(scripted_server) == ["json_schema"] and provider.json_mode == "auto"


def test_openai_sdk_retry_honours_retry_after(scripted_server: ScriptedServer) -> None:
    scripted_server.replies = [
        Reply(429, {"error": {"message": "slow down"}}, headers={"retry-after": "1"}),
        Reply(body=OK),
    ]
    provider = _openai(scripted_server, max_retries=2)
    assert provider.complete_json("sys", "q", SCHEMA)[0] == {"answer": "ok"}
    assert provider.attempts == 2
    gap = scripted_server.requests[1]["at"] - scripted_server.requests[0]["at"]
    assert gap >= 0.9, gap


def test_overall_deadline_skips_a_retry_that_would_overrun(scripted_server: ScriptedServer) -> None:
    err = {"error": {"message": "overloaded"}}
    scripted_server.replies = [Reply(503, err, headers={"retry-after": "2"})]
    provider = _openai(scripted_server, max_retries=5, deadline_s=1.0)
    start = time.monotonic()
    with pytest.raises(LLMUnavailable) as info:
        provider.complete_json("sys", "q", SCHEMA)
    assert time.monotonic() - start < 1.0
    assert len(scripted_server.requests) == 1 and info.value.attempts == 1


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_overall_deadline_cuts_a_slow_attempt(scripted_server: ScriptedServer, kind: str) -> None:
    body = anthropic_tool_reply({"answer": "late"}) if kind == "anthropic" else openai_reply("{}")
    scripted_server.replies = [Reply(body=body, delay_s=3.0)]
    make = _anthropic if kind == "anthropic" else _openai
    provider = make(scripted_server, timeout_s=10.0, max_retries=3, deadline_s=0.8)
    start = time.monotonic()
    with pytest.raises(LLMTimeout):
        provider.complete_json("sys", "q", SCHEMA)
    assert time.monotonic() - start < 0.8 + 0.5
    assert len(scripted_server.requests) == 1


def test_graph_step_deadline_bounds_the_adapter(scripted_server: ScriptedServer) -> None:
    from src.llm.deadline import deadline_scope

    scripted_server.replies = [Reply(body=OK, delay_s=3.0)]
    provider = _openai(scripted_server, timeout_s=10.0, max_retries=3)
    start = time.monotonic()
    with deadline_scope(0.6), pytest.raises(LLMTimeout):
        provider.complete_json("sys", "q", SCHEMA)
    assert time.monotonic() - start < 0.6 + 0.5


def test_get_provider_deadline_is_the_node_timeout() -> None:
    clear_provider_cache()
    settings = Settings(llm_provider="openai", openai_base_url="http://127.0.0.1:9/v1", node_timeout_s=42.0)
    provider = get_provider(settings)
    assert provider.inner.deadline_s == 42.0
    clear_provider_cache()


def test_temperature_zero_where_the_api_has_one(scripted_server: ScriptedServer) -> None:
    """OpenAI-compatible: temperature 0 on every call. Anthropic API 2026-10-21 (SDK 2.x) rejects any
    sampling parameter with HTTP 400, so none is sent there."""
    scripted_server.replies = [
        Reply(body=anthropic_tool_reply({"answer": "a"})),
        Reply(body=anthropic_text_reply("b")),
        Reply(body=OK),
        Reply(body=openai_reply("c")),
    ]
    anthropic_provider, openai_provider = _anthropic(scripted_server), _openai(scripted_server)
    anthropic_provider.complete_json("sys", "q", SCHEMA)
    anthropic_provider.complete_text("sys", "q")
    openai_provider.complete_json("sys", "q", SCHEMA)
    openai_provider.complete_text("sys", "q")
    bodies = [r["body"] for r in scripted_server.requests]
    assert [b.get("temperature") for b in bodies[2:]] == [0, 0]
    assert not any(k in b for b in bodies[:2] for k in ("temperature", "top_p", "top_k"))
