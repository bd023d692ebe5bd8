"""The board's pure parts: reasons in plain words, cards and filters, dashboard numbers, SVG charts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from src.api.board import cards, charts, explain, stats
from src.graph.confidence import ConfidenceInputs, score

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=timezone.utc)
CALIBRATED = {"auto_resolve": 0.85, "suggest": 0.6, "source": "calibrated"}


# --- reasons ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "thresholds"),
    [
        (
            {
                "intent": "get_refund",
                "probability": 0.97,
                "margin": 0.9,
                "entropy": 0.1,
                "best_similarity": 0.9,
                "neighbours_total": 5,
                "neighbours_same_intent": 5,
                "language": "en",
            },
            CALIBRATED,
        ),
        (
            {
                "intent": "get_refund",
                "probability": 0.75,
                "margin": 0.05,
                "entropy": 0.8,
                "best_similarity": 0.5,
                "neighbours_total": 5,
                "neighbours_same_intent": 1,
                "sentiment": "angry",
                "priority": "P1",
                "escalation_risk": True,
                "escalation_signals": ["legal_threat"],
                "sensitive_flags": ["self_harm"],
                "language": "ar",
                "language_supported": False,
                "draft_reliable": False,
            },
            CALIBRATED,
        ),
        (
            {
                "intent": "get_refund",
                "probability": 0.3,
                "margin": 0.1,
                "entropy": 0.5,
                "neighbours_total": 0,
                "failures": ["draft: TimeoutError"],
                "injection": True,
                "language": None,
            },
            {"source": "default"},
        ),
        (
            {"intent": None, "probability": 0.0, "margin": 0.0, "entropy": 1.0, "classifier_valid": False},
            CALIBRATED,
        ),
    ],
)
def test_every_reason_the_router_gives_has_plain_words(inputs: dict, thresholds: dict) -> None:
    reasons = score(ConfidenceInputs(**inputs), thresholds).reasons
    assert reasons
    for r in explain.explain(reasons):
        assert r.plain != r.exact, f"no plain words for router reason: {r.exact!r}"
        assert "(+" not in r.plain and "(-" not in r.plain  # the penalty arithmetic stays in "exact"


def test_plain_words_examples_and_unknown_reasons_pass_through() -> None:
    assert explain.plain("calibrated probability 0.75 for intent 'get_refund' (calibrated thresholds)") == (
        "The classifier gives “get refund” a 75% probability (calibrated)."
    )
    assert explain.plain("angry customer: never auto-resolve (route capped at suggest)") == (
        "The customer sounds angry, so at most: suggest a draft."
    )
    assert explain.plain("escalated by reviewer tester/Ana: VIP") == "Escalated by tester/Ana: VIP"
    assert explain.plain("something new the router says") == "something new the router says"
    assert explain.explain(["", "  "]) == []


# --- cards and filters -------------------------------------------------------------------------------


def _row(ticket_id: str, route: str, status: str = "pending_review", **record) -> dict:
    base = {
        "team": "orders",
        "sla_hours": 4.0,
        "text": "where is my order " * 30,
        "intent": "track_order",
        "confidence": 0.8,
        "analysis": {"priority": "P2", "sentiment": "neutral"},
        "flags": ["pii_masked"],
    }
    base.update(record)
    return {
        "ticket_id": ticket_id,
        "channel": "chat",
        "intent": base["intent"],
        "route": route,
        "status": status,
        "created_at": (NOW - timedelta(hours=1)).isoformat(),
        "completed_at": None,
        "record": base,
    }


def test_cards_follow_the_queue_and_the_reviewers() -> None:
    suggested = cards.card_from_decision(_row("a", "suggest"), [])
    assert suggested.column == "suggested" and suggested.priority == "P2" and suggested.tags == ["pii masked"]
    assert suggested.sla_due == NOW + timedelta(hours=3) and suggested.sla_left_h(NOW) == pytest.approx(3.0)
    assert len(suggested.snippet) == cards.SNIPPET_CHARS and suggested.snippet.endswith("…")
    # a reviewer escalated it: escalated column, the escalation team
    esc = [{"action": "escalate", "team": "supervisors", "actor": "ana"}]
    moved = cards.card_from_decision(_row("b", "escalate"), esc)
    assert (moved.column, moved.team, moved.reviewer_escalated) == ("escalated", "supervisors", True)
    # reassigned and completed: resolved, the new team, who did it, no SLA
    done = cards.card_from_decision(
        _row("c", "suggest", status="completed"), [{"action": "reassign", "team": "billing", "actor": "bo"}]
    )
    assert (done.column, done.team, done.outcome, done.sla_due) == (
        "resolved",
        "billing",
        "reassign by bo",
        None,
    )
    auto = cards.card_from_decision(
        _row("d", "auto_resolve", status="auto_resolved"), [{"action": "check", "actor": "cy", "team": None}]
    )
    assert (auto.column, auto.outcome) == ("resolved", "auto")
    new = cards.card_from_intake(
        {
            "ticket_id": "e",
            "channel": "email",
            "state": "queued",
            "payload": {"subject": "Hi"},
            "attempts": 3,
            "accepted_at": NOW.timestamp(),
        }
    )
    assert (new.column, new.snippet, new.tags, new.created_at) == ("new", "Hi", ["attempt 3"], NOW)


def test_filters_and_column_order() -> None:
    rows = [
        _row("late", "suggest", sla_hours=0.5),
        _row("soon", "suggest", sla_hours=1.5, team="billing"),
        _row("later", "escalate", sla_hours=30.0, analysis={"priority": "P1"}),
        _row("done", "suggest", status="completed"),
    ]
    all_cards = [cards.card_from_decision(r, []) for r in rows]
    all_cards.append(cards.card_from_intake({"ticket_id": "late", "channel": "chat", "state": "processing"}))
    cols = cards.columns(all_cards, cards.Filters(), NOW)
    assert [c.ticket_id for c in cols["suggested"]] == [
        "late",
        "soon",
    ]  # SLA order; the intake dup is dropped
    assert cols["new"] == [] and [c.ticket_id for c in cols["resolved"]] == ["done"]
    f = cards.Filters.from_query({"sla": "overdue"})
    assert [c.ticket_id for c in cards.columns(all_cards, f, NOW)["suggested"]] == ["late"]
    f = cards.Filters.from_query({"sla": "1h"})
    assert {c.ticket_id for c in sum(cards.columns(all_cards, f, NOW).values(), [])} == {"late", "soon"}
    assert cards.Filters.from_query({"team": "billing"}).matches(all_cards[1], NOW)
    assert not cards.Filters.from_query({"team": "billing"}).matches(all_cards[0], NOW)
    assert [
        c.ticket_id for c in cards.columns(all_cards, cards.Filters(priority="P1"), NOW)["escalated"]
    ] == ["later"]
    bogus = cards.Filters.from_query({"priority": "P9", "sla": "soonish", "team": "x" * 500})
    assert bogus.priority == "" and bogus.sla == "" and len(bogus.team) == 200


def test_timestamps_from_both_backends() -> None:
    assert cards.as_datetime("2026-05-04T12:00:00+00:00") == NOW
    assert cards.as_datetime("2026-05-04T12:00:00") == NOW  # naive = UTC
    assert cards.as_datetime(NOW.replace(tzinfo=None)) == NOW
    assert cards.as_datetime(NOW.timestamp()) == NOW
    assert cards.as_datetime("not a time") is None and cards.as_datetime(None) is None


# --- dashboard numbers ---------------------------------------------------------------------------------


def test_precision_comes_with_an_exact_interval() -> None:
    none = stats.auto_resolve_precision([])
    assert none.n == 0 and none.value is None and none.low is None
    checks = [{"note": "correct"}] * 9 + [{"note": "wrong: promised a refund"}, {"note": "something else"}]
    p = stats.auto_resolve_precision(checks)
    assert (p.k, p.n) == (9, 10) and p.value == pytest.approx(0.9)
    assert p.low == pytest.approx(0.5550, abs=1e-4) and p.high == pytest.approx(0.9975, abs=1e-4)  # CP exact
    zero = stats.proportion(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(1 - 0.025 ** (1 / 10))
    acc = stats.suggestion_acceptance(
        [{"action": "accept"}, {"action": "accept", "corrected_intent": "x"}, {"action": "edit"}]
    )
    assert (acc.k, acc.n) == (1, 3)


def test_route_mix_delays_and_durations() -> None:
    assert stats.route_counts({"suggest": 2, "weird": 1}) == [
        ("auto_resolve", 0),
        ("suggest", 2),
        ("escalate", 0),
        ("weird", 1),
    ]
    delays = [10.0, 299.0, 300.0, 4000.0, 90000.0]
    assert dict(stats.delay_histogram(delays)) == {
        "< 5 min": 2,
        "5–15 min": 1,
        "15–60 min": 0,
        "1–4 h": 1,
        "4–24 h": 0,
        "> 24 h": 1,
    }
    assert stats.median_seconds(delays) == 300.0 and stats.median_seconds([]) is None
    assert [stats.human_duration(s) for s in (None, 30, 600, 7200, 200000)] == [
        "–",
        "30 s",
        "10 min",
        "2.0 h",
        "2.3 d",
    ]
    assert stats.check_verdict("Wrong: x") == "wrong" and stats.check_verdict(None) is None


# --- charts ------------------------------------------------------------------------------------------


def test_charts_escape_labels_and_draw_empty_data() -> None:
    svg = str(charts.bar_chart([("<script>alert(1)</script>", 3.0), ("b", 0.0)], title='t"itle'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "t&#34;itle" in svg
    assert svg.count('class="track"') == 2 and "style=" not in svg  # CSP: no inline styles
    assert 'width="0.0"' in str(charts.bar_chart([("a", 0.0)], title="zeros"))
    assert "no data yet" in str(charts.interval_chart(None, None, None, title="p"))
    ci = str(charts.interval_chart(0.9, 0.55, 0.99, title="p"))
    assert "90.0% (95% interval 55.0%–99.0%)" in ci
