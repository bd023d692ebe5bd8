"""``analyze(ticket) -> Analysis``: the LLM's reading, validated, combined with the rules.

The model answers under a JSON schema; the answer is validated with pydantic, repaired once on
failure, and otherwise replaced by conservative placeholders marked ``reliable=False`` (never
guessed defaults dressed up as the model's opinion). Provider failures raise ``LLMError``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from src.config import get_settings
from src.llm.combine import combine
from src.llm.injection import looks_like_injection
from src.llm.prompts import ANALYZE_PROMPT_VERSION, ANALYZE_REPAIR, ANALYZE_SYSTEM, ticket_block
from src.llm.providers.base import LLMProvider
from src.llm.types import Analysis, LLMInvalidOutput, Priority, SensitiveFlags, Sentiment, Usage
from src.text.signals import escalation_signals

_LANGUAGE_NAMES = {
    "english": "en", "spanish": "es", "español": "es", "french": "fr", "français": "fr",
    "german": "de", "deutsch": "de", "portuguese": "pt", "italian": "it", "dutch": "nl",
}  # fmt: skip


def _lower(v: Any) -> Any:
    return v.strip().lower() if isinstance(v, str) else v


def _upper(v: Any) -> Any:
    return v.strip().upper() if isinstance(v, str) else v


def _language(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    s = v.strip().lower()
    s = _LANGUAGE_NAMES.get(s, s)
    return s.split("-")[0].split("_")[0]


class LLMAnalysisOutput(BaseModel):
    """What the model must return (flat: small models handle flat objects best)."""

    model_config = ConfigDict(title="ticket_analysis", extra="ignore")

    language: Annotated[str, BeforeValidator(_language), Field(pattern=r"^[a-z]{2,3}$", max_length=3)]
    summary: str = Field(max_length=300)
    sentiment: Annotated[Sentiment, BeforeValidator(_lower)]
    priority: Annotated[Priority, BeforeValidator(_upper)]
    escalation_risk: bool
    reason: str = Field(max_length=300)
    legal_threat: bool
    health_safety: bool
    security_account_takeover: bool
    churn: bool


def analysis_schema() -> dict:
    """JSON schema sent to the provider (length limits keep small models from rambling)."""
    schema = LLMAnalysisOutput.model_json_schema()
    schema["properties"]["summary"]["maxLength"] = 80
    schema["properties"]["reason"]["maxLength"] = 60
    schema["additionalProperties"] = False
    return schema


def _sum_usage(usages: list[Usage]) -> Usage | None:
    if not usages:
        return None
    first = usages[0]
    return Usage(
        provider=first.provider,
        model=first.model,
        tokens_in=sum(u.tokens_in for u in usages),
        tokens_out=sum(u.tokens_out for u in usages),
        latency_s=round(sum(u.latency_s for u in usages), 4),
        cost_usd=round(sum(u.cost_usd for u in usages), 8),
        calls=sum(u.calls for u in usages),
    )


def unreliable_analysis(reason: str, usage: Usage | None = None) -> Analysis:
    """Conservative placeholders (escalate, P2, frustrated, language unknown), flagged unreliable."""
    return Analysis(
        sentiment="frustrated",
        priority="P2",
        escalation_risk=True,
        reason=f"no valid model analysis: {reason}",
        language="und",
        summary="",
        reliable=False,
        usage=usage,
        prompt_version=ANALYZE_PROMPT_VERSION,
    )


def _to_analysis(out: LLMAnalysisOutput, usage: Usage | None) -> Analysis:
    return Analysis(
        sentiment=out.sentiment,
        priority=out.priority,
        escalation_risk=out.escalation_risk,
        reason=out.reason.strip(),
        language=out.language,
        summary=out.summary.strip(),
        sensitive=SensitiveFlags(
            legal_threat=out.legal_threat,
            health_safety=out.health_safety,
            security_account_takeover=out.security_account_takeover,
            churn=out.churn,
        ),
        reliable=True,
        usage=usage,
        prompt_version=ANALYZE_PROMPT_VERSION,
    )


def analyze_llm(ticket_text: str, provider: LLMProvider, *, max_tokens: int = 256) -> Analysis:
    """The model's reading alone (no rules): validated, one repair, else unreliable placeholders."""
    if not ticket_text or not ticket_text.strip():
        return unreliable_analysis("empty ticket")
    schema = analysis_schema()
    user = ticket_block(ticket_text, get_settings().llm_max_input_chars)
    usages: list[Usage] = []
    error = ""
    for attempt in range(2):
        prompt = user if attempt == 0 else user + "\n\n" + ANALYZE_REPAIR.format(error=error[:300])
        try:
            data, usage = provider.complete_json(ANALYZE_SYSTEM, prompt, schema, max_tokens=max_tokens)
        except LLMInvalidOutput as exc:
            usages.append(Usage(provider=provider.name, model=provider.model))
            error = str(exc)
            continue
        usages.append(usage)
        try:
            return _to_analysis(LLMAnalysisOutput.model_validate(data), _sum_usage(usages))
        except ValidationError as exc:
            error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return unreliable_analysis(f"invalid output after one repair ({error[:200]})", _sum_usage(usages))


def analyze(ticket_text: str, provider: LLMProvider | None = None) -> Analysis:
    """Rules + LLM combined: either can raise risk and flags; the LLM never lowers the rules.

    Raises ``LLMError`` (timeout, unavailable) when the provider fails; invalid output instead
    yields ``reliable=False``.
    """
    if provider is None:
        from src.llm.providers import get_provider

        provider = get_provider()
    llm = analyze_llm(ticket_text, provider)
    injection = [f"prompt_injection:{name}" for name in looks_like_injection(ticket_text or "")]
    return combine(llm, escalation_signals(ticket_text or ""), extra_signals=injection)
