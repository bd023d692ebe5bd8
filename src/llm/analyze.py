"""``analyze(ticket) -> Analysis``: the LLM's reading, validated, combined with the rules.

The model answers under a JSON schema; the answer is validated with pydantic, repaired once on
failure, and otherwise replaced by conservative placeholders marked ``reliable=False`` (never
guessed defaults dressed up as the model's opinion). Provider failures raise ``LLMError``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from src.config import get_settings
from src.llm.combine import combine
from src.llm.injection import looks_like_injection
from src.llm.prompts import ANALYZE_PROMPT_VERSION, ANALYZE_REPAIR, ANALYZE_SYSTEM, ticket_block
from src.llm.providers.base import LLMProvider
from src.llm.structured import complete_validated
from src.llm.types import Analysis, Priority, SensitiveFlags, Sentiment, Usage
from src.text.language import detect_language
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


# analyze-v3's short flag names -> SensitiveFlags fields (and back, for answers in the v2 layout).
FLAG_FIELDS = {
    "legal": "legal_threat",
    "safety": "health_safety",
    "security": "security_account_takeover",
    "churn": "churn",
}


class LLMAnalysisOutput(BaseModel):
    """What the model must return (flat, short keys: every generated token costs time on a CPU).

    The reason comes first: the model names the evidence, then decides. Answers in the older
    analyze-v2 layout (``escalation_risk`` + four booleans, e.g. from an external provider's
    recorded fixture) are read too.
    """

    model_config = ConfigDict(title="ticket_analysis", extra="ignore")

    reason: str = Field(max_length=300)
    sentiment: Annotated[Sentiment, BeforeValidator(_lower)]
    priority: Annotated[Priority, BeforeValidator(_upper)]
    risk: bool
    flags: list[Literal["legal", "safety", "security", "churn"]] = Field(default_factory=list, max_length=4)
    language: Annotated[str | None, BeforeValidator(_language)] = None  # v2 layout only

    @model_validator(mode="before")
    @classmethod
    def _v2_layout(cls, data: Any) -> Any:
        if isinstance(data, dict) and "risk" not in data and "escalation_risk" in data:
            data = dict(data)
            data["risk"] = data.pop("escalation_risk")
            data.setdefault("flags", [short for short, name in FLAG_FIELDS.items() if data.get(name) is True])
        if isinstance(data, dict) and isinstance(data.get("flags"), list):
            data["flags"] = [f.strip().lower() if isinstance(f, str) else f for f in data["flags"]]
        return data


def analysis_schema() -> dict:
    """JSON schema sent to the provider (length limits keep small models from rambling)."""
    schema = LLMAnalysisOutput.model_json_schema()
    schema["properties"].pop("language", None)
    schema["properties"]["reason"]["maxLength"] = 60
    schema["properties"]["flags"] = {
        "type": "array", "maxItems": 4,
        "items": {"type": "string", "enum": list(FLAG_FIELDS)},
    }  # fmt: skip
    schema["required"] = ["reason", "sentiment", "priority", "risk", "flags"]
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


def _to_analysis(out: LLMAnalysisOutput, usage: Usage | None, ticket_text: str) -> Analysis:
    # The deterministic detector first: a small model's language field is often wrong.
    language = detect_language(ticket_text) or out.language or "und"
    return Analysis(
        sentiment=out.sentiment,
        priority=out.priority,
        escalation_risk=out.risk,
        reason=out.reason.strip(),
        language=language if re.fullmatch(r"[a-z]{2,3}", language) else "und",
        summary="",
        sensitive=SensitiveFlags(**{FLAG_FIELDS[f]: True for f in set(out.flags)}),
        reliable=True,
        usage=usage,
        prompt_version=ANALYZE_PROMPT_VERSION,
    )


def analyze_llm(ticket_text: str, provider: LLMProvider, *, max_tokens: int = 96) -> Analysis:
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
    return _to_analysis(out, usage, ticket_text)


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
