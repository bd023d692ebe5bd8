"""Pure confidence estimator: one score in [0, 1], a route and the reasons behind both.

Why pure: the route is the riskiest decision in the product (an auto-resolved ticket never reaches a
human), so it must be deterministic, cheap and unit-testable with no model loaded.

What is calibrated and what is not (DESIGN invariant 7):

* calibrated: the intent probability (temperature-scaled) and the per-intent auto-resolve thresholds
  fitted on the bundle's calibration split (``src.graph.calibrate``). The precision guarantee is for
  the set ``probability > threshold``.
* not calibrated: every adjustment below (margin, entropy, retrieval, sentiment, priority, signals,
  language) is a hand-set heuristic. Each is a penalty (<= 0), so ``value <= probability`` always and
  ``value > threshold`` implies ``probability > threshold``: the heuristics can only remove tickets
  from the calibrated set, never add one to it.
* hard safety rules then cap the route regardless of the number (sensitive topics, legal threats, P1,
  angry customers, injection, failures, uncalibrated thresholds, unfamiliar or undetected-language
  tickets never auto-resolve).

Inputs that were not available (e.g. a classifier-only benchmark has no analysis or retrieval) are
``None`` and contribute nothing; a *failed* step is different and is passed in ``failures`` -> escalate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Route = Literal["auto_resolve", "suggest", "escalate"]
ROUTE_ORDER: dict[str, int] = {"escalate": 0, "suggest": 1, "auto_resolve": 2}

# Weights of the additive adjustments (kept small: the calibrated probability carries the signal).
LOW_MARGIN = 0.20  # top-1 minus top-2 below this is "ambiguous"
MARGIN_WEIGHT = 0.5  # penalty = weight * (LOW_MARGIN - margin)
HIGH_ENTROPY = 0.35  # normalised entropy above this is "spread out"
ENTROPY_WEIGHT = 0.3
RETRIEVAL_DISAGREE_PENALTY = 0.10
RETRIEVAL_WEAK_PENALTY = 0.05
WEAK_SIMILARITY = 0.40
STRONG_SIMILARITY = 0.60
SENTIMENT_PENALTY = {"angry": 0.10, "frustrated": 0.04}
PRIORITY_PENALTY = {"P1": 0.15, "P2": 0.03}
SIGNAL_PENALTY = 0.08
SIGNAL_PENALTY_CAP = 0.24
SENSITIVE_PENALTY = 0.15
LANGUAGE_PENALTY = 0.15

# Sensitive flags that go straight to the escalation team (the rest only block auto-resolve).
ESCALATE_FLAGS = frozenset({"legal_threat", "health_safety", "security_account_takeover"})


class Thresholds(BaseModel):
    """Route cut-offs: global ones plus optional per-intent auto-resolve thresholds.

    ``per_intent[intent]["auto_resolve"] = None`` means "this intent never auto-resolves" (not enough
    held-out evidence that it is precise enough); a missing intent uses the global threshold.
    """

    auto_resolve: float = 0.85
    suggest: float = 0.60
    # Where the numbers come from: only "calibrated" thresholds (fitted by src.graph.calibrate on the
    # bundle's calibration split, for this very model) may auto-resolve; "default" ones cap at suggest.
    source: str = "default"
    calibration: dict[str, Any] | None = None  # the calibration run's metadata (method, split, bound)
    # out-of-distribution guard fitted with the thresholds: {"score": name, "max": value, "tpr": share}
    ood: dict[str, Any] | None = None
    # Auto-resolve only tickets that resemble a resolved one: a softmax is confidently wrong on text
    # unlike its training data, nearest-neighbour similarity is not (the out-of-distribution guard).
    auto_min_similarity: float = 0.60
    per_intent: dict[str, dict[str, Any]] = Field(default_factory=dict)  # may carry support/bounds too

    @classmethod
    def coerce(cls, value: Thresholds | Mapping[str, Any] | None) -> Thresholds:
        """Accept a bundle's ``thresholds`` dict, a ``Thresholds`` or None (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Thresholds):
            return value
        return cls.model_validate(dict(value))

    def for_intent(self, intent: str | None) -> tuple[float | None, float]:
        """(auto threshold or None = never, suggest threshold) for ``intent``."""
        entry = self.per_intent.get(intent or "", None)
        if entry is None:
            return self.auto_resolve, self.suggest
        auto = entry.get("auto_resolve", self.auto_resolve)
        suggest = entry.get("suggest")
        return auto, self.suggest if suggest is None else float(suggest)


