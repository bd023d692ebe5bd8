"""Read resolved tickets from CSV/TSV, JSONL, Parquet or a hub dataset, in chunks, with clear errors.

:func:`open_rows` streams: memory stays flat however large the file. Whole-file problems are
found before the first row is handed out (missing/empty file, NUL bytes, not valid in the given
encoding: a cheap streaming decode pass over the file, unknown type, no header), so an unusable
file never causes a partial ingest. A CSV that turns malformed half-way raises
:class:`SourceError` when it gets there; the rows before it are stored, and re-running after the
fix resumes (ids are content-derived). CSV goes through the ``csv`` module (Bitext has CRLF line
endings and newlines inside quoted fields); JSONL lines that are not JSON objects are counted.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
CHUNK_ROWS = 1024
_SCAN_BYTES = 1 << 20


class SourceError(ValueError):
    """The file cannot be ingested at all (message says what to fix)."""


@dataclass
class SourceRows:
    """Rows as dicts keyed by the file's own column names, plus how many lines were unreadable."""

    columns: list[str]
    rows: list[dict[str, object]]
    malformed: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class RowStream:
    """Column names known up front, rows handed out in chunks; ``malformed`` grows as it reads."""

    columns: list[str]
    _chunks: Iterator[list[dict[str, object]]]
    malformed: int = 0
    name: str = ""

    def chunks(self) -> Iterator[list[dict[str, object]]]:
        return self._chunks


def looks_like_hub_id(source: str | Path) -> bool:
    """``owner/name`` that is not a local path: a Hugging Face dataset id (users online)."""
    text = str(source)
    return not Path(text).exists() and text.count("/") == 1 and not text.startswith((".", "/"))


def _batched(
    rows: Iterable[dict[str, Any]], size: int, limit: int | None
) -> Iterator[list[dict[str, object]]]:
    it = iter(rows if limit is None else itertools.islice(rows, limit))
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _hub_stream(dataset_id: str, *, split: str, limit: int | None, chunk_rows: int) -> RowStream:
    """A Hugging Face dataset, streamed (needs network; offline users pass a file instead)."""
    try:
        from datasets import load_dataset

        ds = load_dataset(dataset_id, split=split, streaming=True)
        rows = iter(ds)
        first = next(rows)
    except StopIteration:
        raise SourceError(f"Hugging Face dataset {dataset_id!r} is empty") from None
    except Exception as exc:  # noqa: BLE001 - hub/network errors come in many types
        raise SourceError(f"could not load Hugging Face dataset {dataset_id!r}: {exc}") from None
    columns = list(first.keys())
    return RowStream(columns, _batched(itertools.chain([first], rows), chunk_rows, limit), name=dataset_id)


def _check_text_file(path: Path, encoding: str) -> None:
    """Whole-file checks that must pass before anything is written (streaming, constant memory)."""
    if not path.exists():
        raise SourceError(f"source file not found: {path}")
    if not path.is_file():
        raise SourceError(f"source is not a file: {path}")
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}") from None
    utf8 = codecs.lookup(encoding).name == "utf-8"
    offset, content = 0, False
    with path.open("rb") as f:
        while block := f.read(_SCAN_BYTES):
            if offset == 0 and b"\x00" in block[:8192] and utf8:
                raise SourceError(f"{path} looks binary (NUL bytes), not a CSV/JSONL text file")
            content = content or bool(block.strip())
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                at = offset + max(exc.start, 0)
                bad = block[max(exc.start, 0) : max(exc.start, 0) + 4]
                raise SourceError(
                    f"{path} is not valid {encoding} (byte {at}: {bad!r}); re-save it as UTF-8 or pass "
                    "--encoding (e.g. --encoding cp1252)"
                ) from None
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise SourceError(f"{path} is not valid {encoding} (truncated at the end)") from None
    if not content:
        raise SourceError(f"source file is empty: {path}")


def _text_encoding(encoding: str) -> str:
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


