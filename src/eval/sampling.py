"""Deterministic stratified sampling, so a ``--limit`` run keeps the label mix of the full set."""

from __future__ import annotations

import numpy as np
import pandas as pd


def allocate(counts: dict[str, int], n: int) -> dict[str, int]:
    """Split ``n`` over labels proportionally (largest remainder, ties by label name); never above a count."""
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    exact = {lab: n * c / total for lab, c in counts.items()}
    alloc = {lab: int(np.floor(v)) for lab, v in exact.items()}
    left = n - sum(alloc.values())
    order = sorted(counts, key=lambda lab: (-(exact[lab] - alloc[lab]), lab))
    for lab in order:
        if left == 0:
            break
        if alloc[lab] < counts[lab]:
            alloc[lab] += 1
            left -= 1
    return alloc


def stratified_sample(
    df: pd.DataFrame, n: int | None, seed: int, label_column: str = "label"
) -> pd.DataFrame:
    """Up to ``n`` rows with label proportions kept; same (df, n, seed) -> same rows, in original order."""
    if n is None or n >= len(df):
        return df.copy()
    if n <= 0:
        raise ValueError("--limit must be a positive number of tickets")
    rng = np.random.default_rng(seed)
    counts = df[label_column].value_counts().to_dict()
    alloc = allocate({str(k): int(v) for k, v in counts.items()}, n)
    picked: list[int] = []
    for lab in sorted(alloc):
        positions = np.flatnonzero(df[label_column].astype(str).to_numpy() == lab)
        picked.extend(rng.permutation(positions)[: alloc[lab]].tolist())
    return df.iloc[sorted(picked)].copy()
