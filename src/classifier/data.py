"""Labelled-data loading, cleaning diagnostics and the frozen split manifest.

A support-ops engineer points the trainer at *their* export, so loading is forgiving about format
(CSV/TSV/JSONL/JSON/Parquet/HF dataset id) and column names, but strict about what it changes:
every normalisation, removal and suspicion is counted in a :class:`DataReport` instead of
happening silently. Split membership is defined by content hashes so a manifest stays valid
whatever the row order of the file, and evaluation is comparable across runs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_CANDIDATES = ("text", "instruction", "utterance", "query", "sentence")
LABEL_CANDIDATES = ("label", "intent", "category")
ENTROPY_WARN = 0.7
ENTROPY_REFUSE = 0.5
NEAR_DUPLICATE_RATIO = 0.85
# train: weights; val: epoch choice only; calibration: temperature + auto-resolve thresholds (never used
# for a training decision); test: the final numbers.
SPLIT_PARTS = ("train", "val", "calibration", "test")
MAX_CONFLICT_EXAMPLES = 20


class DataError(ValueError):
    """The labelled data cannot be used as given; the message says what to fix."""


# --------------------------------------------------------------------------------------------- load
def _read_file(path: Path) -> pd.DataFrame:
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix in (".csv", ".csv.gz", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".tsv", ".tsv.gz"):
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if suffix in (".jsonl", ".jsonl.gz", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".json":
            return _read_json(path)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text (binary file?)") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot parse {path} as {suffix or 'a table'}: {exc}") from None
    raise DataError(f"unsupported file type {suffix!r} for {path}: use .csv, .tsv, .jsonl, .json or .parquet")


def _read_json(path: Path) -> pd.DataFrame:
    """A JSON list of records, or ``{"data": [...]}``-style wrappers with one list value."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(obj, dict):
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a JSON list of records (or an object with exactly one list)")
        obj = lists[0]
    if not isinstance(obj, list):
        raise DataError(f"{path}: expected a JSON list of records")
    return pd.DataFrame(obj)


def _read_hub(dataset_id: str) -> pd.DataFrame:
    """``owner/name`` or ``owner/name:split`` via ``datasets`` (online users only)."""
    name, _, split = dataset_id.partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{dataset_id!r} is not a local file and `datasets` is not installed") from None
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # noqa: BLE001 - hub/network errors have many types
        raise DataError(f"could not load Hugging Face dataset {dataset_id!r} (offline?): {exc}") from None
    df = ds.to_pandas()
    # ClassLabel columns come as ints: map them back to names so labels are readable.
    for col, feat in ds.features.items():
        if hasattr(feat, "names") and col in df.columns:
            df[col] = [feat.names[i] for i in df[col]]
    return df


def _pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], kind: str) -> str:
    lower = {c.lower().strip(): c for c in columns}
    if wanted is not None:
        if wanted in columns:
            return wanted
        if wanted.lower() in lower:
            return lower[wanted.lower()]
        raise DataError(f"{kind} column {wanted!r} not found; available columns: {columns}")
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise DataError(
        f"no {kind} column found (looked for {list(candidates)}); available columns: {columns}. "
        f"Pass --{kind}-column."
    )


def load_labelled(
    source: str | Path, text_column: str | None = None, label_column: str | None = None
) -> pd.DataFrame:
    """Load a labelled file / HF dataset id into a ``text,label`` DataFrame of strings.

    No cleaning happens here (see :func:`clean_labelled`); missing values become ``""``.
    """
    path = Path(source).expanduser()
    if path.is_file():
        df = _read_file(path)
    elif path.exists():
        raise DataError(f"{path} is not a file")
    elif re.fullmatch(r"[\w.-]+/[\w.-]+(:[\w.-]+)?", str(source)) and not path.suffix:
        df = _read_hub(str(source))
    else:
        raise DataError(f"data file not found: {source}")
    if df.empty and len(df.columns) == 0:
        raise DataError(f"{source} is empty")
    columns = [str(c) for c in df.columns]
    df.columns = columns
    tcol = _pick_column(columns, text_column, TEXT_CANDIDATES, "text")
    lcol = _pick_column(columns, label_column, LABEL_CANDIDATES, "label")
    if tcol == lcol:
        raise DataError(f"text and label columns are the same column {tcol!r}")
    out = pd.DataFrame({"text": df[tcol], "label": df[lcol]})
    out = out.fillna("").astype(str)
    if out.empty:
        raise DataError(f"{source} has a header but no rows")
    return out.reset_index(drop=True)


