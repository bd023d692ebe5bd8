"""The committed escalation slice is well-formed and covers what it claims to cover."""

from __future__ import annotations

from pathlib import Path

from src.eval.runner import load_slice

SLICE = Path(__file__).resolve().parents[2] / "benchmarks" / "escalation_slice.jsonl"
BITEXT_INTENTS = {
    "cancel_order",
    "change_order",
    "change_shipping_address",
    "check_cancellation_fee",
    "check_invoice",
    "check_payment_methods",
    "check_refund_policy",
    "complaint",
    "contact_customer_service",
    "contact_human_agent",
    "create_account",
    "delete_account",
    "delivery_options",
    "delivery_period",
    "edit_account",
    "get_invoice",
    "get_refund",
    "newsletter_subscription",
    "payment_issue",
    "place_order",
    "recover_password",
    "registration_problems",
    "review",
    "set_up_shipping_address",
    "switch_account",
    "track_order",
    "track_refund",
}


def test_slice_rows_are_valid_and_unique() -> None:
    rows = load_slice(SLICE)
    assert len({t.id for t in rows}) == len(rows)
    must = [t for t in rows if t.should_escalate]
    assert len(must) >= 40
    assert all(t.why and t.text.strip() for t in rows)
    assert all(t.label in BITEXT_INTENTS or t.label == "oos" for t in rows)


def test_slice_covers_each_risk_kind() -> None:
    whys = " ".join(t.why for t in load_slice(SLICE) if t.should_escalate)
    for kind in ("legal", "angry", "takeover", "injection", "safety", "out of scope"):
        assert kind in whys, kind
