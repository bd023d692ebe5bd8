"""Reversible PII masking: nothing personal leaves the box when an external LLM is used.

Detection is rule-based and deliberately conservative about *what counts*: card numbers must pass
the Luhn check and IBANs the ISO 13616 mod-97 check, so order numbers and typos are not masked as
cards. Each distinct value gets one numbered placeholder (``[EMAIL_1]``); the mapping stays local
so the agent-facing draft can be restored with :func:`unmask`. Bitext-style template placeholders
(``{{Order Number}}``) are left untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from src.text.types import Masked

# --- validators (pure) -----------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """Luhn checksum over a string of digits (card numbers)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check (spaces ignored)."""
    s = re.sub(r"\s+", "", iban).upper()
    if not (15 <= len(s) <= 34) or not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", s):
        return False
    rearranged = s[4:] + s[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def ssn_valid(ssn: str) -> bool:
    """US SSN structural rules: area not 000/666/9xx, group not 00, serial not 0000."""
    area, group, serial = re.split(r"[- ]", ssn)
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


# --- detectors -------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# 13-19 digits, optionally grouped by single spaces or dashes (card-shaped runs).
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
# UK National Insurance number.
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}[ .-]?)?"
    r"(?:\(\d{1,4}\)[ .-]?)?"
    r"\d{2,5}(?:[ .-]\d{2,6}){1,4}"
    r"(?![\w])"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
)
_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq)"
)
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'-]+\.?\s+){1,4}" + _STREET_SUFFIX + r"\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|#)\.?\s*\w{1,6})?"
)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: str | None  # None = claimed but not PII (e.g. a Luhn-invalid card-shaped number)


def _phone_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15:
        return False
    # Dates (2024-01-15, 15.01.2024) and version-like strings are not phone numbers.
    if re.fullmatch(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}", value):
        return False
    return value.startswith(("+", "(")) or len(digits) >= 9 or bool(re.search(r"\d{3}[ .-]\d{4}$", value))


_Detector = tuple[str, re.Pattern[str], Callable[[str], bool] | None]

# Order matters: earlier detectors win overlaps (an email's digits are not a phone number).
_DETECTORS: list[_Detector] = [
    ("EMAIL", _EMAIL, None),
    ("IBAN", _IBAN, iban_valid),
    ("CARD", _CARD, lambda v: luhn_valid(re.sub(r"\D", "", v))),
    ("SSN", _SSN, ssn_valid),
    ("NATIONAL_ID", _NINO, None),
    ("ADDRESS", _ADDRESS, None),
    ("PHONE", _PHONE, _phone_ok),
]


def _overlaps(span: _Span, taken: list[_Span]) -> bool:
    return any(span.start < t.end and t.start < span.end for t in taken)


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """All PII spans ``(start, end, kind)`` in text order (pure; used by :func:`mask_pii`)."""
    taken: list[_Span] = [_Span(m.start(), m.end(), None) for m in _TEMPLATE.finditer(text)]
    for kind, pattern, check in _DETECTORS:
        for m in pattern.finditer(text):
            value = m.group(0)
            ok = check is None or check(value)
            span = _Span(m.start(), m.end(), kind if ok else None)
            if _overlaps(span, taken):
                continue
            if ok:
                taken.append(span)
            elif kind in ("CARD", "SSN"):
                # A card-shaped number failing Luhn is an order/reference number (likewise an
                # impossible SSN): claim it so the phone detector does not mask (part of) it.
                taken.append(span)
    return sorted((s.start, s.end, s.kind) for s in taken if s.kind is not None)


def mask_pii(text: str) -> Masked:
    """Replace PII with numbered placeholders; the same value always maps to the same placeholder."""
    if not text:
        return Masked(text=text or "", mapping={})
    spans = find_pii(text)
    mapping: dict[str, str] = {}
    by_value: dict[tuple[str, str], str] = {}
    counters: dict[str, int] = {}
    out: list[str] = []
    pos = 0
    for start, end, kind in spans:
        value = text[start:end]
        key = (kind, value)
        placeholder = by_value.get(key)
        if placeholder is None:
            counters[kind] = counters.get(kind, 0) + 1
            placeholder = f"[{kind}_{counters[kind]}]"
            by_value[key] = placeholder
            mapping[placeholder] = value
        out.append(text[pos:start])
        out.append(placeholder)
        pos = end
    out.append(text[pos:])
    return Masked(text="".join(out), mapping=mapping)


def unmask(text: str, mapping: dict[str, str]) -> str:
    """Restore placeholders locally (longest first, so ``[EMAIL_10]`` is not hit by ``[EMAIL_1]``)."""
    if not mapping or not text:
        return text
    for placeholder in sorted(mapping, key=len, reverse=True):
        text = text.replace(placeholder, mapping[placeholder])
    return text
