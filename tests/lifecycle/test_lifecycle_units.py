"""Pure parts of the lifecycle tools: receipt checks, gate verdicts, clarification rules, baselines,
failure clusters, the leakage-safe split, the balance-fill queue and the shadow comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.classifier.balance_fill import (
    accepted_rows,
    entropy_report,
    generate,
    read_queue,
    review,
    write_queue,
)
from src.classifier.baselines import KeywordRules, run_baselines
from src.classifier.data import add_row_ids, text_key
from src.classifier.failure_clusters import failure_clusters
from src.classifier.leakage_split import leakage_safe_split
from src.classifier.release import BundleScore, Row, auto_mask, judge, parse_slice, row_problems
from src.graph.clarify import between_two, question, segments, two_intents
from src.graph.shadow import MIN_OUTCOMES, compare
from src.llm.providers.fake import FakeProvider


# --- receipt + gate ------------------------------------------------------------------------------
def test_row_problems_name_every_kind() -> None:
    rows = [Row("1", "a", "x"), Row("2", "b", "y"), Row("3", "c", "z")]
    pinned = [{"id": r.id, "sha256": r.sha256} for r in rows]
    assert row_problems(pinned, rows) == []
    changed = [Row("1", "a", "x"), Row("2", "b", "DRIFT"), Row("2", "b", "DRIFT"), Row("4", "d", "w")]
    kinds = {(p["kind"], p["id"]) for p in row_problems(pinned, changed)}
    assert kinds == {("drifted_row", "2"), ("duplicate_row", "2"), ("missing_row", "3"),
                     ("unexpected_row", "4")}


def _score(**kw) -> BundleScore:
    base = dict(path="p", version="v", thresholds_source="calibrated", accuracy=0.9, macro_f1=0.9, auto_n=100,
                auto_correct=99, auto_precision=0.99, auto_precision_lower=0.95,
                slices={"refunds": {"n": 20, "accuracy": 0.9}})
    return BundleScore(**{**base, **kw})


def test_judge_holds_each_kind_with_a_reason() -> None:
    slices = {"refunds": {"intents": ["get_refund"], "min_accuracy": 0.8, "max_drop": 0.05}}
    cur = _score()
    assert judge(_score(macro_f1=0.91), cur, slices, {}) == []
    cases = {
        "macro_f1": _score(macro_f1=0.85),
        "auto_resolve_precision": _score(auto_precision_lower=0.90),
        "required_slice": _score(slices={"refunds": {"n": 20, "accuracy": 0.7}}),
        "uncalibrated": _score(thresholds_source="stale"),
    }
    for kind, cand in cases.items():
        holds = judge(cand, cur, slices, {})
        assert [h["kind"] for h in holds] == [kind], holds
        assert holds[0]["reason"]
    drop = judge(_score(slices={"refunds": {"n": 20, "accuracy": 0.84}}), cur, slices, {})
    assert "allowed drop" in drop[0]["reason"]
    empty = judge(_score(slices={"refunds": {"n": 0, "accuracy": None}}), cur, slices, {})
    assert "no rows" in empty[0]["reason"]
    assert judge(_score(macro_f1=0.89), cur, slices, {"macro_f1": 0.02}) == []


def test_auto_mask_uses_per_intent_thresholds_floors_and_guard() -> None:
    th = {"source": "calibrated", "auto_resolve": 0.9, "per_intent": {"b": {"auto_resolve": None}},
          "ood": {"score": "x", "max": 1.0}}
    mask = auto_mask(["a", "a", "b", "a"], np.array([0.95, 0.88, 0.99, 0.99]), th, 0.85,
                     ood=np.array([0.1, 0.1, 0.1, 2.0]))
    assert mask.tolist() == [True, False, False, False]
    assert not auto_mask(["a"], np.array([0.99]), {**th, "source": "default"}, 0.85).any()
    assert not auto_mask(["a"], np.array([0.95]), th, 0.97).any()  # the Settings floor is stricter


def test_parse_slice() -> None:
    assert parse_slice("money=get_refund,cancel_order@0.9/0.02") == (
        "money", {"intents": ["get_refund", "cancel_order"], "min_accuracy": 0.9, "max_drop": 0.02})
    with pytest.raises(ValueError):
        parse_slice("nothing")


# --- clarification -------------------------------------------------------------------------------
class _Pred:
    def __init__(self, label: str, confidence: float, ood_score: float | None = None) -> None:
        self.label, self.confidence, self.valid, self.ood_score = label, confidence, True, ood_score


def test_between_two_and_two_intents() -> None:
    assert between_two({"top3": [("a", 0.46), ("b", 0.40), ("c", 0.1)]}).intents == ("a", "b")
    assert between_two({"top3": [("a", 0.7), ("b", 0.2)]}) is None
    assert between_two({"top3": [("a", 0.30), ("b", 0.25), ("c", 0.2)]}) is None  # not two: unsure
    text = "I want to cancel my order. Also, where is my refund for the last one?"
    assert segments(text) == ["I want to cancel my order", "where is my refund for the last one?"]

    def classify(parts: list[str]) -> list[_Pred]:
        return [_Pred("cancel_order" if "cancel" in p else "get_refund", 0.9) for p in parts]

    both = {"cancel_order", "get_refund"}
    amb = two_intents(text, classify, both)
    assert amb is not None and set(amb.intents) == both
    assert two_intents(text, classify, {"cancel_order"}) is None  # the whole message never says refund
    assert two_intents(text, classify, both, ood_max=1.0) is not None

    def unlike_training(parts: list[str]) -> list[_Pred]:  # the refund part is out of distribution
        return [_Pred(p.label, p.confidence, ood_score=5.0 if "refund" in p_text else 0.1)
                for p, p_text in zip(classify(parts), parts, strict=True)]

    assert two_intents(text, unlike_training, both, ood_max=1.0) is None
    assert two_intents("cancel my order please, thanks a lot", classify, both) is None
    assert "cancel order" in question(amb) and "?" in question(amb)


# --- baselines + failure clusters ----------------------------------------------------------------
def test_baselines_learn_keywords_and_tfidf() -> None:
    train = [("refund my money", "refund"), ("i want a refund now", "refund"), ("refund please", "refund"),
             ("where is my parcel", "track"), ("track my parcel", "track"), ("parcel status", "track")]
    rules = KeywordRules([t for t, _ in train], [lab for _, lab in train])
    assert "refund" in rules.rules["refund"] and "parcel" in rules.rules["track"]
    assert rules.predict(["refund this", "my parcel", "hello"]) == ["refund", "track", "refund"]
    out = run_baselines([t for t, _ in train], [lab for _, lab in train], ["a refund", "the parcel"],
                        ["refund", "track"])
    assert out["keyword_rules"]["accuracy"] == 1.0 and out["tfidf_logreg"]["n"] == 2


def test_failure_clusters_group_similar_errors() -> None:
    emb = np.array([[1, 0, 0], [0.99, 0.05, 0], [0, 1, 0], [0, 0.98, 0.1], [0, 0, 1]], dtype=float)
    y_true = ["a", "a", "b", "b", "c"]
    y_pred = ["b", "b", "c", "c", "c"]  # the last row is right
    clusters = failure_clusters(["t0", "t1", "t2", "t3", "t4"], y_true, y_pred, emb)
    assert [c["size"] for c in clusters] == [2, 2]
    pairs = {(c["confused_pair"]["true"], c["confused_pair"]["predicted"]) for c in clusters}
    assert pairs == {("a", "b"), ("b", "c")}
    assert all(c["representative"] in ("t0", "t1", "t2", "t3") for c in clusters)
    assert failure_clusters(["x"], ["a"], ["a"], np.ones((1, 3))) == []


# --- leakage-safe split --------------------------------------------------------------------------
def _frames(n: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.DataFrame({
        "text": [f"ticket {i} about {'refund' if i % 2 else 'parcel'}" for i in range(n)],
        "label": ["refund" if i % 2 else "track" for i in range(n)],
        "customer_id": [f"c{i // 3}" for i in range(n)],  # 3 tickets per customer
        "created_at": pd.date_range("2026-01-01", periods=n, freq="D").astype(str),
    })
    return add_row_ids(raw[["text", "label"]]), raw


def test_split_by_customer_keeps_each_customer_in_one_part() -> None:
    clean, raw = _frames()
    splits = leakage_safe_split(clean, [raw.drop(columns=["created_at"])], log=lambda _m: None)
    owner = dict(zip(raw["text"], raw["customer_id"], strict=True))
    part_of = {owner[t]: p for p, f in splits.items() for t in f["text"]}
    for p, f in splits.items():
        assert all(part_of[owner[t]] == p for t in f["text"])
    assert sum(len(f) for f in splits.values()) == len(clean) and len(splits["test"]) > 0


def test_split_by_time_puts_the_newest_tickets_in_test() -> None:
    clean, raw = _frames()
    splits = leakage_safe_split(clean, [raw], log=lambda _m: None)
    when = dict(zip(raw["text"], pd.to_datetime(raw["created_at"]), strict=True))
    newest_train = max(when[t] for t in splits["train"]["text"])
    assert min(when[t] for t in splits["test"]["text"]) > newest_train
    assert splits["test"]["group"].tolist() == [text_key(t) for t in splits["test"]["text"]]  # kept as is


def test_split_without_columns_is_the_usual_stratified_one() -> None:
    clean, raw = _frames()
    plain = leakage_safe_split(clean, [raw[["text", "label"]]], log=lambda _m: None)
    assert len(plain["test"]) > 0 and set(plain["test"]["label"]) == {"refund", "track"}


# --- balance fill ----------------------------------------------------------------------------------
def test_balance_fill_queue_only_accepted_rows_train(tmp_path) -> None:
    df = add_row_ids(pd.DataFrame({"text": [f"refund request {i}" for i in range(10)] + ["where is my box"],
                                   "label": ["refund"] * 10 + ["track"]}))
    replies = [{"tickets": ["has my box left the warehouse yet", "box", "tracking for my box please now"]},
               {"tickets": ["i asked about a refund but where is the package"]}]
    teacher = FakeProvider(json_responses=replies)
    items = generate(df, teacher, min_per_class=5, queue=[], hard_negative_share=0.25, log=lambda _m: None)
    assert {i.for_intent for i in items} == {"track"}
    assert any("too_short" in i.flags for i in items)
    queue = tmp_path / "q.jsonl"
    write_queue(queue, items)
    items = read_queue(queue)
    with pytest.raises(ValueError):
        review(items, [items[0].id], accept=False, reviewer="ana")  # a rejection needs a reason
    review(items, [items[0].id], accept=True, reviewer="ana")
    review(items, [i.id for i in items[1:]], accept=False, reviewer="ana", reason="too_short")
    added = accepted_rows(items)
    assert added["text"].tolist() == [items[0].text]
    ent = entropy_report(df, added)
    assert ent["after"] > ent["before"] and ent["rows_added"] == 1


# --- shadow comparison -----------------------------------------------------------------------------
def test_shadow_compare_needs_fifty_outcomes_per_bucket() -> None:
    rows = [{"ticket_id": f"t{i}", "serving_intent": "a", "serving_confidence": 0.9,
             "serving_route": "suggest", "candidate_intent": "a" if i % 4 else "b",
             "candidate_confidence": 0.97, "candidate_route": "auto_resolve"} for i in range(60)]
    outcomes = {f"t{i}": "a" for i in range(55)}
    rep = compare(rows, outcomes)
    assert rep["n_outcomes"] == 55 and rep["overall"]["serving"]["accuracy"] == 1.0
    assert rep["overall"]["candidate"]["correct"] == 41
    assert rep["overall"]["serving"]["threshold_move_allowed"] and MIN_OUTCOMES == 50
    band = rep["by_band"]["[0.85, 0.95)"]["serving"]
    assert band["n"] == 55 and band["threshold_move_allowed"]
    assert rep["would_auto_resolve"]["candidate"]["n"] == 55
    small = compare(rows[:10], outcomes)
    assert not small["by_intent"]["a"]["candidate"]["threshold_move_allowed"]
