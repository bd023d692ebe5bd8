"""What the graph's nodes call, behind small protocols, in one container.

Nodes stay thin and testable: unit tests build a ``Deps`` with fakes (a scripted classifier, an
in-memory knowledge base, ``FakeProvider``), production builds it once per process with
``Deps.from_settings`` from the real packages. Nothing is loaded at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from src.audit.store import AuditStore
from src.classifier.types import Prediction
from src.config import Settings, get_settings
from src.graph.confidence import Thresholds
from src.graph.routing import RoutingConfig, load_routing
from src.llm.types import Analysis, Draft
from src.retrieval.types import Hit
from src.text.types import Preprocessed, Signal


class StartupError(RuntimeError):
    """The service cannot start (missing bundle, bad routing config ...): a clear message for the CLI."""


@runtime_checkable
class Classifier(Protocol):
    labels: list[str]
    version: str
    thresholds: dict

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]: ...


@runtime_checkable
class KnowledgeBaseLike(Protocol):
    def search(
        self, text: str, k: int | None = None, intent: str | None = None, category: str | None = None,
        min_score: float | None = None,
    ) -> list[Hit]: ...


Analyzer = Callable[[str, Any], Analysis]  # (ticket_text, provider) -> Analysis
Drafter = Callable[[str, Analysis, list[Hit], Any], Draft]  # (text, analysis, hits, provider) -> Draft
# (text, intent, hits) -> a vetted resolution as the draft, or None (then the LLM drafts)
TemplateDrafter = Callable[[str, str | None, list[Hit]], Draft | None]
Preprocessor = Callable[[str], Preprocessed]
SignalDetector = Callable[[str], list[Signal]]
InjectionDetector = Callable[[str], list[str]]  # names of injection patterns found (empty = none)


def _default_analyze(text: str, provider: Any) -> Analysis:
    from src.llm.analyze import analyze

    return analyze(text, provider)


def _default_draft(text: str, analysis: Analysis, hits: list[Hit], provider: Any) -> Draft:
    from src.llm.draft import draft

    return draft(text, analysis, hits, provider)


def _default_signals(text: str) -> list[Signal]:
    from src.text.signals import escalation_signals

    return escalation_signals(text)


def _default_injection(text: str) -> list[str]:
    from src.llm.injection import looks_like_injection

    return looks_like_injection(text)


def prompt_versions(heads: Any | None = None, template: bool = False) -> dict[str, str]:
    """Versions of the prompts, the analysis heads and the template drafter (recorded in every Decision)."""
    from src.llm.prompts import ANALYZE_PROMPT_VERSION, DRAFT_PROMPT_VERSION
    from src.llm.template_draft import TEMPLATE_VERSION

    out = {"analyze": ANALYZE_PROMPT_VERSION, "draft": DRAFT_PROMPT_VERSION}
    if heads is not None:
        out["heads"] = heads.version
    if template:
        out["template"] = TEMPLATE_VERSION
    return out


def load_heads(settings: Settings, notes: list[str]) -> Any | None:
    """The analysis heads (src/llm/cascade.py) if configured and made for this embedding model."""
    if settings.analysis_heads_path is None or str(settings.analysis_heads_path) in ("", "."):
        return None
    from src.llm.cascade import AnalysisHeads, HeadsError
    from src.retrieval.embedder import canonical_model_id

    try:
        return AnalysisHeads.load(settings.analysis_heads_path, canonical_model_id(settings.embedding_model))
    except HeadsError as exc:
        notes.append(f"analysis heads off, every ticket's analysis asks the LLM: {exc}")
        return None


def template_drafter(settings: Settings) -> TemplateDrafter | None:
    """Template drafts with the configured similarity, constants and draft checks (None when off)."""
    if not settings.template_drafts:
        return None
    from src.llm.template_draft import template_draft

    def drafter(text: str, intent: str | None, hits: list[Hit]) -> Draft | None:
        return template_draft(
            text, intent, hits, min_similarity=settings.template_min_similarity,
            constants=settings.draft_placeholder_values, allowed_values=settings.draft_allowed_values,
            min_agreement=settings.draft_min_agreement,
        )  # fmt: skip

    return drafter


@dataclass
class Deps:
    settings: Settings
    classifier: Classifier | None
    knowledge_base: KnowledgeBaseLike | None
    provider: Any | None  # src.llm.providers.base.LLMProvider
    audit: AuditStore
    routing: RoutingConfig
    analyze: Analyzer = _default_analyze
    draft: Drafter = _default_draft
    signals: SignalDetector = _default_signals
    injection: InjectionDetector = _default_injection
    preprocess: Preprocessor | None = None
    heads: Any | None = None  # src.llm.cascade.AnalysisHeads: the LLM only where they are unsure
    template: TemplateDrafter | None = None  # close resolution as the draft before any LLM draft
    shadow: Any | None = None  # src.graph.shadow.ShadowScorer: a candidate bundle scoring without acting
    prompt_versions: dict[str, str] = field(default_factory=dict)
    startup_notes: list[str] = field(default_factory=list)

    def thresholds(self) -> Thresholds:
        """The bundle's thresholds with ``TRIAGE_AUTO_THRESHOLD`` / ``TRIAGE_SUGGEST_THRESHOLD`` as floors.

        The stricter number wins everywhere (global and per-intent): a setting can make the router
        more cautious than the calibration, never less. ``source`` comes from the bundle only:
        thresholds nobody calibrated for this model (``default``/``stale``) cap the route at suggest.
        """
        s = self.settings
        bundle = dict(getattr(self.classifier, "thresholds", None) or {})

        def stricter(value: Any, floor: float) -> float | None:
            return None if value is None else max(float(value), floor)

        auto = stricter(bundle.get("auto_resolve", s.auto_threshold), s.auto_threshold)
        per_intent = {}
        for intent, row in (bundle.get("per_intent") or {}).items():
            entry = {**row, "auto_resolve": stricter(row.get("auto_resolve", auto), s.auto_threshold)}
            if row.get("suggest") is not None:
                entry["suggest"] = stricter(row["suggest"], s.suggest_threshold)
            per_intent[intent] = entry
        return Thresholds.coerce({
            "auto_resolve": auto,
            "suggest": stricter(bundle.get("suggest", s.suggest_threshold), s.suggest_threshold),
            "auto_min_similarity": s.auto_min_similarity,
            "per_intent": per_intent,
            "source": bundle.get("source") or "default",
            "calibration": bundle.get("calibration"),
            "ood": bundle.get("ood"),
        })

    def run_preprocess(self, raw: str) -> Preprocessed:
        if self.preprocess is not None:
            return self.preprocess(raw)
        from src.text.preprocess import preprocess

        langs = self.settings.supported_languages
        return preprocess(raw, max_chars=self.settings.max_ticket_chars, supported_languages=langs)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Deps:
        """The real wiring. A missing classifier bundle or a bad routing file is a StartupError;
        an unavailable LLM or knowledge base is not (those steps fail closed per ticket)."""
        settings = settings or get_settings()
        notes: list[str] = []
        from src.classifier.inference import IntentClassifier

        try:
            classifier = IntentClassifier.load(settings.model_dir, threads=settings.classifier_threads)
        except Exception as exc:  # noqa: BLE001 - any bundle problem is a startup error with its reason
            raise StartupError(
                f"cannot load the classifier bundle at {settings.model_dir} (set TRIAGE_MODEL_DIR): {exc}"
            ) from exc
        try:
            routing = load_routing(settings=settings, labels=list(classifier.labels))
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        source = (classifier.thresholds or {}).get("source") or "default"
        if source != "calibrated":
            notes.append(
                f"auto-resolve is OFF: the bundle's thresholds are not calibrated for this model "
                f"(source: {source}); every ticket goes to a human (suggest at most) until you run "
                f"`python -m src.graph.calibrate --model {settings.model_dir}`"
            )
        unrouted = sorted(set(classifier.labels) - set(routing.intents))
        if unrouted:
            notes.append(f"intents without a route go to {routing.default_team}: {', '.join(unrouted)}")

        knowledge_base: KnowledgeBaseLike | None
        try:
            from src.retrieval.store import KnowledgeBase

            knowledge_base = KnowledgeBase.from_settings(settings)  # lazy: problems surface per search
        except Exception as exc:  # noqa: BLE001 - retrieval down is a per-ticket 'no evidence' failure
            knowledge_base = None
            notes.append(f"knowledge base unavailable: {exc}")
        provider: Any | None
        try:
            from src.llm.providers import get_provider

            provider = get_provider(settings)
        except Exception as exc:  # noqa: BLE001 - LLM down: analyze/draft fail closed per ticket
            provider = None
            notes.append(f"LLM provider unavailable: {exc}")
        heads = load_heads(settings, notes)
        template = template_drafter(settings)
        from src.audit.store import open_audit_store

        try:
            audit = open_audit_store(settings)
        except Exception as exc:  # noqa: BLE001
            raise StartupError(f"cannot open the audit store: {exc}") from exc
        from src.graph.shadow import load_shadow

        shadow = load_shadow(settings, audit, notes)
        return cls(
            settings=settings,
            classifier=classifier,
            knowledge_base=knowledge_base,
            provider=provider,
            audit=audit,
            routing=routing,
            prompt_versions=prompt_versions(heads, template is not None),
            startup_notes=notes,
            heads=heads,
            template=template,
            shadow=shadow,
        )
