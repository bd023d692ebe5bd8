"""``TRIAGE_SERVICE_FACTORY=tests.board.fake_board:build``: the real graph, checkpointer and audit store
with fake models whose answers depend on the ticket text, so one service produces every route.

``PROBABILITY`` maps a word to the classifier's calibrated probability for texts containing it
(0.97 auto-resolves, 0.75 suggests; default 0.75, or 0.4 for a text with no intent keyword at all,
so a sentence of small talk never reads as a confident second intent). The fake analysis calls a
text with "furious" angry and one with "charged twice" an escalation risk (the router escalates
it); the fake draft answers per intent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from src.audit.store import open_audit_store
from src.classifier.types import Prediction
from src.config import Settings
from src.graph.checkpoint import make_checkpointer
from src.graph.service import TriageService
from src.llm.providers.fake import FakeProvider
from src.llm.types import Draft
from tests.graph.fakes_graph import LABELS, FakeClassifier, keyword_label, make_deps, neutral_analysis

PROBABILITY: dict[str, float] = {}
DEFAULT_PROBABILITY = 0.75
UNSURE = 0.4  # a text (or a part of one) without any intent keyword
DRAFTS = {
    "cancel_order": "Hello {name}, your order has been cancelled and you will not be charged.",
    "track_order": "Hello {name}, your parcel is on its way; the tracking link is in your account.",
    "get_refund": "Hello {name}, we have started your refund; it reaches your card within 5 working days.",
    "complaint": "Hello {name}, we are sorry about this. A colleague will look into it today.",
}


class WordClassifier(FakeClassifier):
    """The keyword classifier, with its probability by word and uneven alternatives (a real top 3)."""

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        out = []
        for text in texts:
            low = text.lower()
            known = any(lab.split("_")[0] in low for lab in LABELS)  # else a guess: unsure
            default = DEFAULT_PROBABILITY if known else UNSURE
            p = next((q for w, q in PROBABILITY.items() if w in low), default)
            label = keyword_label(low)
            others = [lab for lab in LABELS if lab != label]
            weights = (0.6, 0.25, 0.15) if p >= 0.5 else (0.4, 0.35, 0.25)  # the label stays the argmax
            probs = {label: p, **{lab: (1 - p) * w for lab, w in zip(others, weights, strict=True)}}
            top = sorted(probs.items(), key=lambda kv: -kv[1])
            entropy = float(-sum(v * np.log(v) for v in probs.values() if v > 0) / np.log(len(LABELS)))
            out.append(Prediction(label=label, confidence=p, probs=probs, top3=top[:3], margin=p - top[1][1],
                                  entropy=entropy))  # fmt: skip
        return out


def _analysis(system: str, user: str, schema: dict) -> dict:
    low = user.lower()
    if "furious" in low:
        return neutral_analysis(sentiment="angry", priority="P2", summary="angry customer")
    if "charged twice" in low:  # the analysis flags a risk: the router escalates
        return neutral_analysis(sentiment="frustrated", priority="P2", escalation_risk=True,
                                summary="double charge, repeated contact")  # fmt: skip
    return neutral_analysis(summary="customer request")


def _draft(text: str, analysis: Any, hits: list, provider: Any) -> Draft:
    intent = (hits[0].ticket.intent if hits else None) or "complaint"
    reply = DRAFTS.get(intent, DRAFTS["complaint"]).format(name="there")
    return Draft(text=reply, evidence_ids=[h.id for h in hits], reliable=True)


def build(settings: Settings) -> TriageService:
    provider = FakeProvider(json_responses=_analysis, text_responses="unused")
    deps = make_deps(settings.data_dir, classifier=WordClassifier(), provider=provider)
    deps.settings = settings
    deps.audit = open_audit_store(settings)
    deps.draft = _draft
    return TriageService(deps, make_checkpointer(settings))
