"""Clarification and shadow scoring inside the real graph (fake models), and the bad-example mark
through ``TriageService.resume``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.classifier.types import Prediction
from src.graph.checkpoint import sqlite_checkpointer
from src.graph.clarify import CLARIFY_REASON
from src.graph.service import TicketIn, TriageService
from src.graph.shadow import ShadowScorer, ShadowStore
from tests.graph.fakes_graph import LABELS, FakeClassifier, make_deps


class SplitClassifier(FakeClassifier):
    """Every text reads as two intents at once (probabilities given), the rest of the mass spread."""

    def __init__(self, first: tuple[str, float], second: tuple[str, float], version: str = "split-1") -> None:
        super().__init__()
        self.first, self.second, self.version = first, second, version

    def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
        (a, pa), (b, pb) = self.first, self.second
        rest = [lab for lab in LABELS if lab not in (a, b)]
        probs = {a: pa, b: pb, **{lab: (1 - pa - pb) / len(rest) for lab in rest}}
        top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
        ent = float(-sum(v * np.log(v) for v in probs.values() if v > 0) / np.log(len(LABELS)))
        return [Prediction(label=a, confidence=pa, probs=probs, top3=top, margin=pa - pb, entropy=ent)
                for _ in texts]


def _service(tmp_path: Path, classifier: FakeClassifier, **kw) -> TriageService:
    deps = make_deps(tmp_path, classifier=classifier, **kw)
    return TriageService(deps, sqlite_checkpointer(tmp_path / "ckpt.db"))


def test_ambiguous_ticket_gets_a_clarifying_question_routed_as_suggest(tmp_path: Path) -> None:
    svc = _service(tmp_path, SplitClassifier(("get_refund", 0.46), ("cancel_order", 0.42)))
    out = svc.run(TicketIn(id="a-1", text="i want to get my money back or stop the thing i bought"))
    assert out["route"] == "suggest" and out["status"] == "pending_review"
    assert "get refund" in out["draft"] and "cancel order" in out["draft"] and "?" in out["draft"]
    assert any(r.startswith(CLARIFY_REASON) for r in out["reasons"])
    row = svc.deps.audit.get_decision("api:a-1")
    assert row["route"] == "suggest" and row["draft"] == out["draft"]  # audited as decided


def test_a_rule_escalation_stays_an_escalation(tmp_path: Path) -> None:
    svc = _service(tmp_path, SplitClassifier(("get_refund", 0.46), ("cancel_order", 0.42)))
    out = svc.run(TicketIn(id="a-2", text="refund me or cancel it, otherwise my lawyer will sue you"))
    assert out["route"] == "escalate"
    assert not any(r.startswith(CLARIFY_REASON) for r in out["reasons"])


def test_two_intents_in_one_message(tmp_path: Path) -> None:
    class TwoParts(FakeClassifier):
        def predict(self, texts: list[str], batch_size: int = 64) -> list[Prediction]:
            out = []
            for t in texts:
                both = "cancel" in t and "refund" in t
                label = "cancel_order" if "cancel" in t else "get_refund"
                top = [("cancel_order", 0.70), ("get_refund", 0.25)] if both else [(label, 0.95)]
                out.append(Prediction(label=top[0][0], confidence=top[0][1], probs=dict(top), top3=top,
                                      margin=top[0][1] - (top[1][1] if len(top) > 1 else 0), entropy=0.3))
            return out

    svc = _service(tmp_path, TwoParts())
    out = svc.run(TicketIn(id="a-3", text="Please cancel my order from Monday. Also I want a refund for the "
                                          "broken lamp I got last week."))
    assert out["route"] == "suggest" and "two things" in out["draft"]
    single = svc.run(TicketIn(id="a-4", text="Please cancel my order from Monday, it has not shipped."))
    assert not any(r.startswith(CLARIFY_REASON) for r in single["reasons"])


def test_shadow_candidate_scores_without_acting(tmp_path: Path) -> None:
    deps = make_deps(tmp_path, classifier=FakeClassifier(probability=0.75))
    candidate = SplitClassifier(("track_order", 0.9), ("complaint", 0.05), version="cand-7")
    deps.shadow = ShadowScorer(candidate, ShadowStore(deps.audit.db))
    svc = TriageService(deps, sqlite_checkpointer(tmp_path / "ckpt.db"))
    out = svc.run(TicketIn(id="s-1", text="I want to cancel my order please"))
    assert out["intent"] == "cancel_order"  # the serving classifier decided
    (row,) = ShadowStore(deps.audit.db).rows()
    assert (row["candidate_version"], row["candidate_intent"], row["serving_intent"]) == (
        "cand-7", "track_order", "cancel_order")
    assert row["serving_route"] == out["route"] and row["candidate_route"] in ("suggest", "escalate",
                                                                               "auto_resolve")
    svc.run(TicketIn(id="s-1", text="I want to cancel my order please"))  # a duplicate writes nothing new
    assert len(ShadowStore(deps.audit.db).rows()) == 1

    class Broken(FakeClassifier):
        version = "broken"

        def predict(self, texts, batch_size=64):  # noqa: ANN001, ANN201
            raise RuntimeError("candidate crashed")

    deps.shadow = ShadowScorer(Broken(), ShadowStore(deps.audit.db))
    out = svc.run(TicketIn(id="s-2", text="I want to cancel my order please"))
    assert out["status"] == "pending_review" and not any("shadow" in f for f in out["failures"])


def test_bad_example_mark_reaches_the_audit_log(tmp_path: Path) -> None:
    svc = _service(tmp_path, FakeClassifier(probability=0.75))
    out = svc.run(TicketIn(id="b-1", text="I want to cancel my order please"))
    svc.resume(out["ticket_id"], {"action": "respond", "text": "Done.", "by": "ana", "bad_example": True})
    (item,) = svc.deps.audit.review_log()
    assert item["bad_example"] is True and item["edited_draft"] == "Done."