def _csv_stream(path: Path, delimiter: str, encoding: str, limit: int | None, chunk_rows: int) -> RowStream:
    csv.field_size_limit(min(sys.maxsize, MAX_FIELD_BYTES))
    f = path.open(newline="", encoding=_text_encoding(encoding))
    reader = csv.DictReader(f, delimiter=delimiter)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        f.close()
        raise SourceError(f"CSV parse error in the header: {exc}") from None
    columns = [c.strip() for c in (fieldnames or []) if c is not None]
    if not columns:
        f.close()
        raise SourceError("CSV has no header row")
    stream = RowStream(columns, iter(()), name=str(path))

    def rows() -> Iterator[dict[str, object]]:
        with f:
            try:
                for row in reader:
                    if None in row:  # more cells than header columns: misaligned row
                        stream.malformed += 1
                        continue
                    yield {(k or "").strip(): v for k, v in row.items()}
            except csv.Error as exc:
                raise SourceError(
                    f"CSV parse error at line {reader.line_num}: {exc} (rows before it were ingested; "
                    "fix the file and re-run: stored rows are skipped)"
                ) from None

    stream._chunks = _batched(rows(), chunk_rows, limit)
    return stream


def _jsonl_stream(path: Path, encoding: str, limit: int | None, chunk_rows: int) -> RowStream:
    with path.open(encoding=_text_encoding(encoding)) as f:
        head = f.read(4096).lstrip()
    if head.startswith("["):  # a JSON array is read whole: use JSONL for large files
        try:
            data = json.loads(path.read_text(encoding=_text_encoding(encoding)))
        except json.JSONDecodeError as exc:
            raise SourceError(f"invalid JSON array: {exc}") from None
        objects = [r for r in data if isinstance(r, dict)]
        stream = RowStream(_columns(objects), _batched(objects, chunk_rows, limit), len(data) - len(objects))
    else:
        stream = RowStream([], iter(()), name=str(path))

        def rows() -> Iterator[dict[str, object]]:
            with path.open(encoding=_text_encoding(encoding)) as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        stream.malformed += 1
                        continue
                    if isinstance(obj, dict):
                        yield obj
                    else:
                        stream.malformed += 1

        chunks = _batched(rows(), chunk_rows, limit)
        first = next(chunks, [])
        stream.columns = _columns(first)
        stream._chunks = itertools.chain([first], chunks) if first else iter(())
    if not stream.columns:
        raise SourceError(f"no JSON objects found ({stream.malformed} malformed lines)")
    return stream


def _parquet_stream(path: Path, limit: int | None, chunk_rows: int) -> RowStream:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several error types for bad files
        raise SourceError(f"{path} is not a readable Parquet file: {exc}") from None
    columns = list(pf.schema_arrow.names)
    rows = (row for batch in pf.iter_batches(batch_size=chunk_rows) for row in batch.to_pylist())
    return RowStream(columns, _batched(rows, chunk_rows, limit), name=str(path))


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for r in rows:
        for key in r:
            if key not in columns:
                columns.append(key)
    return columns


def open_rows(
    source: Path | str,
    *,
    encoding: str = "utf-8",
    limit: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    split: str = "train",
) -> RowStream:
    """Open ``source`` (``.csv``/``.tsv``/``.jsonl``/``.json``/``.parquet`` or a hub dataset id).

    Raises :class:`SourceError` for a file that cannot be used at all.
    """
    if looks_like_hub_id(source):
        return _hub_stream(str(source), split=split, limit=limit, chunk_rows=chunk_rows)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        if not path.is_file():
            raise SourceError(f"source file not found: {path}")
        return _parquet_stream(path, limit, chunk_rows)
    _check_text_file(path, encoding)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl_stream(path, encoding, limit, chunk_rows)
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_stream(path, "\t" if suffix == ".tsv" else ",", encoding, limit, chunk_rows)
    raise SourceError(f"unsupported file type {suffix!r}: use .csv, .tsv, .jsonl or .parquet")


def read_rows(path: Path | str, *, encoding: str = "utf-8", limit: int | None = None) -> SourceRows:
    """All rows of a (small) source in memory: query files, tests. Ingest streams instead."""
    stream = open_rows(path, encoding=encoding, limit=limit)
    rows = [row for chunk in stream.chunks() for row in chunk]
    return SourceRows(columns=stream.columns, rows=rows, malformed=stream.malformed)


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