# -------------------------------------------------------------------------------------------- clean
def normalise_label_key(label: str) -> str:
    """Case- and whitespace-insensitive identity of a label."""
    return re.sub(r"\s+", " ", label).strip().casefold()


def normalise_labels(labels: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Fold case/whitespace variants onto their most frequent spelling.

    Returns the normalised labels and ``{canonical: [variants...]}`` for groups that had more than
    one spelling (the report). Only trivially-equal spellings are merged; see
    :func:`near_duplicate_labels` for the suspicious-but-different ones.
    """
    stripped = [re.sub(r"\s+", " ", lab).strip() for lab in labels]
    counts = Counter(stripped)
    canonical: dict[str, str] = {}
    for spelling in sorted(counts, key=lambda s: (-counts[s], s)):
        canonical.setdefault(normalise_label_key(spelling), spelling)
    variants: dict[str, set[str]] = {}
    for raw in set(labels):
        canon = canonical[normalise_label_key(raw)]
        if raw != canon:
            variants.setdefault(canon, set()).add(raw)
    return (
        [canonical[normalise_label_key(s)] for s in stripped],
        {c: sorted(v) for c, v in sorted(variants.items())},
    )


def near_duplicate_labels(
    labels: list[str], ratio: float = NEAR_DUPLICATE_RATIO
) -> list[tuple[str, str, float]]:
    """Pairs of distinct labels that look like the same intent spelled differently (flag, never merge)."""
    uniq = sorted(set(labels))
    squash = {lab: re.sub(r"[^a-z0-9]", "", lab.casefold()) for lab in uniq}
    pairs = []
    for i, a in enumerate(uniq):
        for b in uniq[i + 1 :]:
            if squash[a] and squash[a] == squash[b]:
                pairs.append((a, b, 1.0))
                continue
            matcher = difflib.SequenceMatcher(None, squash[a], squash[b])
            if matcher.real_quick_ratio() >= ratio and matcher.quick_ratio() >= ratio:
                r = matcher.ratio()
                if r >= ratio:
                    pairs.append((a, b, round(r, 3)))
    return pairs


@dataclass
class BalanceReport:
    """Per-class counts and Shannon entropy of the label distribution."""

    counts: dict[str, int]
    entropy_nats: float
    entropy_normalised: float  # entropy / log(K); 1 = perfectly balanced
    status: str  # "ok" | "warn" | "refuse"


def class_balance(labels: list[str]) -> BalanceReport:
    """Entropy-based imbalance diagnostic: warn below 0.7, refuse below 0.5 (normalised)."""
    counts = Counter(labels)
    n = sum(counts.values())
    k = len(counts)
    if n == 0:
        return BalanceReport({}, 0.0, 0.0, "refuse")
    p = np.array([c / n for c in counts.values()], dtype=float)
    h = float(-(p * np.log(p)).sum())
    hn = h / math.log(k) if k > 1 else 0.0
    status = "refuse" if hn < ENTROPY_REFUSE else "warn" if hn < ENTROPY_WARN else "ok"
    return BalanceReport(dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))), h, hn, status)


@dataclass
class DataReport:
    """Everything cleaning did or noticed, for the logs and the bundle's ``data_info``."""

    source: str
    n_raw: int
    n_clean: int = 0
    n_empty_removed: int = 0
    n_duplicates_removed: int = 0
    n_near_duplicates_removed: int = 0  # same normalised text and label as a kept row
    n_conflicting_texts: int = 0  # same normalised text, different labels (kept, same split, suspicious)
    label_conflicts: list[dict] = field(default_factory=list)  # examples: {"text", "labels"}
    label_variants: dict[str, list[str]] = field(default_factory=dict)
    near_duplicate_labels: list[tuple[str, str, float]] = field(default_factory=list)
    balance: BalanceReport | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.source}: {self.n_raw} rows -> {self.n_clean} after removing "
            f"{self.n_empty_removed} empty, {self.n_duplicates_removed} exact-duplicate and "
            f"{self.n_near_duplicates_removed} near-duplicate rows (same text up to case, whitespace and "
            "punctuation)",
        ]
        if self.n_conflicting_texts:
            lines.append(f"WARNING: {self.n_conflicting_texts} texts appear with more than one label "
                         "(label conflicts; kept, and never split across train/val/calibration/test)")
            for c in self.label_conflicts[:5]:
                lines.append(f"  conflict: {c['text'][:80]!r} -> {c['labels']}")
        for canon, variants in self.label_variants.items():
            lines.append(f"label variants normalised: {variants} -> {canon!r}")
        for a, b, r in self.near_duplicate_labels:
            lines.append(f"WARNING: labels {a!r} and {b!r} look alike (similarity {r}); not merged")
        if self.balance is not None:
            b = self.balance
            lines.append(
                f"{len(b.counts)} classes; entropy {b.entropy_nats:.3f} nats, normalised "
                f"{b.entropy_normalised:.3f} ({b.status})"
            )
        return lines


