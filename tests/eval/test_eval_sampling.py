"""Stratified --limit sampling: proportional, deterministic in the seed, never above what exists."""

from __future__ import annotations

import pandas as pd
import pytest

from src.eval.sampling import allocate, stratified_sample


def frame() -> pd.DataFrame:
    rows = (
        [(f"a{i}", "a") for i in range(60)]
        + [(f"b{i}", "b") for i in range(30)]
        + [(f"c{i}", "c") for i in range(10)]
    )
    return pd.DataFrame(rows, columns=["text", "label"])


def test_allocate_largest_remainder_ties_by_name() -> None:
    # exact shares 3, 1.5, 0.5 -> floors 3, 1, 0; one left, tie b/c broken by name
    assert allocate({"a": 6, "b": 3, "c": 1}, 5) == {"a": 3, "b": 2, "c": 0}
    assert allocate({"a": 2, "b": 1}, 10) == {"a": 2, "b": 1}


def test_stratified_sample_keeps_proportions() -> None:
    out = stratified_sample(frame(), 20, seed=1)
    assert len(out) == 20
    assert out["label"].value_counts().to_dict() == {"a": 12, "b": 6, "c": 2}
    assert list(out.index) == sorted(out.index)  # original order kept


def test_stratified_sample_is_deterministic_in_seed() -> None:
    df = frame()
    a = stratified_sample(df, 20, seed=7)
    b = stratified_sample(df.copy(), 20, seed=7)
    c = stratified_sample(df, 20, seed=8)
    assert a["text"].tolist() == b["text"].tolist()
    assert a["text"].tolist() != c["text"].tolist()


def test_no_limit_or_large_limit_returns_everything() -> None:
    df = frame()
    assert len(stratified_sample(df, None, seed=0)) == 100
    assert len(stratified_sample(df, 1000, seed=0)) == 100


def test_non_positive_limit_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--limit"):
        stratified_sample(frame(), 0, seed=0)
