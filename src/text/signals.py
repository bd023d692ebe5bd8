"""Transparent rule-based escalation signals.

Each rule is a named regex; a hit is reported with the words that matched so a reviewer can see
why a ticket was escalated. The rules run beside the LLM analysis and can only *raise* risk:
whatever a (possibly small, possibly manipulated) model says, a legal threat stays a legal threat.
A few non-English phrasings (es/fr/de/pt/it) are included for the strongest signals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from src.text.types import Signal


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    sensitive_flag: str | None = None  # a SensitiveFlags field this rule raises


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


RULES: tuple[Rule, ...] = (
    Rule(
        "legal_threat",
        _rx(
            r"law ?suits?",
            r"su(?:e|ing)(?: you| your company| them)?",
            r"attorneys?",
            r"lawyers?",
            r"legal (?:action|proceedings|team|counsel)",
            r"small claims(?: court)?",
            r"court",
            r"class action",
            r"litigation",
            r"abogad[oa]s?",
            r"demanda(?:r|ré)?",
            r"avocats?",
            r"poursuites? judiciaires?",
            r"anwalt|rechtsanwalt|klage",
            r"advogad[oa]s?",
            r"avvocat[oi]",
        ),
        "legal_threat",
    ),
    Rule(
        "chargeback",
        _rx(
            r"charge ?backs?",
            r"disput(?:e|ing) (?:the |this |that )?(?:charge|transaction|payment)",
            r"reverse the charge",
        ),
        None,
    ),
    Rule(
        "regulator",
        _rx(
            r"regulators?",
            r"BBB",
            r"better business bureau",
            r"CFPB",
            r"consumer (?:protection|financial protection bureau)",
            r"ombudsman",
            r"attorney general",
            r"FTC",
            r"trading standards",
        ),
        "legal_threat",
    ),
    Rule(
        "churn_threat",
        _rx(
            r"cancel(?:l?ing)? (?:my|the|our) (?:account|subscription|membership|plan|service)",
            r"close (?:my|our) account",
            r"switch(?:ing)? to (?:a |another )?(?:competitor|provider|bank|company)",
            r"tak(?:e|ing) my business elsewhere",
            r"never (?:order|buy|shop)(?:ing)? (?:from|with|here) (?:you|again)",
            r"(?:last|final) time I(?:'ll| will)? (?:order|buy|use)",
            r"find another (?:provider|company|service)",
            r"k[üu]ndig\w*",
            r"cancelar (?:mi|la) (?:cuenta|suscripci[óo]n)",
            r"r[ée]silier",
        ),
        "churn",
    ),
    Rule(
        "public_shaming",
        _rx(
            r"(?:post|share|put|write)(?:ing)? (?:this|it|about (?:this|you)) (?:on|all over) "
            r"(?:twitter|x|facebook|instagram|tiktok|reddit|social media|linkedin|youtube)",
            r"social media",
            r"(?:1|one)[- ]star reviews?",
            r"(?:bad|negative|terrible|scathing) reviews?",
            r"trustpilot",
            r"go(?:ing)? viral",
            r"tell (?:everyone|all my friends)",
            r"the press|journalists?|news outlets?",
        ),
        None,
    ),
    Rule(
        "supervisor_request",
        _rx(
            r"(?:speak|talk) (?:to|with) (?:a |your |the )?"
            r"(?:supervisor|manager|someone in charge|a human|a real person)",
            r"escalate (?:this|my (?:case|complaint|ticket))",
            r"supervisor",
            r"your manager",
            r"real person",
        ),
        None,
    ),
    Rule(
        "long_wait",
        _rx(
            r"(?:third|fourth|fifth|3rd|4th|5th|\d+(?:st|nd|rd|th)) time",
            r"(?:for|over|in|after) (?:\d+|two|three|four|five|six|several|many) (?:weeks|months)",
            r"still (?:no|haven't|have not|waiting)",
            r"no one (?:has )?(?:replied|responded|answered|gets back)",
            r"keep (?:getting|being) (?:ignored|transferred)",
            r"again and again",
        ),
        None,
    ),
    Rule(
        "account_takeover",
        _rx(
            r"hack(?:ed|er|ers)?",
            r"account (?:was |has been )?(?:compromised|taken over|breached)",
            r"someone (?:else )?(?:logged|got) into my account",
            r"unauthori[sz]ed (?:access|login|charges?|transactions?|purchases?)",
            r"stolen (?:card|identity|account|password)",
            r"(?:card|account|identity|password) (?:was|has been|got) stolen",
            r"(?:did not|didn't|never) authori[sz]e",
            r"identity theft",
            r"fraud(?:ulent)?",
            r"phishing",
            r"password (?:was )?changed without",
        ),
        "security_account_takeover",
    ),
    Rule(
        "health_safety",
        _rx(
            r"injur(?:y|ies|ed)",
            r"hurt (?:me|my|us)",
            r"hospital",
            r"emergency room",
            r"allergic reaction",
            r"food poisoning",
            r"(?:caught|catch(?:es|ing)?) fire",
            r"burn(?:ed|t|s)? (?:me|my|his|her)",
            r"electric(?:al)? shock",
            r"exploded|explosion",
            r"smoke (?:came|coming)",
            r"unsafe|dangerous|hazard(?:ous)?",
            r"choking",
            r"poison(?:ed|ing)?",
        ),
        "health_safety",
    ),
)


def escalation_signals(text: str) -> list[Signal]:
    """Every rule that fires on ``text`` (one Signal per rule: its first match), in rule order."""
    if not text:
        return []
    out: list[Signal] = []
    for rule in RULES:
        m = rule.pattern.search(text)
        if m is not None:
            out.append(Signal(name=rule.name, matched=m.group(0), sensitive_flag=rule.sensitive_flag))
    return out