def clean_labelled(df: pd.DataFrame, source: str = "data") -> tuple[pd.DataFrame, DataReport]:
    """Normalise labels, drop empty texts/labels, exact and near duplicates; text itself is kept verbatim.

    Near duplicates share a :func:`text_key` (case, whitespace and punctuation ignored) and a label:
    one row is kept (the first by content hash). The same key with different labels is a *label
    conflict*: kept and reported; its rows share a ``group`` so a split never separates them.
    Placeholders such as ``{{Order Number}}`` are data and are not touched. Returns rows with
    ``id``/``sha256``/``group`` columns added (see :func:`row_hash`, :func:`text_key`).
    """
    report = DataReport(source=source, n_raw=len(df))
    text = df["text"].astype(str).str.strip()
    label = df["label"].astype(str)
    keep = (text != "") & (label.str.strip() != "")
    report.n_empty_removed = int((~keep).sum())
    out = pd.DataFrame({"text": text[keep].tolist(), "label": label[keep].tolist()})
    if not out.empty:
        out["label"], report.label_variants = normalise_labels(out["label"].tolist())
    before = len(out)
    out = out.drop_duplicates(subset=["text", "label"]).reset_index(drop=True)
    report.n_duplicates_removed = before - len(out)
    out = add_row_ids(out)
    before = len(out)
    out = out.sort_values("sha256").drop_duplicates(subset=["group", "label"]).reset_index(drop=True)
    report.n_near_duplicates_removed = before - len(out)
    if len(out):
        labels_per_group = out.groupby("group")["label"].agg(lambda x: sorted(set(x)))
        conflicts = labels_per_group[labels_per_group.map(len) > 1]
        report.n_conflicting_texts = len(conflicts)
        first_text = out.drop_duplicates("group").set_index("group")["text"]
        report.label_conflicts = [
            {"text": str(first_text[g]), "labels": labs}
            for g, labs in conflicts.sort_index().head(MAX_CONFLICT_EXAMPLES).items()
        ]
    report.n_clean = len(out)
    report.near_duplicate_labels = near_duplicate_labels(out["label"].tolist())
    report.balance = class_balance(out["label"].tolist())
    return out, report


