"""The pure confidence estimator: every route, every hard cap, thresholds incl. per-intent."""

from __future__ import annotations

import pytest

from src.graph.confidence import ConfidenceInputs, Thresholds, score


def _inp(**kw) -> ConfidenceInputs:
    base = {"intent": "cancel_order", "probability": 0.97, "margin": 0.9, "entropy": 0.05}
    base.update(kw)
    return ConfidenceInputs(**base)


def test_confident_clean_ticket_auto_resolves() -> None:
    s = score(_inp(sentiment="neutral", priority="P3", best_similarity=0.8, neighbours_total=5,
                   neighbours_same_intent=5, analysis_reliable=True, draft_reliable=True, language="en",
                   language_supported=True))
    assert s.route == "auto_resolve"
    assert 0.85 < s.value <= 1.0
    assert any("retrieval agrees" in r for r in s.reasons)


@pytest.mark.parametrize(
    ("probability", "route"), [(0.99, "auto_resolve"), (0.86, "auto_resolve"), (0.85, "suggest"),
                               (0.70, "suggest"), (0.60, "suggest"), (0.59, "escalate"), (0.1, "escalate")]
)
def test_default_threshold_bands(probability: float, route: str) -> None:
    assert score(_inp(probability=probability)).route == route


def test_ambiguity_lowers_score_and_says_why() -> None:
    clean = score(_inp(probability=0.9))
    ambiguous = score(_inp(probability=0.9, margin=0.02, entropy=0.7))
    assert ambiguous.value < clean.value
    assert ambiguous.adjustments["margin"] < 0 and ambiguous.adjustments["entropy"] < 0
    assert ambiguous.route != "auto_resolve"
    assert any("margin" in r for r in ambiguous.reasons)


def test_retrieval_disagreement_penalises_and_blocks_auto_resolve() -> None:
    s = score(_inp(probability=0.9, best_similarity=0.9, neighbours_total=5, neighbours_same_intent=1))
    assert s.adjustments["retrieval"] < 0
    assert s.route == "suggest"
    strong = score(_inp(probability=1.0, best_similarity=0.9, neighbours_total=5, neighbours_same_intent=1))
    assert strong.route == "suggest" and any("another intent" in r for r in strong.reasons)
    # distant neighbours are weak evidence: no "another intent" cap, but the ticket is unfamiliar
    far = score(_inp(probability=1.0, best_similarity=0.5, neighbours_total=5, neighbours_same_intent=1))
    assert far.route == "suggest"
    assert not any("another intent" in r for r in far.reasons)
    assert any("unfamiliar ticket" in r for r in far.reasons)


@pytest.mark.parametrize(
    ("similarity", "route"), [(0.59, "suggest"), (0.60, "auto_resolve"), (0.9, "auto_resolve")]
)
def test_unfamiliar_tickets_never_auto_resolve(similarity: float, route: str) -> None:
    kw = {"probability": 1.0, "best_similarity": similarity, "neighbours_total": 5,
          "neighbours_same_intent": 5}
    assert score(_inp(**kw)).route == route
    # the cut-off is configurable, and 0 switches the guard off
    assert score(_inp(**kw), Thresholds(auto_min_similarity=0.95)).route == "suggest"
    assert score(_inp(**kw), Thresholds(auto_min_similarity=0.0)).route == "auto_resolve"
    # no retrieval at all (classifier-only) is "not available", not "unfamiliar"
    assert score(_inp(probability=1.0)).route == "auto_resolve"


def test_no_evidence_penalises_but_missing_retrieval_is_neutral() -> None:
    assert score(_inp(neighbours_total=0)).adjustments["retrieval"] < 0
    assert "retrieval" not in score(_inp()).adjustments


@pytest.mark.parametrize(
    ("kw", "route"),
    [
        ({"sentiment": "angry"}, "suggest"),
        ({"priority": "P1"}, "escalate"),
        ({"sensitive_flags": ["legal_threat"]}, "escalate"),
        ({"sensitive_flags": ["security_account_takeover"]}, "escalate"),
        ({"sensitive_flags": ["churn"]}, "suggest"),
        ({"escalation_signals": ["supervisor_request"]}, "suggest"),
        ({"escalation_risk": True}, "escalate"),
        ({"injection": True}, "escalate"),
        ({"failures": ["analyze: LLMTimeout"]}, "escalate"),
        ({"classifier_valid": False}, "escalate"),
        ({"intent": None}, "escalate"),
        ({"analysis_reliable": False}, "suggest"),
        ({"draft_reliable": False}, "suggest"),
        ({"language": "de", "language_supported": False}, "suggest"),
    ],
)
def test_hard_caps_never_auto_resolve(kw: dict, route: str) -> None:
    s = score(_inp(probability=1.0, **kw))
    assert s.route != "auto_resolve"
    # the cap never lowers below what the rule says when the number alone would be high
    assert s.route == route or (route == "suggest" and s.route == "escalate")
    assert len(s.reasons) >= 2


def test_failure_reason_is_recorded() -> None:
    s = score(_inp(failures=["retrieve: store down"]))
    assert any("retrieve: store down" in r for r in s.reasons)


def test_bundle_thresholds_override_defaults() -> None:
    th = {"auto_resolve": 0.95, "suggest": 0.5, "per_intent": {}}
    assert score(_inp(probability=0.9), th).route == "suggest"
    assert score(_inp(probability=0.55), th).route == "suggest"
    assert score(_inp(probability=0.55)).route == "escalate"


def test_per_intent_thresholds() -> None:
    th = Thresholds(per_intent={"cancel_order": {"auto_resolve": None}, "track_order": {"auto_resolve": 0.7}})
    never = score(_inp(probability=1.0), th)
    assert never.route == "suggest"
    assert any("never auto-resolves" in r for r in never.reasons)
    assert score(_inp(intent="track_order", probability=0.75), th).route == "auto_resolve"
    assert score(_inp(intent="other", probability=0.75), th).route == "suggest"


def test_value_is_clipped_to_unit_interval() -> None:
    s = score(_inp(probability=0.05, margin=0.0, entropy=1.0, sentiment="angry", priority="P1",
                   escalation_signals=["a", "b", "c", "d"], sensitive_flags=["churn"],
                   language_supported=False))
    assert s.value == 0.0
    assert s.route == "escalate"
