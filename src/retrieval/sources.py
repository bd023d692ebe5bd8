"""Read a CSV/JSONL file of resolved tickets into rows, with clear errors for unusable files.

The whole file is read and validated before anything is written, so a bad file never produces a
silent partial ingest. CSV goes through the ``csv`` module (Bitext has CRLF line endings and
newlines inside quoted fields); JSONL lines that are not JSON objects are counted, not fatal.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

# First match wins (case-insensitive), so explicit flags are only needed for unusual files.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "text": ("text", "instruction", "utterance", "ticket", "body", "message", "question", "query"),
    "response": ("response", "resolution", "answer", "reply"),
    "intent": ("intent", "label"),
    "category": ("category",),
    "resolved_at": ("resolved_at", "closed_at", "resolved", "date"),
    "csat": ("csat", "satisfaction"),
    "tags": ("tags", "flags"),
    "language": ("language", "lang"),
}
REQUIRED = ("text", "response")
MAX_FIELD_BYTES = 16 * 1024 * 1024


class SourceError(ValueError):
    """The file cannot be ingested at all (message says what to fix)."""


@dataclass
class SourceRows:
    """Rows as dicts keyed by the file's own column names, plus how many lines were unreadable."""

    columns: list[str]
    rows: list[dict[str, object]]
    malformed: int = 0
    notes: list[str] = field(default_factory=list)


def looks_like_hub_id(source: str | Path) -> bool:
    """``owner/name`` that is not a local path: a Hugging Face dataset id (users online)."""
    text = str(source)
    return not Path(text).exists() and text.count("/") == 1 and not text.startswith((".", "/"))


def read_hub_rows(dataset_id: str, *, split: str = "train", limit: int | None = None) -> SourceRows:
    """Rows of a Hugging Face dataset (needs network; offline users pass a file instead)."""
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, split=split)
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        raise SourceError(f"could not load Hugging Face dataset {dataset_id!r}: {exc}") from None
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return SourceRows(columns=list(ds.column_names), rows=[dict(r) for r in ds])


def read_rows(path: Path, *, encoding: str = "utf-8", limit: int | None = None) -> SourceRows:
    """Parse ``path`` (``.csv``/``.tsv``/``.jsonl``/``.json``, or a hub dataset id) -> rows.

    Raises :class:`SourceError`.
    """
    if looks_like_hub_id(path):
        return read_hub_rows(str(path), limit=limit)
    if not path.exists():
        raise SourceError(f"source file not found: {path}")
    if not path.is_file():
        raise SourceError(f"source is not a file: {path}")
    raw = path.read_bytes()
    if not raw.strip():
        raise SourceError(f"source file is empty: {path}")
    if b"\x00" in raw[:8192] and encoding.lower().replace("-", "") == "utf8":
        raise SourceError(f"{path} looks binary (NUL bytes), not a CSV/JSONL text file")
    try:
        content = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path} is not valid {encoding} (byte {exc.start}: {raw[exc.start : exc.start + 4]!r}); "
            "re-save it as UTF-8 or pass --encoding (e.g. --encoding cp1252)"
        ) from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}") from None
    content = content.removeprefix("\ufeff")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(content, limit)
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(content, "\t" if suffix == ".tsv" else ",", limit)
    raise SourceError(f"unsupported file type {suffix!r}: use .csv, .tsv or .jsonl")


def _read_csv(content: str, delimiter: str, limit: int | None) -> SourceRows:
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_BYTES))
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    columns = [c.strip() for c in (reader.fieldnames or []) if c is not None]
    if not columns:
        raise SourceError("CSV has no header row")
    rows: list[dict[str, object]] = []
    malformed = 0
    try:
        for row in reader:
            if None in row:  # more cells than header columns: misaligned row
                malformed += 1
                continue
            rows.append({(k or "").strip(): v for k, v in row.items()})
            if limit is not None and len(rows) >= limit:
                break
    except csv.Error as exc:
        raise SourceError(f"CSV parse error at line {reader.line_num}: {exc}") from None
    return SourceRows(columns=columns, rows=rows, malformed=malformed)


def _read_jsonl(content: str, limit: int | None) -> SourceRows:
    stripped = content.lstrip()
    if stripped.startswith("["):  # a JSON array file is accepted too
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SourceError(f"invalid JSON array: {exc}") from None
        lines: list[object] = list(data)
        malformed = 0
    else:
        lines, malformed = [], 0
        for line in content.splitlines():
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                malformed += 1
    rows = [r for r in lines if isinstance(r, dict)]
    malformed += len(lines) - len(rows)
    if limit is not None:
        rows = rows[:limit]
    columns: list[str] = []
    for r in rows:
        for key in r:
            if key not in columns:
                columns.append(key)
    if not rows:
        raise SourceError(f"no JSON objects found ({malformed} malformed lines)")
    return SourceRows(columns=columns, rows=rows, malformed=malformed)


def resolve_columns(columns: list[str], explicit: dict[str, str | None]) -> dict[str, str]:
    """Map logical fields (text, response, ...) to the file's columns; explicit names must exist."""
    lower = {c.lower(): c for c in columns}
    mapping: dict[str, str] = {}
    for logical, candidates in CANDIDATES.items():
        wanted = explicit.get(logical)
        if wanted:
            if wanted not in columns and wanted.lower() not in lower:
                raise SourceError(
                    f"--{logical.replace('_', '-')}-column {wanted!r} is not in the file; "
                    f"columns are: {', '.join(columns)}"
                )
            mapping[logical] = wanted if wanted in columns else lower[wanted.lower()]
            continue
        for cand in candidates:
            if cand in lower and lower[cand] not in mapping.values():
                mapping[logical] = lower[cand]
                break
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        flags = " ".join(f"--{f}-column NAME" for f in missing)
        raise SourceError(
            f"cannot find the {' and '.join(missing)} column(s) (looked for "
            f"{'; '.join(', '.join(CANDIDATES[f]) for f in missing)}); columns are: "
            f"{', '.join(columns)}. Pass {flags}."
        )
    return mapping
