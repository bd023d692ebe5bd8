"""``TRIAGE_SERVICE_FACTORY=tests.board.fake_board:build``: the real graph, checkpointer and audit store
with fake models whose answers depend on the ticket text, so one service produces every route.

``PROBABILITY`` maps a word to the classifier's calibrated probability for texts containing it
(0.97 auto-resolves, 0.75 suggests, 0.3 escalates; default 0.75); the fake analysis calls a text
with "furious" angry and P2, and the fake draft answers per intent.
"""

from __future__ import annotations

from typing import Any

from src.audit.store import open_audit_store
from src.config import Settings
from src.graph.checkpoint import make_checkpointer
from src.graph.service import TriageService
from src.llm.providers.fake import FakeProvider
from src.llm.types import Draft
from tests.graph.fakes_graph import FakeClassifier, make_deps, neutral_analysis

PROBABILITY: dict[str, float] = {}
DEFAULT_PROBABILITY = 0.75
DRAFTS = {
    "cancel_order": "Hello {name}, your order has been cancelled and you will not be charged.",
    "track_order": "Hello {name}, your parcel is on its way; the tracking link is in your account.",
    "get_refund": "Hello {name}, we have started your refund; it reaches your card within 5 working days.",
    "complaint": "Hello {name}, we are sorry about this. A colleague will look into it today.",
}


class WordClassifier(FakeClassifier):
    def predict(self, texts: list[str], batch_size: int = 64) -> list[Any]:
        out = []
        for text in texts:
            low = text.lower()
            self.probability = next((p for w, p in PROBABILITY.items() if w in low), DEFAULT_PROBABILITY)
            out += super().predict([text], batch_size)
        return out


def _analysis(system: str, user: str, schema: dict) -> dict:
    if "furious" in user.lower():
        return neutral_analysis(sentiment="angry", priority="P2", summary="angry customer")
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
