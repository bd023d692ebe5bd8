"""``analyze(ticket) -> Analysis``: the LLM's reading, validated, combined with the rules.

The model answers under a JSON schema; the answer is validated with pydantic, repaired once on
failure, and otherwise replaced by conservative placeholders marked ``reliable=False`` (never
guessed defaults dressed up as the model's opinion). Provider failures raise ``LLMError``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from src.config import get_settings
from src.llm.combine import combine
from src.llm.injection import looks_like_injection
from src.llm.prompts import ANALYZE_PROMPT_VERSION, ANALYZE_REPAIR, ANALYZE_SYSTEM, ticket_block
from src.llm.providers.base import LLMProvider
from src.llm.structured import complete_validated
from src.llm.types import Analysis, Priority, SensitiveFlags, Sentiment, Usage
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
    reason: str = Field(max_length=300)  # before the flag: the model names the evidence, then decides
    escalation_risk: bool
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
    out, usage, error = complete_validated(
        provider, ANALYZE_SYSTEM, user, schema, LLMAnalysisOutput, max_tokens=max_tokens,
        repair=lambda err: user + "\n\n" + ANALYZE_REPAIR.format(error=err[:300]),
    )
    if out is None:
        return unreliable_analysis(f"invalid output after one repair ({error[:200]})", usage)
    return _to_analysis(out, usage)


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
