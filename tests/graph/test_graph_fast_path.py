"""The fast path (#12): analysis heads before the LLM, route before drafting, template drafts.

Fakes for the models (tests/graph/fakes_graph.py) and small real heads on 2-d "embeddings":
[1, 0] reads as routine, [0, 1] as angry/P1/risky, [0.6, 0.4] as unsure (leaning routine).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from fakes_graph import FakeClassifier, FakeKnowledgeBase, make_deps, neutral_analysis

from src.graph.service import TicketIn, TriageService
from src.llm.cascade import AnalysisHeads, LinearHead
from src.llm.providers.fake import FakeProvider
from src.llm.template_draft import template_draft

ROUTINE_TEXT = "I want to cancel my order please, it has not shipped yet"
UNSURE_TEXT = "hmm cancel my order I guess, whatever"
ANGRY_TEXT = "cancel my damn order, you people are useless"
RESOLUTION = "To cancel the order, open Order History, pick the order and choose Cancel Order."


def _heads() -> AnalysisHeads:
    w = 8.0
    four = np.array([[0, w], [0, 0], [w, 0], [0, 0]], np.float32)  # class 1 <- dim 2, class 3 <- dim 1
    zero = np.zeros(4, np.float32)
    return AnalysisHeads(
        heads={
            "sentiment": LinearHead(("angry", "frustrated", "neutral", "positive"), four, zero),
            "priority": LinearHead(("P1", "P2", "P3", "P4"), four, zero),
            "escalation_risk": LinearHead(("false", "true"), np.array([[-w, w]], np.float32),
                                          np.zeros(1, np.float32)),
        },
        min_routine=0.9, embedding_model="test-embedder", dimension=2, version="heads-test",
    )  # fmt: skip


class VectorKB(FakeKnowledgeBase):
    """The fake knowledge base plus the embedding the real one computes for the retrieval step."""

    def embed_query(self, text: str) -> np.ndarray:
        low = text.lower()
        if "damn" in low:
            return np.array([0.0, 1.0], np.float32)
        if "hmm" in low:
            return np.array([0.6, 0.4], np.float32)
        return np.array([1.0, 0.0], np.float32)

    def search(self, text, k=None, intent=None, category=None, min_score=None, vector=None):  # noqa: ANN001
        hits = super().search(text, k=k, intent=intent, category=category, min_score=min_score)
        for h in hits:
            h.ticket.response = RESOLUTION
        return hits


def _service(tmp_path: Path, *, provider: FakeProvider | None = None, template: bool = False,
             **kw) -> TriageService:  # fmt: skip
    provider = provider or FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    kw.setdefault("node_timeout_s", 60.0)  # first calls load langdetect / sklearn: slow on a busy CPU
    deps = make_deps(tmp_path, kb=kw.pop("kb", VectorKB()), provider=provider, **kw)
    deps.heads = _heads()
    if template:
        deps.template = functools.partial(template_draft, min_similarity=0.7)
    return TriageService(deps)


def _kinds(provider: FakeProvider) -> list[str]:
    return [c["kind"] for c in provider.calls]


def _state(svc: TriageService, ticket_id: str) -> dict:
    return svc.graph.get_state({"configurable": {"thread_id": ticket_id}}).values


def test_heads_sure_of_a_routine_ticket_skip_the_llm(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider)
    out = svc.run(TicketIn(id="F1", text=ROUTINE_TEXT))
    assert out["route"] == "auto_resolve", out["reasons"]
    assert "json" not in _kinds(provider)  # no analysis call
    analysis = _state(svc, "api:F1")["analysis"]
    assert analysis["source"] == "heads" and analysis["reliable"] and not analysis["uncertain"]


def test_no_llm_at_all_still_auto_resolves_a_routine_ticket(tmp_path: Path) -> None:
    deps = make_deps(tmp_path, kb=VectorKB(), node_timeout_s=60.0)
    deps.heads, deps.provider = _heads(), None
    deps.template = functools.partial(template_draft, min_similarity=0.7)
    out = TriageService(deps).run(TicketIn(id="F2", text=ROUTINE_TEXT))
    assert out["route"] == "auto_resolve", out["reasons"]
    assert out["draft"] == RESOLUTION  # the resolution, no LLM


def test_no_llm_means_no_llm_draft_either(tmp_path: Path) -> None:
    """TRIAGE_SERVICE_LLM=false (provider None): no draft call at all, not the default model loaded by
    the drafter behind the graph's back; without a template a would-be auto-resolve waits for a human."""
    drafted: list[str] = []

    def recording_draft(text, analysis, hits, provider):  # noqa: ANN001, ANN202
        drafted.append(text)
        raise AssertionError("no LLM draft without a provider")

    deps = make_deps(tmp_path, kb=VectorKB(), node_timeout_s=60.0)
    deps.heads, deps.provider, deps.draft = _heads(), None, recording_draft
    svc = TriageService(deps)
    out = svc.run(TicketIn(id="F2b", text=ROUTINE_TEXT))  # would auto-resolve, but no template, no LLM
    assert out["route"] == "suggest" and out["draft"] in (None, ""), out
    deps.classifier = FakeClassifier(probability=0.75)  # a plain suggest: its draft is deferred, then skipped
    out = svc.run(TicketIn(id="F2c", text=ROUTINE_TEXT))
    assert out["route"] == "suggest" and drafted == []
    assert not [f for f in _state(svc, "api:F2c").get("failures") or [] if f.startswith("suggest_draft")]


