"""Template drafts: a same-intent, highly similar resolution is the draft, checked like an LLM draft."""

from __future__ import annotations

from src.llm.template_draft import TEMPLATE_VERSION, fill_placeholders, template_draft, ticket_values
from src.retrieval.types import Hit, ResolvedTicket

CANCEL = ("To cancel order {{Order Number Anonymized}}, sign in to {{Website Name}}, open Order History "
          "and choose Cancel Order. Call {{Customer Support Phone Number}} if you need help.")


def hit(i: int, response: str, intent: str = "cancel_order", sim: float = 0.9, text: str = "") -> Hit:
    text = text or f"please cancel my order {i}"
    t = ResolvedTicket(id=f"kb-{i}", text=text, intent=intent, response=response)
    return Hit(id=t.id, score=sim, similarity=sim, ticket=t)


def test_values_come_from_this_ticket_only_when_unambiguous() -> None:
    assert ticket_values("cancel order 77123 please") == {"order": "77123"}
    assert ticket_values("cancel order {{Order Number}}")["order"] == "{{Order Number}}"
    assert "order" not in ticket_values("orders 77123 and order 88123, cancel both")
    assert ticket_values("I am [PERSON_1], cancel my order")["name"] == "[PERSON_1]"


def test_fill_keeps_company_placeholders_unless_configured() -> None:
    out = fill_placeholders(CANCEL, "cancel order 77123")
    assert "77123" in out and "{{Website Name}}" in out and "{{Customer Support Phone Number}}" in out
    out = fill_placeholders(CANCEL, "cancel my order", {"Website Name": "shop.example.com"})
    assert "{{Order Number Anonymized}}" in out and "shop.example.com" in out


def test_best_same_intent_resolution_becomes_a_reliable_draft() -> None:
    hits = [hit(1, "Track it on the Orders page.", intent="track_order", sim=0.95), hit(2, CANCEL, sim=0.88)]
    d = template_draft("I want to cancel order 77123", "cancel_order", hits, min_similarity=0.7)
    assert d is not None and d.reliable and d.source == "template" and d.usage is None
    assert d.evidence_ids == ["kb-2"] and "77123" in d.text and d.prompt_version == TEMPLATE_VERSION
    assert d.flags[0].startswith("template:kb-2:")


def test_no_close_resolution_no_template() -> None:
    hits = [hit(1, CANCEL, sim=0.65), hit(2, "Track it.", intent="track_order", sim=0.95)]
    assert template_draft("cancel order 77123", "cancel_order", hits, min_similarity=0.7) is None
    assert template_draft("cancel order 77123", None, hits, min_similarity=0.5) is None


def test_another_customers_values_reject_a_candidate_and_the_next_one_is_used() -> None:
    leaky = hit(1, "Your order 99887766 was cancelled. A refund is on its way.", sim=0.97,
                text="cancel order 99887766")
    hits = [leaky, hit(2, CANCEL, sim=0.9)]
    d = template_draft("please cancel my order", "cancel_order", hits, min_similarity=0.7)
    assert d is not None and d.evidence_ids == ["kb-2"] and "99887766" not in d.text
    assert any(f.startswith("rejected:kb-1:") and "another_customers_values" in f for f in d.flags)
    assert template_draft("please cancel my order", "cancel_order", [leaky], min_similarity=0.7) is None


def test_other_language_ticket_gets_no_english_template() -> None:
    hits = [hit(1, CANCEL, sim=0.9)]
    text = "Hola, quiero cancelar mi pedido porque me mudé la semana pasada y ya no lo necesito"
    assert template_draft(text, "cancel_order", hits, min_similarity=0.7) is None