class ConfidenceInputs(BaseModel):
    """Everything the estimator looks at. Classifier fields are required; the rest are optional."""

    intent: str | None
    probability: float = Field(ge=0.0, le=1.0)  # calibrated probability of ``intent``
    margin: float = Field(ge=0.0, le=1.0)  # top-1 minus top-2 probability
    entropy: float = Field(ge=0.0, le=1.0)  # normalised entropy of the calibrated distribution
    classifier_valid: bool = True
    ood_score: float | None = None  # distance of the ticket's embedding from the training tickets

    # retrieval (None = not available)
    best_similarity: float | None = None
    neighbours_total: int | None = None
    neighbours_same_intent: int | None = None

    # analysis (None = not available)
    sentiment: str | None = None
    priority: str | None = None
    escalation_risk: bool | None = None
    analysis_reliable: bool | None = None
    # the cheap analysis heads were unsure (src/llm/cascade.py): the LLM may add caution, never clear it
    analysis_uncertain: bool = False
    escalation_signals: list[str] = Field(default_factory=list)  # rule-based signal names
    sensitive_flags: list[str] = Field(default_factory=list)  # names of SensitiveFlags set to True

    # language + draft + safety. ``None``/"unknown" = not detected: capped at suggest (fail closed)
    language: str | None = None
    language_supported: bool | None = None
    draft_reliable: bool | None = None
    injection: bool = False
    failures: list[str] = Field(default_factory=list)  # "node: why" for every failed step


class Score(BaseModel):
    """Estimator output. ``adjustments`` lists each factor's signed contribution (for audits/plots).

    ``calibrated_probability`` is the calibrated number; ``value`` is that probability minus the
    uncalibrated, hand-set penalties in ``adjustments`` (never above the probability).
    ``thresholds_source`` says whether the auto-resolve threshold was calibrated for this model.
    """

    value: float
    route: Route
    reasons: list[str]
    adjustments: dict[str, float] = Field(default_factory=dict)
    auto_threshold: float | None = None
    suggest_threshold: float = 0.60
    calibrated_probability: float = 0.0
    thresholds_source: str = "default"
    uncalibrated: list[str] = Field(default_factory=list)  # names of the heuristics that moved the value


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def _adjustments(inp: ConfidenceInputs) -> tuple[dict[str, float], list[str]]:
    """Signed contributions of each available factor plus a sentence for each."""
    adj: dict[str, float] = {}
    why: list[str] = []
    if inp.margin < LOW_MARGIN:
        adj["margin"] = -MARGIN_WEIGHT * (LOW_MARGIN - inp.margin)
        why.append(f"ambiguous intent: top-1/top-2 margin {inp.margin:.2f} ({adj['margin']:+.2f})")
    if inp.entropy > HIGH_ENTROPY:
        adj["entropy"] = -ENTROPY_WEIGHT * (inp.entropy - HIGH_ENTROPY)
        why.append(f"spread-out prediction: normalised entropy {inp.entropy:.2f} ({adj['entropy']:+.2f})")

    if inp.neighbours_total is not None or inp.best_similarity is not None:
        total = inp.neighbours_total or 0
        same = inp.neighbours_same_intent or 0
        sim = inp.best_similarity
        if total == 0 or sim is None:
            adj["retrieval"] = -RETRIEVAL_WEAK_PENALTY
            why.append(f"no similar resolved tickets found ({adj['retrieval']:+.2f})")
        else:
            share = same / total
            if share >= 0.6 and sim >= STRONG_SIMILARITY:
                # no bonus: a bonus could lift an uncalibrated number over a calibrated threshold
                why.append(
                    f"retrieval agrees: {same}/{total} similar tickets share the intent, "
                    f"best similarity {sim:.2f} (no change: adjustments only lower the score)"
                )
            elif share < 0.4:
                adj["retrieval"] = -RETRIEVAL_DISAGREE_PENALTY
                why.append(
                    f"retrieval disagrees: only {same}/{total} similar tickets share the intent "
                    f"({adj['retrieval']:+.2f})"
                )
            elif sim < WEAK_SIMILARITY:
                adj["retrieval"] = -RETRIEVAL_WEAK_PENALTY
                why.append(f"weak evidence: best similarity {sim:.2f} ({adj['retrieval']:+.2f})")

    if inp.sentiment in SENTIMENT_PENALTY:
        adj["sentiment"] = -SENTIMENT_PENALTY[inp.sentiment]
        why.append(f"{inp.sentiment} customer ({adj['sentiment']:+.2f})")
    if inp.priority in PRIORITY_PENALTY:
        adj["priority"] = -PRIORITY_PENALTY[inp.priority]
        why.append(f"priority {inp.priority} ({adj['priority']:+.2f})")
    if inp.escalation_signals:
        adj["signals"] = -min(SIGNAL_PENALTY_CAP, SIGNAL_PENALTY * len(inp.escalation_signals))
        names = ", ".join(sorted(set(inp.escalation_signals)))
        why.append(f"escalation signals: {names} ({adj['signals']:+.2f})")
    if inp.sensitive_flags:
        adj["sensitive"] = -SENSITIVE_PENALTY
        names = ", ".join(sorted(set(inp.sensitive_flags)))
        why.append(f"sensitive topic: {names} ({adj['sensitive']:+.2f})")
    if inp.language_supported is False:
        adj["language"] = -LANGUAGE_PENALTY
        why.append(f"unsupported language {inp.language or 'unknown'!r} ({adj['language']:+.2f})")
    return adj, why