def test_unsure_heads_ask_the_llm_and_the_ticket_reaches_a_human(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider)
    out = svc.run(TicketIn(id="F3", text=UNSURE_TEXT))
    assert _kinds(provider)[0] == "json"  # the LLM was asked
    assert out["route"] == "suggest", out["reasons"]  # and its "routine" does not clear the doubt
    assert any("analysis heads unsure" in r for r in out["reasons"])
    assert _state(svc, "api:F3")["analysis"]["uncertain"] is True


def test_rules_firing_escalate_without_waiting_for_an_llm(tmp_path: Path) -> None:
    """A rule signal makes the route escalate whatever an LLM says: no LLM call before the decision."""
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider)
    out = svc.run(TicketIn(id="F4", text="Cancel my order or my lawyer will hear about it"))
    assert out["route"] == "escalate", out["reasons"]
    assert provider.calls == []
    assert _state(svc, "api:F4")["analysis"]["source"] == "heads+rules"
    # opt in: the LLM still reads such tickets (e.g. for its priority), it can only raise
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    out = _service(tmp_path / "b", provider=provider, analysis_llm_on_rules=True).run(
        TicketIn(id="F4b", text="Cancel my order or my lawyer will hear about it"))
    assert _kinds(provider)[:1] == ["json"] and out["route"] == "escalate"


def test_heads_raise_what_a_calm_llm_says(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider)
    out = svc.run(TicketIn(id="F5", text=ANGRY_TEXT))
    analysis = _state(svc, "api:F5")["analysis"]
    assert analysis["sentiment"] == "angry" and analysis["priority"] == "P1" and analysis["escalation_risk"]
    assert out["route"] == "escalate"


def test_escalations_get_no_llm_draft(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider, classifier=FakeClassifier(probability=0.3))
    out = svc.run(TicketIn(id="F6", text=ROUTINE_TEXT))
    assert out["route"] == "escalate" and out["draft"] is None
    assert "text" not in _kinds(provider)


def test_close_resolution_is_the_draft_and_no_llm_is_called(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider, template=True)
    out = svc.run(TicketIn(id="F7", text=ROUTINE_TEXT))
    assert out["route"] == "auto_resolve" and out["draft"] == RESOLUTION
    assert provider.calls == []
    assert _state(svc, "api:F7")["draft"]["source"] == "template"


def test_auto_resolve_candidate_without_a_close_resolution_gets_an_llm_draft_first(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider, template=True, kb=VectorKB(similarity=0.65))
    out = svc.run(TicketIn(id="F8", text=ROUTINE_TEXT))
    assert _kinds(provider) == ["text"] and out["draft"] == "Sure, done."
    assert out["route"] == "auto_resolve", out["reasons"]


def test_suggest_without_a_close_resolution_is_drafted_after_the_decision(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider, template=True, kb=VectorKB(similarity=0.65),
                   classifier=FakeClassifier(probability=0.75))
    out = svc.run(TicketIn(id="F9", text=ROUTINE_TEXT))
    assert out["route"] == "suggest" and out["review"]["draft"] == "Sure, done."
    assert "suggest_draft" in out["latency"]["per_node_ms"]
    row = svc.deps.audit.get_decision("api:F9")
    assert row["route"] == "suggest" and not row["draft"]  # the decision was recorded before the draft


def test_suggest_drafts_can_be_switched_off(tmp_path: Path) -> None:
    provider = FakeProvider(json_responses=neutral_analysis(), text_responses="Sure, done.")
    svc = _service(tmp_path, provider=provider, template=True, kb=VectorKB(similarity=0.65),
                   classifier=FakeClassifier(probability=0.75), draft_suggest="off")
    out = svc.run(TicketIn(id="F10", text=ROUTINE_TEXT))
    assert out["route"] == "suggest" and not out["review"]["draft"]
    assert "text" not in _kinds(provider)
