"""Data loading, cleaning diagnostics and the frozen split manifest (no model needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from src.classifier.data import (
    DataError,
    build_manifest,
    check_balance,
    class_balance,
    clean_labelled,
    load_labelled,
    near_duplicate_labels,
    normalise_labels,
    normalise_text,
    overlapping_rows,
    split_from_manifest,
    stratified_split,
    text_key,
)


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _frame(n_per_class: dict[str, int]) -> pd.DataFrame:
    rows = [{"text": f"{label} request number {i}", "label": label}
            for label, n in n_per_class.items() for i in range(n)]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ load
def test_csv_autodetects_text_and_category_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", "text,category\nwhere is order {{Order Number}},track_order\nhi,greet\n")
    df = load_labelled(path)
    assert list(df.columns) == ["text", "label"]
    assert df["label"].tolist() == ["track_order", "greet"]


def test_label_column_priority_prefers_intent_over_category(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", "instruction,category,intent\ncancel it,ORDER,cancel_order\n")
    df = load_labelled(path)
    assert df.loc[0, "text"] == "cancel it"
    assert df.loc[0, "label"] == "cancel_order"


def test_jsonl_with_utterance_and_explicit_columns(tmp_path: Path) -> None:
    lines = [{"utterance": "reset password", "intent": "pw", "other": "x"},
             {"utterance": "refund", "intent": "rf"}]
    path = _write(tmp_path, "d.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    assert load_labelled(path)["text"].tolist() == ["reset password", "refund"]
    explicit = load_labelled(path, text_column="utterance", label_column="other")
    assert explicit["label"].tolist() == ["x", ""]


def test_missing_column_error_lists_available_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", "body,tag\nhello,a\n")
    with pytest.raises(DataError, match=r"no text column.*body.*--text-column"):
        load_labelled(path)
    with pytest.raises(DataError, match="label column 'nope' not found"):
        load_labelled(path, text_column="body", label_column="nope")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty"),
        ("header.csv", "text,label\n", "no rows"),
        ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00" * 20, "not UTF-8"),
        ("data.xlsx", "x", "unsupported file type"),
        ("bad.json", "{not json", "not valid JSON"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_labelled(_write(tmp_path, name, content))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_labelled(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------------------- clean
def test_label_case_and_whitespace_variants_are_normalised_and_reported() -> None:
    raw = ["refund", "refund", "Refund", " refund ", "track  order", "track order"]
    labels, variants = normalise_labels(raw)
    assert labels[:4] == ["refund"] * 4
    assert variants["refund"] == [" refund ", "Refund"]
    assert labels[4] == labels[5]


def test_near_duplicate_labels_are_flagged_not_merged() -> None:
    labels = ["cancel_order", "cancel-order", "cancel_orders", "refund"]
    df = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": labels})
    clean, report = clean_labelled(df)
    assert set(clean["label"]) == {"cancel_order", "cancel-order", "cancel_orders", "refund"}
    flagged = {frozenset(p[:2]) for p in report.near_duplicate_labels}
    assert frozenset({"cancel_order", "cancel-order"}) in flagged
    assert frozenset({"cancel_order", "cancel_orders"}) in flagged
    assert not any("refund" in pair for pair in flagged)
    assert near_duplicate_labels(["get_refund", "track_order", "delete_account"]) == []


def test_duplicates_and_empty_texts_removed_with_counts_placeholders_kept() -> None:
    df = pd.DataFrame({
        "text": ["where is {{Order Number}}", "where is {{Order Number}}", "  ", "",
                 "other <b>html</b>", "¿dónde?"],
        "label": ["track", "track", "track", "x", "misc", "misc"],
    })
    clean, report = clean_labelled(df, source="inline")
    assert report.n_raw == 6
    assert report.n_empty_removed == 2
    assert report.n_duplicates_removed == 1
    assert report.n_clean == len(clean) == 3
    assert "where is {{Order Number}}" in clean["text"].tolist()
    assert "¿dónde?" in clean["text"].tolist()
    assert clean["id"].is_unique and clean["sha256"].str.len().eq(64).all()
    assert any("2 empty" in line and "1 exact-duplicate" in line for line in report.summary_lines())


def test_conflicting_labels_for_same_text_are_counted() -> None:
    _, report = clean_labelled(pd.DataFrame({"text": ["same", "same"], "label": ["a", "b"]}))
    assert report.n_conflicting_texts == 1


# --------------------------------------------------------------------------------------- balance
def test_entropy_in_nats_and_normalised() -> None:
    even = class_balance(["a"] * 50 + ["b"] * 50)
    assert even.entropy_nats == pytest.approx(math.log(2))
    assert even.entropy_normalised == pytest.approx(1.0)
    assert even.status == "ok"
    skew = class_balance(["a"] * 90 + ["b"] * 10)
    expected = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert skew.entropy_nats == pytest.approx(expected)
    assert skew.entropy_normalised == pytest.approx(expected / math.log(2))
    assert skew.counts == {"a": 90, "b": 10}


def test_balance_warns_between_thresholds_and_refuses_below_unless_forced() -> None:
    ok = class_balance(["a"] * 80 + ["b"] * 20)  # normalised 0.722: just above the warning line
    assert ok.entropy_normalised == pytest.approx(0.7219, abs=1e-3)
    assert ok.status == "ok" and check_balance(ok) is None
    mid = class_balance(["a"] * 85 + ["b"] * 15)  # ~0.61
    assert mid.status == "warn"
    assert "WARNING" in (check_balance(mid) or "")
    bad = class_balance(["a"] * 95 + ["b"] * 5)  # ~0.29
    assert bad.status == "refuse"
    with pytest.raises(DataError, match="--force"):
        check_balance(bad)
    assert "--force given" in (check_balance(bad, force=True) or "")
    with pytest.raises(DataError, match="at least 2 classes"):
        check_balance(class_balance(["a"] * 10), force=True)


# ----------------------------------------------------------------------------------------- split
def test_split_is_stratified_70_10_10_10() -> None:
    clean, _ = clean_labelled(_frame({"a": 100, "b": 50, "c": 10}))
    parts = stratified_split(clean, seed=1)
    assert list(parts) == ["train", "val", "calibration", "test"]
    counts = {p: parts[p]["label"].value_counts().to_dict() for p in parts}
    for part in ("test", "val", "calibration"):
        assert counts[part] == {"a": 10, "b": 5, "c": 1}
    assert counts["train"] == {"a": 70, "b": 35, "c": 7}
    ids = [set(parts[p]["id"]) for p in parts]
    assert all(not (ids[i] & ids[j]) for i in range(4) for j in range(i + 1, 4))


def test_near_twins_are_deduplicated_and_never_straddle_parts() -> None:
    rows = [{"text": f"Where is order {i}?", "label": "track"} for i in range(60)]
    rows += [{"text": f"where is ORDER {i}", "label": "track"} for i in range(60)]  # near twins: removed
    rows += [{"text": f"cancel  order {i}!!", "label": "cancel"} for i in range(60)]
    rows += [{"text": f"Cancel order {i}", "label": "refund"} for i in range(10)]  # label conflicts
    clean, report = clean_labelled(pd.DataFrame(rows))
    assert report.n_near_duplicates_removed == 60 and report.n_clean == 130
    assert report.n_conflicting_texts == 10
    assert report.label_conflicts[0]["labels"] == ["cancel", "refund"]
    assert any("label conflicts" in line for line in report.summary_lines())
    parts = stratified_split(clean, seed=3)
    where = {g: p for p, frame in parts.items() for g in frame["group"]}
    for p, frame in parts.items():  # both rows of a conflicting pair are in the same part
        assert all(where[g] == p for g in frame["group"])
    conflict_groups = clean.groupby("group")["label"].nunique()
    conflict_groups = set(conflict_groups[conflict_groups > 1].index)
    assert sum(len(set(f["group"]) & conflict_groups) for f in parts.values()) == 10


def test_text_key_ignores_case_whitespace_and_punctuation_only() -> None:
    assert text_key("Cancel   my order!") == text_key("cancel my order") == text_key(" CANCEL, my order. ")
    assert text_key("cancel my order") != text_key("cancel my orders")
    assert normalise_text("Where's {{Order Number}}?") == "where s order number"


def test_overlapping_rows_flags_near_twins_of_training_rows() -> None:
    clean, _ = clean_labelled(_frame({"a": 30, "b": 30}))
    parts = stratified_split(clean, seed=2)
    manifest = build_manifest(parts, seed=2, source="s", full=clean)
    train_text = parts["train"]["text"].iloc[0]
    external, _ = clean_labelled(pd.DataFrame({"text": [train_text.upper() + "!", "something new entirely"],
                                               "label": ["a", "a"]}))
    flagged = dict(zip(external["text"], overlapping_rows(external, manifest), strict=True))
    assert flagged == {train_text.upper() + "!": True, "something new entirely": False}


def test_manifest_is_deterministic_and_independent_of_row_order() -> None:
    clean, _ = clean_labelled(_frame({"a": 40, "b": 30}))
    shuffled, _ = clean_labelled(_frame({"a": 40, "b": 30}).sample(frac=1, random_state=3))
    m1 = build_manifest(stratified_split(clean, seed=5), seed=5, source="s", full=clean)
    m2 = build_manifest(stratified_split(shuffled, seed=5), seed=5, source="s", full=shuffled)
    m3 = build_manifest(stratified_split(clean, seed=6), seed=6, source="s", full=clean)
    assert {k: m1[k] for k in ("train", "val", "calibration", "test", "data_hash")} == {
        k: m2[k] for k in ("train", "val", "calibration", "test", "data_hash")
    }
    assert m1["test"] != m3["test"]
    assert set(m1) >= {"seed", "source", "data_hash", "train", "val", "calibration", "test"}
    assert all(set(r) == {"id", "sha256", "group"} for r in m1["train"])


def test_split_from_manifest_round_trip_and_detects_changed_data() -> None:
    clean, _ = clean_labelled(_frame({"a": 30, "b": 30}))
    parts = stratified_split(clean, seed=2)
    manifest = json.loads(json.dumps(build_manifest(parts, seed=2, source="s", full=clean)))
    again = split_from_manifest(clean.sample(frac=1, random_state=0), manifest, "test")
    assert sorted(again["id"]) == sorted(parts["test"]["id"])
    raw = _frame({"a": 30, "b": 30})
    raw.loc[raw["text"].isin(parts["test"]["text"]), "text"] += " (edited)"
    changed, _ = clean_labelled(raw)
    with pytest.raises(DataError, match="data changed"):
        split_from_manifest(changed, manifest, "test")
    with pytest.raises(ValueError, match="part must be"):
        split_from_manifest(clean, manifest, "dev")


def test_unknown_test_labels_are_an_error_unless_declared_out_of_scope() -> None:
    from src.classifier.data import check_test_labels

    check_test_labels(["refund", "oos", "OOS"], ["refund", "track_order"], ["oos"])
    with pytest.raises(DataError, match=r"'track_ordr' \(did you mean 'track_order'\?\)"):
        check_test_labels(["refund", "track_ordr"], ["refund", "track_order"], ["oos"])
