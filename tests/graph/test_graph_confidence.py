"""The pure confidence estimator: every route, every hard cap, thresholds incl. per-intent."""

from __future__ import annotations

import numpy as np
import pytest

from src.graph.confidence import ConfidenceInputs, Thresholds
from src.graph.confidence import score as _score

CAL = Thresholds(source="calibrated")  # global 0.85 / 0.60, as if fitted for this model


def _inp(**kw) -> ConfidenceInputs:
    base = {"intent": "cancel_order", "probability": 0.97, "margin": 0.9, "entropy": 0.05, "language": "en",
            "language_supported": True}
    base.update(kw)
    return ConfidenceInputs(**base)


def score(inputs: ConfidenceInputs, thresholds=None):
    """The estimator with calibrated thresholds unless a test passes its own."""
    return _score(inputs, CAL if thresholds is None else thresholds)


def test_confident_clean_ticket_auto_resolves() -> None:
    s = score(_inp(sentiment="neutral", priority="P3", best_similarity=0.8, neighbours_total=5,
                   neighbours_same_intent=5, analysis_reliable=True, draft_reliable=True, language="en",
                   language_supported=True))
    assert s.route == "auto_resolve"
    assert s.value == s.calibrated_probability == 0.97  # agreement never adds to the probability
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
    assert score(_inp(**kw), Thresholds(auto_min_similarity=0.95, source="calibrated")).route == "suggest"
    assert score(_inp(**kw), Thresholds(auto_min_similarity=0.0, source="calibrated")).route == "auto_resolve"
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
        ({"analysis_uncertain": True}, "suggest"),
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
    th = {"auto_resolve": 0.95, "suggest": 0.5, "per_intent": {}, "source": "calibrated"}
    assert score(_inp(probability=0.9), th).route == "suggest"
    assert score(_inp(probability=0.55), th).route == "suggest"
    assert score(_inp(probability=0.55)).route == "escalate"


def test_per_intent_thresholds() -> None:
    th = Thresholds(per_intent={"cancel_order": {"auto_resolve": None}, "track_order": {"auto_resolve": 0.7}},
                    source="calibrated")
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


# --- the calibrated guarantee covers the score the router compares (#10 items 1, 2, 4, 6) ---------------


@pytest.mark.parametrize("gap", [1e-4, 1e-3, 0.02])
def test_just_under_the_calibrated_threshold_never_auto_resolves_whatever_retrieval_says(gap: float) -> None:
    th = Thresholds(source="calibrated", per_intent={"cancel_order": {"auto_resolve": 0.9973}})
    agree = {"best_similarity": 0.99, "neighbours_total": 5, "neighbours_same_intent": 5,
             "sentiment": "neutral", "priority": "P3", "analysis_reliable": True, "draft_reliable": True}
    s = score(_inp(probability=0.9973 - gap, **agree), th)
    assert s.route == "suggest" and s.value <= 0.9973 - gap
    assert score(_inp(probability=0.9974, **agree), th).route == "auto_resolve"


def test_adjustments_never_raise_the_score_above_the_probability() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        total = int(rng.integers(0, 6))
        inp = _inp(
            probability=float(rng.uniform()), margin=float(rng.uniform()), entropy=float(rng.uniform()),
            best_similarity=float(rng.uniform()) if total else None, neighbours_total=total,
            neighbours_same_intent=int(rng.integers(0, total + 1)),
            sentiment=str(rng.choice(["neutral", "angry", "frustrated", "positive"])),
            priority=str(rng.choice(["P1", "P2", "P3"])),
        )
        s = score(inp)
        assert s.value <= s.calibrated_probability == round(inp.probability, 6)
        assert all(v <= 0 for v in s.adjustments.values())
        if s.route == "auto_resolve":
            assert inp.probability > s.auto_threshold


def test_uncalibrated_thresholds_never_auto_resolve() -> None:
    for th in (None, Thresholds(), {"auto_resolve": 0.85, "suggest": 0.6, "per_intent": {}},
               Thresholds(source="stale")):
        s = _score(_inp(probability=0.999), th)
        assert s.route == "suggest" and s.thresholds_source != "calibrated"
        assert any("not calibrated" in r and "capped at suggest" in r for r in s.reasons)
    assert _score(_inp(probability=0.999), Thresholds(source="calibrated")).route == "auto_resolve"


def test_empty_knowledge_base_caps_at_suggest() -> None:
    s = score(_inp(probability=0.999, neighbours_total=0, neighbours_same_intent=0, best_similarity=None))
    assert s.route == "suggest"
    assert any("no similar resolved ticket" in r for r in s.reasons)


