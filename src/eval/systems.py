"""The three systems under test, each a thin adapter from a ticket to a routed ``SystemOutput``.

All three route with the same pure rules (``src.graph.confidence.score``) and the same bundle
thresholds, so differences in the report come from what each system *knows*, not from different
cut-offs. Expected failures (LLM errors, invalid output) become an escalation, as in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from src.classifier.types import Prediction
from src.eval.types import BenchTicket, SystemOutput
from src.eval.zero_shot import classify_zero_shot, implied_distribution
from src.graph.confidence import ConfidenceInputs, Thresholds, score
from src.text.language import detect_language

if TYPE_CHECKING:
    from src.llm.providers.base import LLMProvider

SYSTEM_NAMES = ("zero-shot", "classifier-only", "hybrid")


class Classifier(Protocol):
    """What classifier-only needs from ``IntentClassifier`` (a fake in unit tests)."""

    labels: list[str]
    thresholds: dict

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]: ...


class TriageRunner(Protocol):
    """What hybrid needs from ``TriageService``: one JSON-able decision per ticket."""

    def run(self, ticket: Any) -> dict: ...


def prediction_inputs(pred: Prediction, language: str | None = None) -> ConfidenceInputs:
    """Classifier fields (+ the detected language, as in production): analysis and retrieval are
    'not available' (None), not 'failed'. An undetected language caps the route, as in the graph."""
    return ConfidenceInputs(
        language=language,
        intent=pred.label,
        probability=min(1.0, max(0.0, pred.confidence)),
        margin=min(1.0, max(0.0, pred.margin)),
        entropy=min(1.0, max(0.0, pred.entropy)),
        ood_score=pred.ood_score,
        classifier_valid=pred.valid and pred.label is not None,
    )


class ClassifierOnlySystem:
    """Classifier + calibrated bundle thresholds, no LLM, no retrieval."""

    name = "classifier-only"

    def __init__(
        self, classifier: Classifier, thresholds: Thresholds | Mapping[str, Any] | None = None
    ) -> None:
        self.classifier = classifier
        self.thresholds = Thresholds.coerce(thresholds if thresholds is not None else classifier.thresholds)

    def run(self, ticket: BenchTicket) -> SystemOutput:
        pred = self.classifier.predict([ticket.text], batch_size=1)[0]
        s = score(prediction_inputs(pred, detect_language(ticket.text)), self.thresholds)
        reasons = s.reasons if pred.reason is None else [pred.reason, *s.reasons]
        return SystemOutput(
            pred=pred.label if pred.valid else None,
            confidence=pred.confidence,
            score=s.value,
            route=s.route,
            reasons=reasons,
        )


class ZeroShotSystem:
    """The LLM alone picks the intent (enum-constrained JSON) and self-reports a confidence."""

    name = "zero-shot"

    def __init__(
        self,
        provider: LLMProvider,
        labels: list[str],
        thresholds: Thresholds | Mapping[str, Any] | None = None,
    ) -> None:
        self.provider = provider
        self.labels = list(labels)
        self.thresholds = Thresholds.coerce(thresholds)

    def run(self, ticket: BenchTicket) -> SystemOutput:
        from src.llm.types import LLMError  # lazy: keeps this module importable without the llm package

        if not ticket.text.strip():
            inputs = ConfidenceInputs(
                intent=None, probability=0.0, margin=0.0, entropy=1.0, classifier_valid=False
            )
            s = score(inputs, self.thresholds)
            return SystemOutput(pred=None, score=s.value, route=s.route, reasons=["empty ticket", *s.reasons])
        try:
            result, usage = classify_zero_shot(self.provider, ticket.text, self.labels)
        except LLMError as exc:
            inputs = ConfidenceInputs(
                intent=None,
                probability=0.0,
                margin=0.0,
                entropy=1.0,
                classifier_valid=False,
                failures=[f"zero-shot LLM: {type(exc).__name__}: {exc}"],
            )
            s = score(inputs, self.thresholds)
            return SystemOutput(pred=None, score=s.value, route=s.route, reasons=s.reasons, llm_calls=1)
        margin, entropy = implied_distribution(result.confidence, len(self.labels))
        inputs = ConfidenceInputs(
            language=detect_language(ticket.text),
            intent=result.intent if result.valid else None,
            probability=result.confidence,
            margin=margin,
            entropy=entropy,
            classifier_valid=result.valid,
        )
        s = score(inputs, self.thresholds)
        reasons = s.reasons if result.reason is None else [f"invalid LLM output: {result.reason}", *s.reasons]
        return SystemOutput(
            pred=result.intent if result.valid else None,
            confidence=result.confidence,
            score=s.value,
            route=s.route,
            reasons=reasons,
            llm_calls=usage.calls,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            cost_usd=usage.cost_usd,
        )


def usage_totals(usage: Any) -> dict[str, float]:
    """Sum LLM usage from a decision's ``usage``: totals dict (``calls`` a count or the per-call list),
    a list of Usage-like dicts, or a per-step mapping of them."""
    totals = {"calls": 0.0, "tokens_in": 0.0, "tokens_out": 0.0, "cost_usd": 0.0}
    if usage is None:
        return totals
    items: list[Any]
    if isinstance(usage, list):
        items = usage
    elif isinstance(usage, Mapping) and any(
        k in usage for k in ("tokens_in", "calls", "llm_calls", "cost_usd")
    ):
        items = [usage]
    elif isinstance(usage, Mapping):
        items = [v for v in usage.values() if isinstance(v, Mapping)]  # per-step {"analyze": {...}, ...}
    else:
        items = [usage]
    for item in items:
        d = item.model_dump() if hasattr(item, "model_dump") else item
        if not isinstance(d, Mapping):
            continue
        calls = d.get("calls", d.get("llm_calls", 1 if d.get("tokens_in") else 0))
        totals["calls"] += float(
            len(calls) if isinstance(calls, list) else (calls or 0)
        )  # list = per-call log
        totals["tokens_in"] += float(d.get("tokens_in", 0) or 0)
        totals["tokens_out"] += float(d.get("tokens_out", 0) or 0)
        totals["cost_usd"] += float(d.get("cost_usd", 0) or 0)
    return totals


class HybridSystem:
    """The full graph (``TriageService.run``): classifier + analysis + retrieval + draft + routing."""

    name = "hybrid"

    def __init__(self, service: TriageRunner, ticket_factory: Any, id_prefix: str = "bench") -> None:
        self.service = service
        self.ticket_factory = ticket_factory  # TicketIn (injected so tests need no graph package)
        self.id_prefix = id_prefix

    def run(self, ticket: BenchTicket) -> SystemOutput:
        decision = self.service.run(
            self.ticket_factory(id=f"{self.id_prefix}-{ticket.id}", text=ticket.text, channel="benchmark")
        )
        usage = usage_totals(decision.get("usage"))
        intent = decision.get("intent")
        if isinstance(intent, Mapping):  # tolerate {"label": ..., "confidence": ...}
            intent = intent.get("label")
        conf = decision.get("confidence")
        conf_value = float(conf.get("value", 0.0)) if isinstance(conf, Mapping) else float(conf or 0.0)
        model_conf = decision.get("intent_probability")
        model_conf = conf_value if model_conf is None else model_conf
        route = decision.get("route")
        if route not in ("auto_resolve", "suggest", "escalate"):
            route = "escalate"
        return SystemOutput(
            pred=intent if isinstance(intent, str) else None,
            confidence=float(model_conf or 0.0),
            score=conf_value,
            route=route,
            reasons=[str(r) for r in decision.get("reasons", [])],
            llm_calls=int(usage["calls"]),
            tokens_in=int(usage["tokens_in"]),
            tokens_out=int(usage["tokens_out"]),
            cost_usd=usage["cost_usd"],
        )
