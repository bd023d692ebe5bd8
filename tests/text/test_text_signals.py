"""Escalation rules: each named rule fires on its phrasing, and ordinary tickets stay quiet."""

from __future__ import annotations

import pytest

from src.text.signals import RULES, escalation_signals


@pytest.mark.parametrize(
    ("text", "name", "flag"),
    [
        ("If this isn't fixed I will sue you.", "legal_threat", "legal_threat"),
        ("My attorney will be in touch", "legal_threat", "legal_threat"),
        ("Voy a hablar con mi abogado", "legal_threat", "legal_threat"),
        ("I'm filing a chargeback with my bank", "chargeback", None),
        ("I will dispute the charge", "chargeback", None),
        ("Reporting you to the CFPB and the BBB", "regulator", "legal_threat"),
        ("I'm cancelling my subscription today", "churn_threat", "churn"),
        ("I'll be posting this on Twitter", "public_shaming", None),
        ("Expect a 1-star review", "public_shaming", None),
        ("I want to speak to a supervisor now", "supervisor_request", None),
        ("This is the third time I'm asking", "long_wait", None),
        ("Waiting for three weeks now", "long_wait", None),
        (
            "My account was hacked and the password changed without my consent",
            "account_takeover",
            "security_account_takeover",
        ),
        ("There are unauthorized charges on my card", "account_takeover", "security_account_takeover"),
        ("The charger caught fire in my kitchen", "health_safety", "health_safety"),
        ("My daughter had an allergic reaction", "health_safety", "health_safety"),
    ],
)
def test_rule_fires(text: str, name: str, flag: str | None) -> None:
    signals = {s.name: s for s in escalation_signals(text)}
    assert name in signals, [s.name for s in signals.values()]
    assert signals[name].sensitive_flag == flag
    assert signals[name].matched.lower() in text.lower()


@pytest.mark.parametrize(
    "text",
    [
        "How do I change my shipping address?",
        "Thanks, the new courtesy discount worked great!",
        "Can I get an invoice for order {{Order Number}}?",
        "I'd like to upgrade my plan to premium.",
        "",
    ],
)
def test_ordinary_tickets_raise_nothing(text: str) -> None:
    assert escalation_signals(text) == []


def test_one_signal_per_rule_and_rule_names_unique() -> None:
    signals = escalation_signals("lawyer, attorney, lawsuit, court")
    assert [s.name for s in signals] == ["legal_threat"]
    assert len({r.name for r in RULES}) == len(RULES)
