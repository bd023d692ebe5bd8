"""Clarification: an ambiguous ticket gets a clarifying question instead of a guess, routed as suggest.

Two kinds of ambiguity, both decided by pure rules on the classifier's own output:

- *between two intents*: the top two intents are close (margin below ``CLARIFY_MARGIN``) and together
  carry most of the probability (``TWO_INTENT_MASS``): the model cannot tell which one it is;
- *two intents in one message*: the message splits into parts (sentences, "and also" ...) and at least
  two parts are each classified confidently (``SEGMENT_MIN_PROB``) as different intents, both of which
  the whole message's top-3 also names, and no part is out of distribution for the bundle (a greeting
  or a signature gets a confident but meaningless label from a closed-set classifier: these two checks
  keep such parts from inventing a second intent).

Then the draft is a clarifying question (a template: no LLM call, nothing invented) and the route is
``suggest``, so a reviewer sends the question (or answers both) instead of anything auto-resolving on a
coin flip. An escalation that a hard rule demands (failures, injection, P1, legal / safety flags,
escalation risk, no valid prediction) stays an escalation: only a route that came from the numbers is
changed. The reason starts with ``CLARIFY_REASON`` so the knowledge-base feedback can tell an accepted
question from a resolution.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLARIFY_REASON = "ambiguous:"
CLARIFY_MARGIN = 0.20  # top-1 minus top-2 below this (the estimator's LOW_MARGIN)
TWO_INTENT_MASS = 0.70  # ... and top-1 + top-2 at least this: it is one of two intents
SEGMENT_MIN_PROB = 0.60  # each part of a two-part message must be this sure of its own intent
MIN_SEGMENT_WORDS = 3
MAX_SEGMENTS = 6
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+|;\s*|\b(?:and also|also|plus|as well as|another thing)\b[,:]?\s*"
                    r"|,?\s+and\s+(?=(?:i|can|could|please|how|what|where|when|why|my)\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Ambiguity:
    kind: str  # "between_two" | "two_intents"
    intents: tuple[str, str]
    detail: str


def between_two(prediction: dict[str, Any]) -> Ambiguity | None:
    """Top-2 close and together dominant (pure)."""
    top = [(str(k), float(v)) for k, v in prediction.get("top3") or []]
    if len(top) < 2:
        return None
    (a, pa), (b, pb) = top[0], top[1]
    if pa - pb < CLARIFY_MARGIN and pa + pb >= TWO_INTENT_MASS:
        return Ambiguity("between_two", (a, b), f"{a} {pa:.2f} vs {b} {pb:.2f}")
    return None


def segments(text: str) -> list[str]:
    """The message's parts that are long enough to carry an intent of their own (pure)."""
    parts = [p.strip(" ,.;:-") for p in _SPLIT.split(text or "") if p and p.strip()]
    return [p for p in parts if len(p.split()) >= MIN_SEGMENT_WORDS][:MAX_SEGMENTS]


def two_intents(text: str, classify: Callable[[list[str]], list[Any]], candidates: set[str],
                ood_max: float | None = None) -> Ambiguity | None:
    """Two parts of one message confidently about different intents among ``candidates`` (the whole
    message's top-3); parts beyond the bundle's out-of-distribution guard ``ood_max`` do not count."""
    parts = segments(text)
    if len(parts) < 2:
        return None
    best: dict[str, float] = {}
    for pred in classify(parts):
        ood = getattr(pred, "ood_score", None)
        unlike = ood_max is not None and ood is not None and ood > ood_max
        if getattr(pred, "valid", False) and pred.label in candidates and not unlike \
                and pred.confidence >= SEGMENT_MIN_PROB:
            best[pred.label] = max(best.get(pred.label, 0.0), float(pred.confidence))
    if len(best) < 2:
        return None
    (a, pa), (b, pb) = sorted(best.items(), key=lambda kv: -kv[1])[:2]
    return Ambiguity("two_intents", (a, b), f"one part reads as {a} ({pa:.2f}), another as {b} ({pb:.2f})")


def _name(intent: str) -> str:
    return intent.replace("_", " ").replace("-", " ").strip()


def question(amb: Ambiguity) -> str:
    """The clarifying question (template: nothing in it comes from the ticket but the intent names)."""
    a, b = (_name(x) for x in amb.intents)
    if amb.kind == "two_intents":
        return (f"Thanks for getting in touch. Your message asks about two things: {a} and {b}. "
                "Which one should we handle first? We will take care of both, one after the other.")
    return (f"Thanks for getting in touch. To make sure we help with the right thing: is your request "
            f"about {a}, or about {b}? A short reply is enough and we will take it from there.")


def _hard_escalation(state: dict[str, Any], deps: Any) -> bool:
    """Would the ticket escalate even with a certain prediction? Then a rule, not the numbers, decided."""
    from src.graph.confidence import score
    from src.graph.nodes import confidence_inputs

    sure = confidence_inputs(state, deps).model_copy(update={"probability": 1.0, "margin": 1.0,
                                                             "entropy": 0.0})  # fmt: skip
    return score(sure, deps.thresholds()).route == "escalate"


def clarify_update(state: dict[str, Any], deps: Any, result: dict[str, Any]) -> dict[str, Any]:
    """``{}`` or ``{"score": ..., "draft": ...}`` for an ambiguous ticket. Never raises."""
    from src.llm.types import Draft

    try:
        pred = state.get("prediction") or {}
        text = (state.get("pre") or {}).get("masked_text") or ""
        if not pred.get("valid") or not pred.get("label") or not text.strip():
            return {}
        amb = between_two(pred)
        if amb is None and deps.classifier is not None:
            top = {str(label) for label, _p in pred.get("top3") or []}
            guard = deps.thresholds().ood or {}
            amb = two_intents(text, deps.classifier.predict, top, guard.get("max"))
        if amb is None or (result.get("route") == "escalate" and _hard_escalation(state, deps)):
            return {}
        reason = (f"{CLARIFY_REASON} {amb.detail}: a clarifying question is drafted instead of a guess "
                  f"(route {result.get('route')} -> suggest)")
        score = {**result, "route": "suggest", "reasons": [*result.get("reasons", []), reason]}
        draft = Draft(text=question(amb), source="clarification", flags=[f"clarification: {amb.kind}"])
        return {"score": score, "draft": draft.model_dump(mode="json")}
    except Exception as exc:  # noqa: BLE001 - clarification is a nicety: the scored route stands
        print(f"triage: clarification check failed for {state.get('ticket_id')}: {exc}", file=sys.stderr)
        return {}