def check_test_labels(test_labels: list[str], known: list[str], oos_labels: list[str]) -> None:
    """An unknown label in a test file is a spelling error unless it is a declared out-of-scope label:
    silently scoring a misspelt intent as out-of-scope would make every metric wrong."""
    oos = {normalise_label_key(x) for x in oos_labels}
    known_set = set(known)
    unknown = sorted({x for x in test_labels if x not in known_set and normalise_label_key(x) not in oos})
    if not unknown:
        return
    hints = []
    for lab in unknown[:10]:
        close = difflib.get_close_matches(lab, known, n=1, cutoff=0.6)
        hints.append(f"{lab!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise DataError(f"{len(unknown)} test label(s) the training data does not have: {', '.join(hints)}; "
                    f"declare out-of-scope labels with --oos-label (accepted now: {sorted(oos_labels)})")


def check_balance(balance: BalanceReport, force: bool = False) -> str | None:
    """Refuse badly imbalanced data unless forced; return a warning line (or None)."""
    if len(balance.counts) < 2:
        raise DataError(f"need at least 2 classes to train, found {len(balance.counts)}")
    msg = (
        f"class balance: normalised entropy {balance.entropy_normalised:.3f} "
        f"(warn < {ENTROPY_WARN}, refuse < {ENTROPY_REFUSE})"
    )
    if balance.status == "refuse" and not force:
        raise DataError(msg + ": too imbalanced to train a useful classifier; pass --force to train anyway")
    if balance.status != "ok":
        return "WARNING: " + msg + ("; --force given" if balance.status == "refuse" else "")
    return None


# ---------------------------------------------------------------------------------------- identity
def row_hash(text: str, label: str) -> str:
    """Content hash of one labelled row: a changed text or label is a different row."""
    return hashlib.sha256(f"{text}\x1f{label}".encode()).hexdigest()


_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalise_text(text: str) -> str:
    """Text identity for near-duplicate detection: case, whitespace and punctuation ignored."""
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def text_key(text: str) -> str:
    """Short hash of :func:`normalise_text`: rows with the same key are near twins (one split)."""
    return hashlib.sha256(normalise_text(text).encode()).hexdigest()[:16]


