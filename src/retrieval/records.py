"""Pure rules that turn a raw row into a storable resolved ticket (or a reason to skip it).

Kept free of I/O so the ingest decisions (what is junk, what is a duplicate, which id a ticket
gets) are unit-testable and identical wherever they run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from datetime import datetime, timezone

import pandas as pd

# Fixed namespace: ids must be the same on every machine and every run (idempotent re-ingest).
ID_NAMESPACE = uuid.UUID("6f0c2a43-59a3-4c1e-9d56-1d3f4f7e2b10")

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s{}\[\]]", re.UNICODE)


def normalise(text: str) -> str:
    """Case-, accent-form-, punctuation- and whitespace-insensitive form used for ids and dedupe."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return _WS.sub(" ", text).strip()


def text_hash(text: str) -> str:
    """Hash of the normalised text: two tickets with the same hash are near-identical."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def stable_id(text: str, response: str) -> str:
    """Content-derived id (uuid5 of normalised text + response), a valid Qdrant point id."""
    return str(uuid.uuid5(ID_NAMESPACE, normalise(text) + "\x1f" + normalise(response)))


def looks_binary(text: str) -> bool:
    """NUL bytes, or a large share of control/unassigned/replacement characters -> not a ticket."""
    if "\x00" in text:
        return True
    if not text:
        return False
    bad = 0
    for ch in text:
        if ch in "\n\r\t":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cn", "Co", "Cs") or ch == "\ufffd":
            bad += 1
    return bad / len(text) > 0.10


def skip_reason(text: str | None, response: str | None, *, max_chars: int) -> str | None:
    """Why a row cannot become a knowledge-base entry (``None`` = it can)."""
    text = (text or "").strip()
    if not text:
        return "empty_text"
    if looks_binary(text) or looks_binary(response or ""):
        return "binary"
    if len(text) > max_chars or len(response or "") > 4 * max_chars:
        return "too_long"
    if not (response or "").strip():
        return "empty_response"
    return None


def parse_resolved_at(value: object) -> datetime | None:
    """Parse a date/time cell (ISO, RFC, epoch seconds); empty -> None; junk -> ValueError.

    Naive times are taken as UTC so recency arithmetic never mixes aware and naive datetimes.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)):
        parsed = datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:
        raw = str(value).strip()
        if not raw or raw.lower() in ("nan", "none", "null"):
            return None
        if re.fullmatch(r"\d{9,11}(\.\d+)?", raw):
            parsed = datetime.fromtimestamp(float(raw), tz=timezone.utc)
        else:
            try:
                parsed = pd.Timestamp(raw).to_pydatetime()
            except (ValueError, OverflowError, TypeError) as exc:
                raise ValueError(f"unparseable resolved_at {raw[:40]!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def split_tags(value: object) -> list[str]:
    """Tags cell -> list (comma/semicolon/pipe separated; empty -> [])."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [t.strip() for t in re.split(r"[,;|]", str(value)) if t.strip() and t.strip().lower() != "nan"]
