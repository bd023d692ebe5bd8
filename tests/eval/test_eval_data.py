"""Ticket loading: the default is the frozen test split of the classifier bundle's manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.classifier.data import build_manifest, clean_labelled, load_labelled, stratified_split
from src.eval.runner import BenchmarkError, interleave, load_data_tickets


def _bundle_with_manifest(tmp_path: Path) -> tuple[Path, set[str]]:
    data = tmp_path / "all.csv"
    rows = [f"{lab} question number {i},{lab}" for lab in ("refund", "track", "cancel") for i in range(30)]
    data.write_text("text,label\n" + "\n".join(rows) + "\n")
    df, _ = clean_labelled(load_labelled(data))
    splits = stratified_split(df, seed=1)
    manifest = build_manifest(splits, seed=1, source=str(data), full=df)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "split_manifest.json").write_text(json.dumps(manifest))
    return bundle, set(splits["test"]["text"])


def test_default_tickets_are_the_manifest_test_split(tmp_path: Path) -> None:
    bundle, test_texts = _bundle_with_manifest(tmp_path)
    tickets, description = load_data_tickets(None, bundle, None, seed=0)
    assert {t.text for t in tickets} == test_texts
    assert "test split" in description
    limited, _ = load_data_tickets(None, bundle, 3, seed=0)
    assert len(limited) == 3 and {t.label for t in limited} == {"refund", "track", "cancel"}


def test_changed_data_is_a_clear_error(tmp_path: Path) -> None:
    bundle, _ = _bundle_with_manifest(tmp_path)
    (tmp_path / "all.csv").write_text("text,label\nsomething else,refund\nother,track\n")
    with pytest.raises(BenchmarkError, match="data changed"):
        load_data_tickets(None, bundle, None, seed=0)


def test_out_of_scope_rows_must_escalate(tmp_path: Path) -> None:
    data = tmp_path / "clinc.csv"
    data.write_text("text,label\nbook a flight,book_flight\nwhat is the meaning of life,oos\n")
    tickets, _ = load_data_tickets(str(data), tmp_path, None, seed=0)
    assert {t.label: t.should_escalate for t in tickets} == {"book_flight": False, "oos": True}


def test_interleave_is_a_seeded_permutation(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "\n".join(f"t{i},{'ab'[i % 2]}" for i in range(12)) + "\n")
    tickets, _ = load_data_tickets(str(data), tmp_path, None, seed=0)
    a, b = interleave(tickets, 5), interleave(tickets, 5)
    assert [t.id for t in a] == [t.id for t in b] and sorted(t.id for t in a) == sorted(t.id for t in tickets)
    assert [t.id for t in a] != [t.id for t in interleave(tickets, 6)]