def add_row_ids(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``sha256`` (full content hash), ``id`` (its first 16 hex digits) and ``group`` (text key)."""
    out = df.copy()
    out["sha256"] = [row_hash(t, lab) for t, lab in zip(out["text"], out["label"], strict=True)]
    out["id"] = out["sha256"].str[:16]
    out["group"] = [text_key(t) for t in out["text"]]
    return out


def data_hash(df: pd.DataFrame) -> str:
    """Order-independent hash of a whole (cleaned) dataset."""
    h = hashlib.sha256()
    for s in sorted(df["sha256"]):
        h.update(s.encode())
    return h.hexdigest()


# -------------------------------------------------------------------------------------------- split
def stratified_split(
    df: pd.DataFrame,
    *,
    seed: int = 42,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    calibration_fraction: float = 0.1,
) -> dict[str, pd.DataFrame]:
    """Per-class shuffled split into train / val / calibration / test, by near-duplicate group.

    Deterministic in (content, seed) and independent of row order. Whole groups (rows with the same
    :func:`text_key`, label conflicts included) go to one part, so near twins never straddle parts; a
    group is stratified under its first label. Every class with at least 4 groups gets at least one
    group in each non-empty part, so per-class metrics exist for every class.
    """
    if "group" not in df.columns:
        df = add_row_ids(df)
    fractions = {"test": test_fraction, "calibration": calibration_fraction, "val": val_fraction}
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {p: [] for p in SPLIT_PARTS}
    by_group = df.sort_values("sha256").groupby("group", sort=True)
    group_label = by_group["label"].agg(lambda x: sorted(x)[0])
    members = {g: list(ix) for g, ix in by_group.groups.items()}
    for _label, groups in sorted(group_label.groupby(group_label), key=lambda kv: kv[0]):
        keys = sorted(groups.index)
        keys = [keys[i] for i in rng.permutation(len(keys))]
        n = sum(len(members[g]) for g in keys)
        quota = {p: round(n * f) for p, f in fractions.items()}
        if len(keys) >= 1 + sum(f > 0 for f in fractions.values()):
            quota = {p: max(q, 1) if fractions[p] > 0 else 0 for p, q in quota.items()}
        filled = dict.fromkeys(fractions, 0)
        for g in keys:
            rows = members[g]
            target = next((p for p in fractions if filled[p] < quota[p]), "train")
            if target != "train":
                filled[target] += len(rows)
            parts[target].extend(rows)
    # Canonical order (by content hash) so the manifest does not depend on the file's row order.
    return {p: df.loc[ix].sort_values("sha256").reset_index(drop=True) for p, ix in parts.items()}


def build_manifest(
    splits: dict[str, pd.DataFrame],
    *,
    seed: int,
    source: str,
    full: pd.DataFrame,
    test_source: str | None = None,
) -> dict:
    """The frozen split manifest: ids + content hashes per part (see contracts)."""
    manifest: dict = {"seed": seed, "source": source, "data_hash": data_hash(full)}
    if test_source is not None:
        manifest["test_source"] = test_source
    for part in SPLIT_PARTS:
        frame = splits.get(part)
        if frame is not None and "group" not in frame.columns:
            frame = add_row_ids(frame[["text", "label"]])
        rows = [] if frame is None else frame[["id", "sha256", "group"]].to_dict("records")
        manifest[part] = rows
    return manifest


def overlapping_rows(
    df: pd.DataFrame, manifest: dict, parts: tuple[str, ...] = ("train", "val")
) -> pd.Series:
    """Boolean mask: rows of ``df`` whose near-duplicate group occurs in ``parts`` of the manifest.

    Manifests written before groups were recorded only have exact content hashes; those are used then.
    """
    if "group" not in df.columns:
        df = add_row_ids(df)
    groups = {r.get("group") for p in parts for r in manifest.get(p) or []} - {None}
    hashes = {r["sha256"] for p in parts for r in manifest.get(p) or []}
    return df["group"].isin(groups) | df["sha256"].isin(hashes)


def split_from_manifest(df: pd.DataFrame, manifest: dict, part: str) -> pd.DataFrame:
    """Re-select one part's rows from (cleaned) data; fail loudly if the data changed."""
    if part not in SPLIT_PARTS:
        raise ValueError(f"part must be one of {SPLIT_PARTS}, got {part!r}")
    if "sha256" not in df.columns:
        df = add_row_ids(df)
    wanted = manifest.get(part) or []  # a manifest from before the calibration split has none
    by_hash = df.drop_duplicates("sha256").set_index("sha256")
    missing = [r["id"] for r in wanted if r["sha256"] not in by_hash.index]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(wanted)} {part} rows from the split manifest are not in the data "
            f"(first ids: {missing[:5]}); the data changed since the manifest was written"
        )
    out = by_hash.loc[[r["sha256"] for r in wanted]].reset_index()
    return out[["text", "label", "id", "sha256", "group"]]


def write_manifest(manifest: dict, path: Path) -> None:
    path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def load_split(bundle_dir: Path, part: str) -> tuple[pd.DataFrame, str]:
    """Rows of one frozen split of a bundle, re-read from the data named in its manifest.

    The test split of a bundle trained with ``--test FILE`` comes from that file. Raises DataError
    when the data is not on this machine or changed since the manifest was written.
    """
    path = Path(bundle_dir) / "split_manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the split manifest {path}: {exc}") from None
    external = manifest.get("test_source") if part == "test" else None
    sources = [external] if external else str(manifest["source"]).split(",")
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        raise DataError(f"the {part} split's data is not on this machine: {missing}")
    raw = pd.concat([load_labelled(s) for s in sources], ignore_index=True)
    clean, _ = clean_labelled(raw, source=",".join(sources))
    description = f"{part} split of `{','.join(sources)}` (frozen manifest)"
    return split_from_manifest(clean, manifest, part), description
