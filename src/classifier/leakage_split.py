"""A leakage-safe split when the data says who wrote a ticket and when.

Near-duplicate texts never straddle parts (``data.stratified_split``). Real exports leak in two more
ways: the same customer's tickets in train and test (the model learns the customer's phrasing, the
test flatters it), and future tickets in train (the test no longer measures "next month"). So, when
the labelled file has such columns:

- a customer / account column (``customer_id``, ``account_id``, ``email`` ...): near-duplicate groups
  that share a customer are merged into one component (union-find), and whole components are split;
- a time column (``created_at``, ``timestamp``, ``date`` ...): components are ordered by their newest
  ticket and the newest ones become test, then calibration, then validation; the oldest train. Rows
  without a parseable time count as oldest (train).

Without either column the split is the usual stratified, group-aware one. Membership is still
recorded per row in the manifest, so a frozen split is reproducible whatever the method.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from src.classifier.data import SPLIT_PARTS, text_key

GROUP_COLUMNS = ("customer_id", "customer", "account_id", "account", "user_id", "requester_id",
                 "customer_email", "email", "organization_id", "org_id")  # fmt: skip
TIME_COLUMNS = ("created_at", "timestamp", "submitted_at", "received_at", "date", "time")
TEXT_COLUMNS = ("text", "instruction", "utterance", "query", "sentence")


def detect(columns: Sequence[str]) -> tuple[str | None, str | None]:
    """(customer column, time column) of a table, by name (case-insensitive), or None."""
    lower = {c.lower().strip(): c for c in columns}
    group = next((lower[c] for c in GROUP_COLUMNS if c in lower), None)
    time = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    return group, time


def _frame(source: pd.DataFrame | str | Path) -> pd.DataFrame | None:
    """A raw table with all its columns (a hub dataset id or an unreadable file: None)."""
    if isinstance(source, pd.DataFrame):
        return source
    from src.classifier.data import DataError, _read_file

    path = Path(source)
    if not path.is_file():
        return None
    try:
        return _read_file(path)
    except DataError:
        return None


def row_meta(sources: Sequence[pd.DataFrame | str | Path], text_column: str | None = None) -> pd.DataFrame:
    """``group`` (near-duplicate key), ``customer`` and ``time`` of every raw row that has them."""
    out = []
    for source in sources:
        df = _frame(source)
        if df is None:
            continue
        group_col, time_col = detect(list(df.columns))
        if group_col is None and time_col is None:
            continue
        tcol = text_column if text_column in df.columns else next(
            (c for c in df.columns if c.lower() in TEXT_COLUMNS), None)
        if tcol is None:
            continue
        meta = pd.DataFrame({"group": [text_key(str(t).strip()) for t in df[tcol]]})
        meta["customer"] = df[group_col].astype(str).str.strip().replace("", None) if group_col else None
        meta["time"] = pd.to_datetime(df[time_col], errors="coerce", utc=True) if time_col else pd.NaT
        out.append(meta)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["group", "customer", "time"])


def components(groups: Sequence[str], meta: pd.DataFrame) -> dict[str, str]:
    """Near-duplicate group -> component: groups linked by a shared customer are one component."""
    parent = {g: g for g in groups}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    known = meta[meta["group"].isin(parent) & meta["customer"].notna()]
    for _customer, gs in known.groupby("customer")["group"]:
        first, *rest = list(dict.fromkeys(gs))
        for g in rest:
            a, b = find(first), find(g)
            if a != b:
                parent[b] = a
    return {g: find(g) for g in groups}


def time_split(df: pd.DataFrame, newest: pd.Series, fractions: dict[str, float]) -> dict[str, pd.DataFrame]:
    """Whole components by their newest time: newest -> test, calibration, val; the rest train."""
    order = newest.sort_values(ascending=False, na_position="last", kind="stable").index
    sizes = df.groupby("component").size()
    quota = {p: round(len(df) * f) for p, f in fractions.items()}
    assigned: dict[str, str] = {}
    filled = dict.fromkeys(quota, 0)
    for comp in order:
        dated = pd.notna(newest[comp])
        part = next((p for p in ("test", "calibration", "val") if dated and filled[p] < quota[p]), "train")
        assigned[comp] = part
        if part != "train":
            filled[part] += int(sizes[comp])
    parts = df["component"].map(assigned)
    return {p: df[parts == p].sort_values("sha256").reset_index(drop=True) for p in SPLIT_PARTS}


def leakage_safe_split(
    clean: pd.DataFrame,
    raw: Sequence[pd.DataFrame | str | Path],
    *,
    seed: int = 42,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    calibration_fraction: float = 0.1,
    text_column: str | None = None,
    log=print,
) -> dict[str, pd.DataFrame]:
    """Split ``clean`` (rows with ``group``/``sha256``) by customer and time when the raw tables (or the
    files ``clean`` was loaded from) have such columns; else the usual stratified split."""
    from src.classifier.data import stratified_split

    fractions = {"test": test_fraction, "calibration": calibration_fraction, "val": val_fraction}
    meta = row_meta(raw, text_column)
    has_customer = bool(len(meta)) and meta["customer"].notna().any()
    has_time = bool(len(meta)) and meta["time"].notna().any()
    if not has_customer and not has_time:
        return stratified_split(clean, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                calibration_fraction=calibration_fraction)
    comp = components(sorted(set(clean["group"])), meta) if has_customer else {g: g for g in clean["group"]}
    df = clean.assign(component=clean["group"].map(comp))
    merged = df["component"].nunique()
    how = []
    if has_customer:
        how.append(f"by customer ({clean['group'].nunique()} text groups -> {merged} customer components)")
    if has_time:
        times = meta.groupby("group")["time"].max()
        newest = df.assign(t=df["group"].map(times)).groupby("component")["t"].max()
        splits = time_split(df, newest, fractions)
        undated = int(newest.isna().sum())
        how.append(f"by time (newest -> test; {undated} components without a time stay in train)")
    else:
        grouped = stratified_split(df.assign(group=df["component"]), seed=seed, val_fraction=val_fraction,
                                   test_fraction=test_fraction, calibration_fraction=calibration_fraction)
        original = clean.set_index("sha256")["group"]
        splits = {p: f.assign(group=f["sha256"].map(original)) for p, f in grouped.items()}
    log("leakage-safe split " + " and ".join(how))
    return {p: f.drop(columns=["component"], errors="ignore") for p, f in splits.items()}