@pytest.mark.parametrize("language", [None, "unknown", ""])
def test_undetected_language_is_not_neutral(language: str | None) -> None:
    s = score(_inp(probability=0.999, language=language, language_supported=None))
    assert s.route == "suggest" and any("language not detected" in r for r in s.reasons)


def test_decision_says_what_is_calibrated_and_what_is_not() -> None:
    s = score(_inp(probability=0.9, margin=0.05, sentiment="frustrated"))
    assert s.calibrated_probability == 0.9 and s.thresholds_source == "calibrated"
    assert s.uncalibrated == ["margin", "sentiment"] and s.value < 0.9
    assert any("uncalibrated hand-set penalties" in r and "only lower" in r for r in s.reasons)
    assert s.reasons[0].startswith("calibrated probability 0.9 ")


# --- Settings thresholds are floors; provenance reaches the router (#10 items 2, 5) ---------------------


def _deps(tmp_path, thresholds: dict, **settings_kw):
    from fakes_graph import FakeClassifier, make_deps

    clf = FakeClassifier()
    clf.thresholds = thresholds
    return make_deps(tmp_path, classifier=clf, **settings_kw)


def test_settings_thresholds_are_floors_the_stricter_wins(tmp_path) -> None:
    bundle = {"auto_resolve": 0.80, "suggest": 0.50, "source": "calibrated",
              "per_intent": {"cancel_order": {"auto_resolve": 0.90}, "track_order": {"auto_resolve": 0.70},
                             "get_refund": {"auto_resolve": None}}}
    th = _deps(tmp_path, bundle, auto_threshold=0.95, suggest_threshold=0.65).thresholds()
    assert th.auto_resolve == 0.95 and th.suggest == 0.65 and th.source == "calibrated"
    assert th.for_intent("cancel_order") == (0.95, 0.65)
    assert th.for_intent("track_order") == (0.95, 0.65)
    assert th.for_intent("get_refund") == (None, 0.65)  # "never" stays never
    # a looser setting never loosens a calibrated threshold
    th = _deps(tmp_path, bundle, auto_threshold=0.5, suggest_threshold=0.4).thresholds()
    assert th.for_intent("cancel_order") == (0.90, 0.50) and th.for_intent("track_order") == (0.70, 0.50)
    assert _score(_inp(probability=0.93), th).route == "auto_resolve"
    strict = _deps(tmp_path, bundle, auto_threshold=0.95).thresholds()
    assert _score(_inp(probability=0.93), strict).route == "suggest"


def test_bundle_without_provenance_is_uncalibrated_and_noted_at_startup(tmp_path, monkeypatch) -> None:
    from fakes_graph import FakeClassifier

    from src.classifier import inference
    from src.config import Settings
    from src.graph.deps import Deps

    th = _deps(tmp_path, {"auto_resolve": 0.85, "suggest": 0.6, "per_intent": {}}).thresholds()
    assert th.source == "default"
    assert _score(_inp(probability=0.999), th).route == "suggest"
    clf = FakeClassifier()
    clf.thresholds = {"auto_resolve": 0.85, "suggest": 0.6, "per_intent": {}, "source": "default"}
    monkeypatch.setattr(inference.IntentClassifier, "load", classmethod(lambda cls, *a, **k: clf))
    routing = _deps(tmp_path, clf.thresholds).routing
    monkeypatch.setattr("src.graph.deps.load_routing", lambda **_kw: routing)
    settings = Settings(sqlite_path=tmp_path / "a.db", checkpoint_sqlite_path=tmp_path / "c.db",
                        outbox_dir=tmp_path / "outbox", qdrant_path=tmp_path / "qdrant",
                        llm_provider="openai",
                        openai_base_url="http://127.0.0.1:9/v1")
    deps = Deps.from_settings(settings)
    assert any("auto-resolve is OFF" in n and "not calibrated" in n for n in deps.startup_notes)
    clf.thresholds = {**clf.thresholds, "source": "calibrated"}
    deps = Deps.from_settings(settings)
    assert not any("auto-resolve is OFF" in n for n in deps.startup_notes)


def test_out_of_distribution_guard_caps_at_suggest() -> None:
    th = Thresholds(source="calibrated", ood={"score": "relative_mahalanobis", "max": 12.0, "tpr": 0.95})
    assert score(_inp(probability=0.999, ood_score=3.0), th).route == "auto_resolve"
    far = score(_inp(probability=0.999, ood_score=30.0), th)
    assert far.route == "suggest" and any("out-of-distribution guard" in r for r in far.reasons)
    # a bundle with a guard whose classifier did not deliver a score fails closed
    assert score(_inp(probability=0.999), th).route == "suggest"
    assert score(_inp(probability=0.999, ood_score=30.0)).route == "auto_resolve"  # no guard in the bundle
