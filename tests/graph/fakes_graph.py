"""Fakes for graph tests: a scripted classifier and an in-memory knowledge base (same protocols)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from src.audit.outbox import OutboxAuditStore
from src.audit.sqlite_store import SqliteAuditStore
from src.classifier.types import Prediction
from src.config import Settings
from src.graph.deps import Deps
from src.graph.routing import DEFAULT_ROUTING_FILE, load_routing
from src.llm.providers.fake import FakeProvider
from src.llm.types import Analysis, Draft
from src.retrieval.types import Hit, ResolvedTicket, RetrievalUnavailable, SearchResult

LABELS = ["cancel_order", "track_order", "get_refund", "complaint"]


def config_path_for_tests() -> Path:
    return DEFAULT_ROUTING_FILE


def keyword_label(text: str) -> str:
    low = text.lower()
    return next((lab for lab in LABELS if lab.split("_")[0] in low), "complaint")


class FakeClassifier:
    """Keyword -> intent with a fixed calibrated probability; ``fail`` raises like a broken bundle."""

    version = "fake-bundle-1"
    labels = LABELS

    def __init__(self, probability: float = 0.97, fail: Exception | None = None, delay_s: float = 0.0):
        self.probability = probability
        self.fail = fail
        self.delay_s = delay_s
        self.thresholds: dict = {"auto_resolve": 0.85, "suggest": 0.60, "per_intent": {},
                                 "source": "calibrated"}

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        out = []
        for t in texts:
            low = t.lower()
            label = keyword_label(low)
            p = self.probability
            rest = (1 - p) / (len(LABELS) - 1)
            probs = {lab: (p if lab == label else rest) for lab in LABELS}
            ent = float(-sum(v * np.log(v) for v in probs.values() if v > 0) / np.log(len(LABELS)))
            out.append(Prediction(label=label, confidence=p, probs=probs, top3=[(label, p)], margin=p - rest,
                                  entropy=ent))
        return out


class FakeKnowledgeBase:
    def __init__(self, intent: str | None = None, similarity: float = 0.9, down: bool = False,
                 unfiltered_intent: str | None = None) -> None:
        self.intent = intent
        self.unfiltered_intent = unfiltered_intent
        self.similarity = similarity
        self.down = down
        self.calls: list[dict] = []

    def search(self, text: str, k: int | None = None, intent: str | None = None, category: str | None = None,
               min_score: float | None = None) -> list[Hit]:
        self.calls.append({"text": text, "k": k, "intent": intent})
        if self.down:
            raise RetrievalUnavailable("qdrant is down")
        if intent is None:
            label = self.unfiltered_intent or self.intent or keyword_label(text)
        else:
            label = self.intent or intent
        hits = [
            Hit(id=f"kb-{i}", score=self.similarity, similarity=self.similarity - i * 0.01,
                ticket=ResolvedTicket(id=f"kb-{i}", text=f"resolved {label} {i}", intent=label,
                                      response="Here is how to do that."))
            for i in range(k or 3)
        ]
        return SearchResult(hits, filtered=intent is not None)


def neutral_analysis(**kw) -> dict:
    base = {"sentiment": "neutral", "priority": "P3", "escalation_risk": False, "reason": "routine",
            "language": "en", "summary": "customer request", "sensitive": {}}
    base.update(kw)
    return base


def fake_analyze(text: str, provider: FakeProvider) -> Analysis:
    """Stands in for src.llm.analyze.analyze: one JSON call through the (fake) provider."""
    data, usage = provider.complete_json("analyze", text, {})
    return Analysis.model_validate({**data, "usage": usage})


def fake_draft(text: str, analysis: Analysis, hits: list[Hit], provider: FakeProvider) -> Draft:
    reply, usage = provider.complete_text("draft", text)
    ids = [h.id for h in hits]
    return Draft(text=reply, evidence_ids=ids, usage=usage, reliable="UNRELIABLE" not in reply)


def make_deps(
    tmp_path: Path,
    *,
    classifier: FakeClassifier | None = None,
    kb: FakeKnowledgeBase | None = None,
    provider: FakeProvider | None = None,
    real_llm_funcs: bool = False,
    **settings_kw,
) -> Deps:
    settings = Settings(
        sqlite_path=tmp_path / "audit.db",
        checkpoint_sqlite_path=tmp_path / "ckpt.db",
        outbox_dir=tmp_path / "outbox",
        node_timeout_s=settings_kw.pop("node_timeout_s", 5.0),
        **settings_kw,
    )
    provider = provider or FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    routing = load_routing(config_path_for_tests())
    routing.intents = {k: v for k, v in routing.intents.items() if k in LABELS}
    deps = Deps(
        settings=settings,
        classifier=classifier or FakeClassifier(),
        knowledge_base=kb or FakeKnowledgeBase(),
        provider=provider,
        audit=OutboxAuditStore(SqliteAuditStore(settings.sqlite_path), settings.outbox_dir),
        routing=routing,
        prompt_versions={"analyze": "fake-a", "draft": "fake-d"},
    )
    if not real_llm_funcs:
        deps.analyze = fake_analyze
        deps.draft = fake_draft
    return deps
