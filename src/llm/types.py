"""Typed results and failures of the LLM layer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Sentiment = Literal["angry", "frustrated", "neutral", "positive"]
Priority = Literal["P1", "P2", "P3", "P4"]


class Usage(BaseModel):
    """What one call cost: recorded with every result (local models cost 0 USD)."""

    provider: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cost_usd: float = 0.0
    calls: int = 1


class SensitiveFlags(BaseModel):
    legal_threat: bool = False
    health_safety: bool = False
    security_account_takeover: bool = False
    churn: bool = False

    def any(self) -> bool:
        return any(self.model_dump().values())


class Analysis(BaseModel):
    """Sentiment/priority/escalation reading of one ticket.

    ``reliable`` is False when the model output never validated: the values are then
    conservative placeholders and must not be presented as the model's opinion.
    """

    sentiment: Sentiment = "neutral"
    priority: Priority = "P3"
    escalation_risk: bool = False
    reason: str = ""
    language: str = "en"
    summary: str = ""
    sensitive: SensitiveFlags = Field(default_factory=SensitiveFlags)
    signals: list[str] = Field(default_factory=list)  # rule-based escalation signals that fired
    reliable: bool = True
    usage: Usage | None = None
    prompt_version: str = ""
    rule_adjustments: list[str] = Field(default_factory=list)  # what the rules raised over the LLM
    # who read the ticket: "llm", "heads" (cheap heads, sure it is routine: no LLM call) or
    # "heads+llm" (heads unsure or rules fired); ``uncertain`` = the heads were unsure (cap: suggest)
    source: str = "llm"
    uncertain: bool = False


class Draft(BaseModel):
    """A reply draft grounded in retrieved resolutions."""

    text: str
    evidence_ids: list[str] = Field(default_factory=list)
    reliable: bool = True
    usage: Usage | None = None
    prompt_version: str = ""
    flags: list[str] = Field(default_factory=list)  # why it is unreliable: invented_number, ...
    # "llm", "template" (a vetted resolution, placeholders filled: no LLM call) or "deferred"
    # (a suggest's LLM draft, written after the decision)
    source: str = "llm"


class LLMError(RuntimeError):
    """Any provider failure after bounded retries; the graph turns it into a safe route."""

    kind: str = "error"
    attempts: int = 1  # how many calls were made before giving up (retries + 1)


class LLMTimeout(LLMError):
    kind = "timeout"


class LLMUnavailable(LLMError):
    kind = "unavailable"


class LLMInvalidOutput(LLMError):
    kind = "invalid_output"