def language_undetected(language: str | None) -> bool:
    """No language could be detected (too short, mixed, gibberish): not evidence of English."""
    return language is None or language.strip().lower() in ("", "unknown", "und")


def _contradicting_neighbours(inp: ConfidenceInputs) -> bool:
    """Very similar resolved tickets mostly carry a different intent: the classifier is likely wrong."""
    total = inp.neighbours_total or 0
    if total == 0 or inp.best_similarity is None or inp.best_similarity < STRONG_SIMILARITY:
        return False
    return (inp.neighbours_same_intent or 0) / total < 0.4


def _caps(inp: ConfidenceInputs, auto_threshold: float | None, th: Thresholds) -> list[tuple[Route, str]]:
    """Hard safety rules: (highest route allowed, why). Numbers never override these."""
    caps: list[tuple[Route, str]] = []
    auto_min_similarity = th.auto_min_similarity
    if th.source != "calibrated":
        caps.append((
            "suggest",
            f"auto-resolve thresholds are not calibrated for this model (source: {th.source}): "
            "never auto-resolve until the bundle is calibrated (python -m src.graph.calibrate)",
        ))
    for failure in inp.failures:
        caps.append(("escalate", f"failed step -> human: {failure}"))
    if not inp.classifier_valid or inp.intent is None:
        caps.append(("escalate", "no valid intent prediction (empty or unreadable ticket)"))
    if inp.injection:
        caps.append(("escalate", "possible prompt injection in ticket text: never auto-resolve"))
    for flag in sorted(set(inp.sensitive_flags)):
        route: Route = "escalate" if flag in ESCALATE_FLAGS else "suggest"
        caps.append((route, f"sensitive flag {flag}: never auto-resolve"))
    if inp.priority == "P1":
        caps.append(("escalate", "P1 priority: escalation team"))
    if inp.escalation_risk:
        caps.append(("escalate", "analysis flags escalation risk"))
    if inp.best_similarity is not None and inp.best_similarity < auto_min_similarity:
        caps.append((
            "suggest",
            f"unfamiliar ticket: best similarity {inp.best_similarity:.2f} to a resolved ticket "
            f"< {auto_min_similarity:.2f}: never auto-resolve",
        ))
    if th.ood and th.ood.get("max") is not None and inp.classifier_valid:
        if inp.ood_score is None:
            caps.append(("suggest", "out-of-distribution score missing for a bundle that has a guard: "
                                    "never auto-resolve"))
        elif inp.ood_score > float(th.ood["max"]):
            caps.append((
                "suggest",
                f"unlike the training tickets: {th.ood.get('score')} {inp.ood_score:.4g} > "
                f"{float(th.ood['max']):.4g} (out-of-distribution guard): never auto-resolve",
            ))
    if inp.neighbours_total == 0:
        caps.append((
            "suggest",
            "no similar resolved ticket found (empty or new knowledge base): the out-of-distribution "
            "guard cannot vouch for this ticket, never auto-resolve",
        ))
    if _contradicting_neighbours(inp):
        caps.append(("suggest", "similar resolved tickets mostly have another intent: a human checks it"))
    if inp.sentiment == "angry":
        caps.append(("suggest", "angry customer: never auto-resolve"))
    if inp.escalation_signals:
        caps.append(("suggest", "rule-based escalation signals: never auto-resolve"))
    if inp.analysis_reliable is False:
        caps.append(("suggest", "analysis output was not reliable: a human reviews"))
    if inp.analysis_uncertain:
        caps.append(("suggest", "analysis heads unsure whether the ticket is routine: a human reviews"))
    if inp.draft_reliable is False:
        caps.append(("suggest", "draft was not reliable: a human reviews"))
    if inp.language_supported is False:
        caps.append(("suggest", f"language {inp.language or 'unknown'!r} not supported: a human reviews"))
    elif language_undetected(inp.language):
        caps.append(("suggest", "language not detected (too short or mixed): never auto-resolve"))
    if auto_threshold is None:
        caps.append(
            ("suggest", f"intent {inp.intent!r} has no auto-resolve threshold: never auto-resolves")
        )
    return caps


