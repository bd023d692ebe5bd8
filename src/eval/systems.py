"""The systems under test, each a thin adapter from a ticket to a routed ``SystemOutput``.

All route with the same pure rules (``src.graph.confidence.score``) and the same bundle thresholds,
so differences in the report come from what each system *knows*, not from different cut-offs:
zero-shot (the LLM alone), classifier-only, classifier-rules (+ the rule signals, injection patterns
and language check, no LLM, no retrieval: what the LLM and retrieval add is the hybrid's lead over
it) and hybrid (the graph). Expected failures (LLM errors, invalid output) become an escalation,
as in production, and are reported as failure codes.
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

SYSTEM_NAMES = ("zero-shot", "classifier-only", "classifier-rules", "hybrid")


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


class ClassifierRulesSystem(ClassifierOnlySystem):
    """Classifier + thresholds + the graph's rule signals, injection patterns and language check.

    The text is cleaned and PII-masked like the graph's preprocess step; no LLM, no retrieval.
    """

    name = "classifier-rules"

    def __init__(self, classifier: Classifier, thresholds: Thresholds | Mapping[str, Any] | None = None,
                 supported_languages: tuple[str, ...] = ("en",)) -> None:  # fmt: skip
        super().__init__(classifier, thresholds)
        self.supported_languages = supported_languages

    def run(self, ticket: BenchTicket) -> SystemOutput:
        from src.llm.injection import looks_like_injection
        from src.text.preprocess import preprocess
        from src.text.signals import escalation_signals

        pre = preprocess(ticket.text)
        if not pre.valid:
            inputs = ConfidenceInputs(intent=None, probability=0.0, margin=0.0, entropy=1.0,
                                      classifier_valid=False, language=pre.language)  # fmt: skip
            s = score(inputs, self.thresholds)
            return SystemOutput(pred=None, score=s.value, route=s.route, reasons=s.reasons)
        pred = self.classifier.predict([pre.masked_text], batch_size=1)[0]
        signals = escalation_signals(pre.text)
        inputs = prediction_inputs(pred, pre.language).model_copy(update={
            "escalation_signals": [s.name for s in signals],
            "sensitive_flags": sorted({s.sensitive_flag for s in signals if s.sensitive_flag}),
            "escalation_risk": bool(signals),  # as src.llm.combine does with a rule signal
            "injection": bool(looks_like_injection(pre.text)),
            "language_supported": None if pre.language is None else pre.language in self.supported_languages,
        })  # fmt: skip
        s = score(inputs, self.thresholds)
        reasons = s.reasons if pred.reason is None else [pred.reason, *s.reasons]
        return SystemOutput(pred=pred.label if pred.valid else None, confidence=pred.confidence,
                            score=s.value, route=s.route, reasons=reasons)  # fmt: skip


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
            return SystemOutput(pred=None, score=s.value, route=s.route, reasons=s.reasons, llm_calls=1,
                                failure_codes=[f"zero-shot:{exc.kind}"])
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


def failure_code(failure: str) -> str:
    """``"node: kind: message"`` (the graph's failure record, ``nodes.failure``) -> ``"node:kind"``."""
    parts = failure.split(": ", 2)
    return f"{parts[0]}:{parts[1] if len(parts) > 2 else 'failed'}"


# steps that run after the decision is audited: their failures cannot have caused the route
AFTER_DECISION = ("suggest_draft:",)


class HybridSystem:
    """The full graph (``TriageService.run``): classifier + analysis + retrieval + draft + routing."""

    name = "hybrid"

    def __init__(self, service: TriageRunner, ticket_factory: Any, id_prefix: str = "bench",
                 min_agreement: float = 0.25) -> None:  # fmt: skip
        self.service = service
        self.ticket_factory = ticket_factory  # TicketIn (injected so tests need no graph package)
        self.id_prefix = id_prefix
        self.min_agreement = min_agreement

    def _details(self, ticket_id: str | None, ticket: BenchTicket) -> dict[str, Any]:
        """What the graph state says about how the ticket was handled (analysis/draft sources, draft
        grounding, time spent after the decision); empty when the service keeps no graph state."""
        graph = getattr(self.service, "graph", None)
        if graph is None or ticket_id is None:
            return {}
        from src.eval.draft_quality import grounding

        state = graph.get_state({"configurable": {"thread_id": ticket_id}}).values
        analysis, draft = state.get("analysis") or {}, state.get("draft") or {}
        out: dict[str, Any] = {
            "analysis_source": analysis.get("source"),
            "analysis_uncertain": analysis.get("uncertain"),
            "draft_source": draft.get("source") if draft else None,
            "after_decision_s": round((state.get("latency_ms") or {}).get("suggest_draft", 0.0) / 1000, 4),
        }
        if draft.get("text"):
            masked = (state.get("pre") or {}).get("masked_text") or ticket.text
            out["draft"] = draft["text"]
            out["grounding"] = grounding(draft["text"], draft.get("evidence_ids") or [], masked,
                                         state.get("hits") or [], self.min_agreement)  # fmt: skip
        return out

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
        failures = [str(f) for f in decision.get("failures") or [] if not str(f).startswith(AFTER_DECISION)]
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
            failure_codes=list(dict.fromkeys(failure_code(f) for f in failures)),
            details=self._details(decision.get("ticket_id"), ticket),
        )
