"""Combine the LLM's reading with rule-based signals (pure): either can raise, rules never drop.

Policy (documented in docs/llm.md):
- any rule signal sets ``escalation_risk`` and adds its name to ``signals``;
- a rule's sensitive flag is OR-ed into the LLM's flags;
- priority floors: health/safety and account takeover -> at least P1; every other signal -> at
  least P2 (a legal threat, chargeback or repeated contact is never "normal");
- sentiment floor: any signal except health/safety and account takeover (which say nothing about
  mood) -> at least ``frustrated``.
The LLM can raise anything further; it can never lower what the rules set.
"""

from __future__ import annotations

from src.llm.types import Analysis, Priority, Sentiment
from src.text.types import Signal

PRIORITY_ORDER: tuple[Priority, ...] = ("P4", "P3", "P2", "P1")  # increasing urgency
SENTIMENT_ORDER: tuple[Sentiment, ...] = ("positive", "neutral", "frustrated", "angry")  # increasing heat

PRIORITY_FLOOR: dict[str, Priority] = {"health_safety": "P1", "account_takeover": "P1"}
DEFAULT_PRIORITY_FLOOR: Priority = "P2"
NO_SENTIMENT_FLOOR = frozenset({"health_safety", "account_takeover"})


def max_priority(a: Priority, b: Priority) -> Priority:
    return a if PRIORITY_ORDER.index(a) >= PRIORITY_ORDER.index(b) else b


def max_sentiment(a: Sentiment, b: Sentiment) -> Sentiment:
    return a if SENTIMENT_ORDER.index(a) >= SENTIMENT_ORDER.index(b) else b


def combine(llm: Analysis, signals: list[Signal], extra_signals: list[str] | None = None) -> Analysis:
    """Return a copy of ``llm`` raised by ``signals``; ``rule_adjustments`` says what changed.

    ``extra_signals`` (e.g. prompt-injection rule names) only set escalation risk.
    """
    out = llm.model_copy(deep=True)
    adjustments: list[str] = []
    names = [s.name for s in signals] + list(extra_signals or [])
    out.signals = list(dict.fromkeys([*out.signals, *names]))
    if names and not out.escalation_risk:
        out.escalation_risk = True
        adjustments.append(f"escalation_risk raised by rules: {', '.join(names)}")
    for s in signals:
        if s.sensitive_flag and not getattr(out.sensitive, s.sensitive_flag):
            setattr(out.sensitive, s.sensitive_flag, True)
            adjustments.append(f"{s.sensitive_flag} raised by rule {s.name} ({s.matched!r})")
        floor = PRIORITY_FLOOR.get(s.name, DEFAULT_PRIORITY_FLOOR)
        raised = max_priority(out.priority, floor)
        if raised != out.priority:
            adjustments.append(f"priority {out.priority}->{raised} by rule {s.name}")
            out.priority = raised
        if s.name not in NO_SENTIMENT_FLOOR:
            heat = max_sentiment(out.sentiment, "frustrated")
            if heat != out.sentiment:
                adjustments.append(f"sentiment {out.sentiment}->{heat} by rule {s.name}")
                out.sentiment = heat
    if signals:
        rule_reason = "rules: " + ", ".join(f"{s.name} ({s.matched!r})" for s in signals)
        out.reason = f"{out.reason}; {rule_reason}" if out.reason else rule_reason
    out.rule_adjustments = [*out.rule_adjustments, *adjustments]
    return out
