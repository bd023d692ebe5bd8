"""Corrections into training data: dedupe, conflicts, leakage, overrides and caps (pure)."""

from __future__ import annotations

import pandas as pd

from src.classifier.data import add_row_ids, text_key
from src.classifier.feedback import LabelledRow, label_of, labelled_rows
from src.classifier.retrain import MergePolicy, merge_corrections


def _row(ticket: str, text: str, label: str, reviewer: str = "ana", at: str = "2026-12-01T10:00:00",
         source: str = "corrected", bad: bool = False) -> LabelledRow:
    return LabelledRow(ticket_id=ticket, text=text, label=label, source=source, predicted="x", action="edit",
                       reviewer=reviewer, reviewed_at=at, bundle_version="b1", bad_example=bad)


def _base(n_per_class: int = 40) -> tuple[pd.DataFrame, dict]:
    rows = [(f"{lab} request number {i}", lab) for lab in ("a", "b") for i in range(n_per_class)]
    rows += [("held out evaluation text", "a")]
    df = add_row_ids(pd.DataFrame(rows, columns=["text", "label"]))
    test = df["text"] == "held out evaluation text"
    manifest = {"train": df[~test][["id", "sha256", "group"]].to_dict("records"),
                "val": [], "calibration": [], "test": df[test][["id", "sha256", "group"]].to_dict("records")}
    return df, manifest


def test_label_of_actions() -> None:
    assert label_of({"action": "accept"}, "a") == ("a", "confirmed")
    assert label_of({"action": "reassign", "team": "x"}, "a") is None  # where, not what
    assert label_of({"action": "reassign", "corrected_intent": "b"}, "a") == ("b", "corrected")
    assert label_of({"action": "check", "note": "correct"}, "a") == ("a", "confirmed")
    assert label_of({"action": "check", "note": "wrong: nope"}, "a") is None
    assert label_of({"action": "check", "note": "wrong", "corrected_intent": "b"}, "a") == ("b", "corrected")
    assert label_of({"action": "ignore"}, "a") is None


def test_latest_labelling_action_wins_and_bad_marks_stick() -> None:
    log = [
        {"ticket_id": "t", "action": "accept", "actor": "ana", "created_at": "1", "bad_example": False,
         "decision": {"intent": "a", "text": "hello there", "bundle_version": "v1"}},
        {"ticket_id": "t", "action": "check", "actor": "bo", "note": "wrong", "corrected_intent": "b",
         "created_at": "2", "bad_example": True, "decision": {"intent": "a", "text": "hello there"}},
    ]
    (row,) = labelled_rows(log)
    assert (row.label, row.reviewer, row.bad_example) == ("b", "bo", True)


def test_merge_dedupes_reports_conflicts_and_blocks_leakage() -> None:
    base, manifest = _base()
    rows = [
        _row("t1", "my parcel came broken", "a", "ana"),
        _row("t2", "My parcel came broken!", "a", "bo"),  # near twin, same label: one row, two reviewers
        _row("t3", "refund or replace?", "a", "ana"),
        _row("t4", "refund or replace", "b", "bo"),  # disagreement, tie: dropped and reported
        _row("t5", "held out evaluation text", "b", "cy"),  # an evaluation row: never trains
        _row("t6", "something bad", "a", bad=True),
        _row("t7", "new intent here", "zzz"),
        _row("t8", "b request number 1", "b", "ana"),  # already there with this label
    ]
    added, replaced, report = merge_corrections(base, manifest, rows, MergePolicy())
    assert added["text"].tolist() == ["My parcel came broken!"] and added["label"].tolist() == ["a"]
    assert not replaced
    assert report.conflicts and report.conflicts[0]["outcome"] == "dropped: tie"
    d = report.dropped
    assert d["validation/calibration/test row (would leak into evaluation)"] == 1
    assert d["marked bad example"] == 1 and d["intent the model does not have"] == 1
    assert d["already in the training data with this intent"] == 1
    assert report.added[0]["reviewers"] == ["ana", "bo"]


def test_overruling_a_training_label_needs_agreeing_reviewers() -> None:
    base, manifest = _base()
    one = [_row("t1", "a request number 3", "b", "ana")]
    added, replaced, _ = merge_corrections(base, manifest, one)
    assert added.empty and not replaced
    two = one + [_row("t2", "a request number 3", "b", "bo")]
    added, replaced, report = merge_corrections(base, manifest, two)
    assert added["label"].tolist() == ["b"] and len(replaced) == 1
    assert report.overrides[0]["old"] == ["a"]


def test_caps_stop_a_few_reviewers_flipping_a_class() -> None:
    base, manifest = _base(n_per_class=40)  # caps: class 25% of 40 = 10, reviewer 10% = 4
    flood = [_row(f"t{i}", f"weird phrasing {i} {'x' * i}", "b", reviewer="ana", at=f"2026-12-01T10:{i:02d}")
             for i in range(30)]
    added, _, report = merge_corrections(base, manifest, flood)
    assert len(added) == 4 and report.capped == {"b": 26}
    crowd = [_row(f"t{i}", f"weird phrasing {i} {'x' * i}", "b", reviewer=f"r{i % 5}",
                  at=f"2026-12-01T10:{i:02d}") for i in range(30)]
    added, _, report = merge_corrections(base, manifest, crowd)
    assert len(added) == 10  # the class cap holds even with many reviewers
    assert set(added["group"]) == {text_key(t) for t in added["text"]}
