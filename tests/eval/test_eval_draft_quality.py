"""Draft quality vs reference replies: similarity, intent consistency, grounding (fake embedder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.eval.draft_quality import grounding, load_references, score_drafts
from src.eval.systems import HybridSystem, failure_code
from src.eval.types import BenchTicket


class BagOfWords:
    """A deterministic stand-in embedder: unit vectors of word counts over a tiny vocabulary."""

    VOCAB = ("cancel", "order", "refund", "track", "page", "history", "money", "days")

    def encode(self, texts: list[str]) -> np.ndarray:
        v = np.array([[t.lower().count(w) for w in self.VOCAB] for t in texts], dtype=float) + 1e-9
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _hit(hid: str, intent: str, response: str, text: str = "cancel my order") -> dict:
    return {"id": hid, "ticket": {"id": hid, "text": text, "intent": intent, "response": response}}


def test_grounding_checks_citations_agreement_and_foreign_values() -> None:
    hits = [
        _hit("kb-1", "cancel_order", "Open Order History and choose Cancel Order."),
        _hit("kb-2", "cancel_order", "Your order 99887766 was cancelled.", text="cancel 99887766"),
    ]
    ok = grounding("Open Order History and choose Cancel Order.", ["kb-1"], "cancel my order", hits, 0.25)
    assert ok["grounded"] and ok["cited_shown"] and ok["cited_intents"] == ["cancel_order"]
    leak = grounding("Your order 99887766 was cancelled.", ["kb-2"], "cancel my order", hits, 0.25)
    assert not leak["grounded"] and leak["foreign_values"] == ["99887766"]
    none = grounding("We will look into it.", [], "cancel my order", hits, 0.25)
    assert not none["grounded"] and not none["cited_shown"]
    ghost = grounding("Open Order History.", ["kb-9"], "cancel my order", hits, 0.25)
    assert not ghost["grounded"] and not ghost["cited_shown"]


def test_drafts_are_scored_only_where_a_reference_exists(tmp_path: Path) -> None:
    ref = tmp_path / "ref.csv"
    ref.write_text(
        "instruction,intent,response\n"
        '"Cancel my order please",cancel_order,"Go to Order History and cancel the order."\n'
    )
    references = load_references(ref)
    g = {"grounded": True, "cited_intents": ["cancel_order"]}
    items = [
        {
            "text": "cancel my  ORDER please",
            "label": "cancel_order",
            "draft": "Cancel the order in Order History.",
            "source": "template",
            "grounding": g,
        },
        {
            "text": "track my refund",
            "label": "track_refund",
            "draft": "Refund in 5 days.",
            "source": "llm",
            "grounding": g,
        },
    ]
    summary, rows = score_drafts(items, references, BagOfWords())
    assert summary["n"] == 1 and summary["with_reference"] == 1 and len(rows) == 1
    assert rows[0]["similarity"] > 0.9 and rows[0]["intent_consistent"] and summary["grounded"] == 1.0
    wrong = [{**items[0], "grounding": {"grounded": True, "cited_intents": ["track_order"]}}]
    assert score_drafts(wrong, references, BagOfWords())[0]["intent_consistent"] == 0.0
    missing = [{**items[0], "draft": None}]
    assert score_drafts(missing, references, BagOfWords())[0]["without_draft"] == 1


def test_failure_codes_come_from_the_graphs_failure_records() -> None:
    assert failure_code("analyze: timeout: local model took too long") == "analyze:timeout"
    assert failure_code("retrieve: RetrievalUnavailable: qdrant is down") == "retrieve:RetrievalUnavailable"
    assert failure_code("preprocess: the ticket text is not in the vault") == "preprocess:failed"


def test_hybrid_adapter_reads_sources_and_grounding_from_the_graph_state() -> None:
    state = {
        "analysis": {"source": "heads", "uncertain": False},
        "draft": {
            "text": "Open Order History and choose Cancel Order.",
            "evidence_ids": ["kb-1"],
            "source": "template",
        },
        "hits": [_hit("kb-1", "cancel_order", "Open Order History and choose Cancel Order.")],
        "pre": {"masked_text": "cancel my order"},
        "latency_ms": {"suggest_draft": 0.0},
    }

    class Snapshot:
        values = state

    class Graph:
        def get_state(self, config: dict) -> Snapshot:
            assert config["configurable"]["thread_id"] == "benchmark:b-x1"
            return Snapshot()

    class Service:
        graph = Graph()

        def run(self, ticket: dict) -> dict:
            return {
                "ticket_id": "benchmark:b-x1",
                "route": "auto_resolve",
                "intent": "cancel_order",
                "failures": ["suggest_draft: timeout: slow"],
                "confidence": 0.99,
            }

    out = HybridSystem(Service(), lambda **kw: kw, id_prefix="b").run(
        BenchTicket(id="x1", text="cancel my order", label="cancel_order")
    )
    assert out.details["analysis_source"] == "heads" and out.details["draft_source"] == "template"
    assert out.details["grounding"]["grounded"] is True
    assert out.failure_codes == []  # a failure after the decision did not cause the route


def test_template_vs_llm_comparison_on_the_same_tickets() -> None:
    from src.eval.drafts import evaluate, markdown
    from src.llm.providers.fake import FakeProvider
    from src.retrieval.types import Hit, ResolvedTicket

    resolution = "To cancel the order, open Order History, pick the order and choose Cancel Order."

    class KB:
        def search(self, text: str, k: int = 5, intent: str | None = None) -> list[Hit]:
            sim = 0.9 if "cancel" in text else 0.5
            t = ResolvedTicket(id="kb-1", text="cancel my order", intent=intent, response=resolution)
            return [Hit(id="kb-1", score=sim, similarity=sim, ticket=t)]

    rows = [
        {
            "instruction": "please cancel my order",
            "intent": "cancel_order",
            "response": "You can cancel the order in Order History.",
        },
        {
            "instruction": "I need to track a refund",
            "intent": "track_refund",
            "response": "Refunds take 5 days; track it on the refund page.",
        },
    ]
    llm = FakeProvider(
        json_responses={"reply": "Open Order History and cancel the order.", "evidence_ids": ["kb-1"]}
    )
    report = evaluate(rows, KB(), llm, BagOfWords(), progress=False)
    s = report["summary"]
    assert s["n"] == 2 and s["with_template"] == 1  # only the close, same-intent resolution is a template
    both = s["on_tickets_with_both"]
    assert both["template"]["n"] == both["llm"]["n"] == 1 and both["similarity_template_minus_llm"]["n"] == 1
    assert s["llm_where_no_template"]["n"] == 1
    page = markdown(
        {
            **report,
            "command": "x",
            "date": "d",
            "commit": "c" * 12,
            "llm": "fake",
            "kb_count": 1,
            "references": "r",
            "dropped_in_kb": 0,
            "margin": 0.02,
            "template_min_similarity": 0.7,
        }
    )
    assert "| template (tickets with both) | 1 |" in page and "Paired similarity difference" in page