def score(inputs: ConfidenceInputs, thresholds: Thresholds | Mapping[str, Any] | None = None) -> Score:
    """Combine the factors into a score, pick the route, and explain both.

    ``value > auto`` -> auto_resolve, ``suggest <= value <= auto`` -> suggest, below -> escalate; then
    every hard cap that applies lowers the route (never raises it). ``value`` never exceeds the
    calibrated probability, so the calibrated threshold's guarantee covers every auto-resolve.
    """
    th = Thresholds.coerce(thresholds)
    auto_t, suggest_t = th.for_intent(inputs.intent)
    base = inputs.probability if inputs.classifier_valid else 0.0
    adj, why = _adjustments(inputs)
    adj = {k: min(0.0, v) for k, v in adj.items()}  # invariant: heuristics only ever lower the score
    value = min(base, _clip(base + sum(adj.values())))

    state = "calibrated thresholds" if th.source == "calibrated" else f"{th.source} (uncalibrated) thresholds"
    reasons = [f"calibrated probability {base:.4g} for intent {inputs.intent!r} ({state})", *why]
    if adj:
        reasons.append(
            f"score {value:.4g} = calibrated probability - uncalibrated hand-set penalties "
            f"({', '.join(sorted(adj))}): heuristics that can only lower the route"
        )
    if auto_t is not None and value > auto_t:
        route: Route = "auto_resolve"
        reasons.append(f"score {value:.4g} > auto-resolve threshold {auto_t:.4g}")
    elif value >= suggest_t:
        route = "suggest"
        # 4 significant digits: a calibrated 0.9973 must not read as "1.00" to a reviewer
        limit = "(no auto-resolve threshold)" if auto_t is None else f"<= auto-resolve threshold {auto_t:.4g}"
        reasons.append(f"score {value:.4g} {limit}: suggest")
    else:
        route = "escalate"
        reasons.append(f"score {value:.4g} < suggest threshold {suggest_t:.4g}: escalate")

    for cap_route, why_cap in _caps(inputs, auto_t, th):
        if ROUTE_ORDER[cap_route] < ROUTE_ORDER[route]:
            route = cap_route
            reasons.append(f"{why_cap} (route capped at {cap_route})")
        else:
            reasons.append(why_cap)
    return Score(
        value=round(value, 6),
        route=route,
        reasons=reasons,
        adjustments={k: round(v, 4) for k, v in adj.items()},
        auto_threshold=auto_t,
        suggest_threshold=suggest_t,
        calibrated_probability=round(base, 6),
        thresholds_source=th.source,
        uncalibrated=sorted(adj),
    )
