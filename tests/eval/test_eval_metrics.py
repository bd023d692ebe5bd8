"""Benchmark metrics on small hand-computed cases."""

from __future__ import annotations

import pytest

from src.eval.metrics import (
    auto_resolve_precision,
    blocking_reasons,
    escalation_metrics,
    percentile,
    route_mix,
    system_metrics,
    usage_metrics,
)
from src.eval.types import TicketResult


def r(label: str, pred: str | None, route: str, **kw) -> TicketResult:
    kw.setdefault("ticket_id", f"{label}-{pred}-{route}-{kw.get('latency_s', 0)}")
    return TicketResult(system="s", label=label, pred=pred, route=route, **kw)


def test_percentile_interpolates_and_refuses_empty() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)
    assert percentile([], 50) is None


def test_route_mix_counts_and_shares() -> None:
    rows = [
        r("a", "a", "auto_resolve"),
        r("a", "a", "auto_resolve"),
        r("b", "a", "suggest"),
        r("b", None, "escalate"),
    ]
    mix = route_mix(rows)
    assert mix["counts"] == {"auto_resolve": 2, "suggest": 1, "escalate": 1}
    assert mix["shares"]["auto_resolve"] == 0.5


def test_auto_resolve_precision_with_exact_interval() -> None:
    rows = [
        r("a", "a", "auto_resolve"),
        r("b", "b", "auto_resolve"),
        r("b", "a", "auto_resolve"),
        r("a", "b", "suggest"),
    ]
    out = auto_resolve_precision(rows)
    assert out["auto_resolved"] == 3 and out["correct"] == 2
    assert out["precision"] == pytest.approx(2 / 3)
    # Clopper-Pearson 95% for 2/3 (textbook value)
    assert out["ci95"][0] == pytest.approx(0.0943, abs=1e-4)
    assert out["ci95"][1] == pytest.approx(0.9916, abs=1e-4)


def test_auto_resolve_precision_none_when_nothing_auto_resolved() -> None:
    out = auto_resolve_precision([r("a", "a", "suggest")])
    assert out["precision"] is None and out["ci95"] == [0.0, 1.0]


def test_escalation_metrics_counts_wrongful_auto_resolves() -> None:
    rows = [
        r("a", "a", "auto_resolve", should_escalate=True, ticket_id="bad"),
        r("a", "a", "suggest", should_escalate=True),
        r("b", "a", "suggest", should_escalate=True, latency_s=1),
        r("b", None, "escalate", should_escalate=True),
        r("c", "c", "escalate", should_escalate=False),
    ]
    out = escalation_metrics(rows)
    assert out["n_should_escalate"] == 4
    assert out["human_recall"] == pytest.approx(0.75)
    assert out["escalation_recall"] == pytest.approx(0.25)
    assert out["wrongful_auto_resolves"] == 1 and out["wrongful_auto_resolve_ids"] == ["bad"]
    assert out["n_controls"] == 1 and out["controls_escalated"] == 1


def test_usage_metrics_per_ticket() -> None:
    rows = [
        r(
            "a",
            "a",
            "suggest",
            latency_s=1.0,
            cpu_s=0.5,
            llm_calls=2,
            tokens_in=100,
            tokens_out=10,
            cost_usd=0.01,
        ),
        r("a", "a", "suggest", latency_s=3.0, cpu_s=1.5, llm_calls=0, error="boom"),
    ]
    u = usage_metrics(rows)
    assert u["latency_p50_s"] == pytest.approx(2.0)
    assert u["cpu_s_per_ticket"] == pytest.approx(1.0)
    assert u["llm_calls_per_ticket"] == pytest.approx(1.0)
    assert u["tokens_in_per_ticket"] == pytest.approx(50.0)
    assert u["cost_usd_per_ticket"] == pytest.approx(0.005)
    assert u["errors"] == 1


def test_system_metrics_hand_computed() -> None:
    rows = [
        r("a", "a", "auto_resolve", score=0.9, ticket_id="1"),
        r("a", "b", "auto_resolve", score=0.9, ticket_id="2"),
        r("b", "b", "suggest", score=0.7, ticket_id="3"),
        r("b", "b", "escalate", score=0.3, ticket_id="4"),
        r("oos", "a", "auto_resolve", score=0.95, ticket_id="5"),  # out of scope, auto-resolved: wrong
        r("a", "a", "auto_resolve", score=0.9, source="slice", should_escalate=True, ticket_id="6"),
    ]
    m = system_metrics(rows, ["a", "b"], n_bins=10)
    assert m["n_data"] == 5 and m["n_in_scope"] == 4 and m["n_out_of_scope"] == 1 and m["n_slice"] == 1
    assert m["accuracy"] == pytest.approx(0.75)
    # F1(a) = 2*1*0.5/1.5 = 2/3, F1(b) = 2*(2/3)*1/(5/3) = 0.8
    assert m["per_class_f1"]["a"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert m["route_mix"]["counts"] == {"auto_resolve": 3, "suggest": 1, "escalate": 1}
    assert m["auto_resolve_rate"] == pytest.approx(0.6)
    assert m["auto_resolve_precision"]["correct"] == 1 and m["auto_resolve_precision"]["auto_resolved"] == 3
    assert m["escalation_out_of_scope"]["wrongful_auto_resolves"] == 1
    assert m["escalation_slice"]["wrongful_auto_resolves"] == 1
    # ECE of routing score: bin 0.9 -> acc 0.5 (|0.4|, 2 rows); 0.7 -> 1 (0.3); 0.3 -> 1 (0.7)
    assert m["ece"] == pytest.approx((2 * 0.4 + 0.3 + 0.7) / 4)


def test_blocking_reasons_counts_rules_not_adjustments() -> None:
    rows = [
        r(
            "a",
            "a",
            "escalate",
            ticket_id="1",
            reasons=[
                "calibrated probability 0.99 for intent 'a'",
                "angry customer (-0.10)",
                "score 0.89 > auto-resolve threshold 0.85",  # the number allowed it: not a reason
                "sensitive flag legal_threat: never auto-resolve (route capped at escalate)",
                "failed step -> human: analyze: invalid_output: junk 123",
            ],
        ),
        r(
            "a",
            "a",
            "suggest",
            ticket_id="2",
            reasons=[
                "score 0.80 <= auto-resolve threshold 0.85: suggest",
                "sensitive flag legal_threat: never auto-resolve",
            ],
        ),
        r(
            "a",
            "a",
            "auto_resolve",
            ticket_id="3",
            reasons=["sensitive flag legal_threat: never auto-resolve"],
        ),
    ]
    out = {x["reason"]: x["tickets"] for x in blocking_reasons(rows)}
    assert out == {
        "sensitive flag legal_threat: never auto-resolve": 2,
        "failed step -> human: analyze": 1,
        "score # <= auto-resolve threshold #: suggest": 1,
    }


def test_macro_f1_ignores_labels_absent_from_a_small_sample() -> None:
    rows = [r("a", "a", "suggest", ticket_id="1"), r("b", "b", "suggest", ticket_id="2")]
    m = system_metrics(rows, ["a", "b", "c", "d"])
    assert m["macro_f1"] == 1.0 and m["macro_f1_labels"] == 2
    wrong = system_metrics([r("a", "c", "suggest", ticket_id="1")], ["a", "b", "c"])
    assert wrong["macro_f1"] == 0.0 and wrong["macro_f1_labels"] == 2  # a (missed) and c (false positive)
