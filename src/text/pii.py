"""Reversible PII masking: nothing personal leaves the box when an external LLM is used.

Detection is rule-based and deliberately conservative about *what counts*: card numbers must pass
the Luhn check and IBANs (any case) the ISO 13616 mod-97 check, so order numbers and typos are not
masked as cards. Context decides where the shape alone cannot: a bare digit run is a phone number
only after a phone cue ("call me on", "mobile:") or in an unmistakable shape (``00`` + country code,
a UK ``07`` mobile), and never right after an order/tracking/reference cue; a date is a date of birth
only after a birth cue ("born", "DOB"); a name is a name after "my name is", a title, a greeting or a
sign-off, and then every other occurrence of it is masked too.

Why rules and not Presidio/spaCy: the only offline spaCy models on PyPI are unofficial re-uploads
(importing them runs a stranger's code), the small English model takes ~3 s to load and ~7 ms per
ticket on this CPU (minutes on a knowledge-base ingest), and it missed lower-case names that a cue
rule catches (docs/privacy.md has the measurements). Names without any cue ("ask Carlos") are missed
by these rules: the limit is documented.

Each distinct value gets one numbered placeholder (``[EMAIL_1]``); the mapping stays local so the
agent-facing draft can be restored with :func:`unmask`. Bitext-style template placeholders
(``{{Order Number}}``) and existing placeholders (``[EMAIL_1]``) are left untouched.
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
    """ISO 13616 mod-97 check (spaces ignored, any case)."""
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


# --- patterns --------------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", re.IGNORECASE)
# 13-19 digits, optionally grouped by single spaces or dashes (card-shaped runs); no card number
# starts with 0 (major industry identifier 0 is never issued), so 0049... stays a phone number.
_CARD = re.compile(r"(?<![\d+-])[1-9](?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
# UK National Insurance number.
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}[ .-]?)?"
    r"(?:\(\d{1,4}\)[ .-]?)?"
    r"\d{2,5}(?:[ .-]\d{2,8}){1,4}"
    r"(?![\w])"
    r"|(?<![\w+])\+\d{8,15}(?!\w)"
)
# One run of digits, no separators: a phone number only in context (see _bare_phone_ok).
_BARE_DIGITS = re.compile(r"(?<![\w+./-])\d{10,15}(?![\w/-]|[.,]\d)")

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1990-03-01
    r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"  # 01/03/1990, 14.07.79
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r",?\s+\d{4}"  # 3 March 1985
    r"|" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4})"  # March 3, 1985
)
_BIRTH_CUE = (
    r"(?:\bborn\b|\bbirth(?:\s*date|day)?\b|\bd\.?o\.?b\b\.?|\bdate\s+of\s+birth\b|\bgeboren\b|"
    r"\bgeburtsdatum\b|\bn[ée]e?\s+le\b|\bdate\s+de\s+naissance\b|\bfecha\s+de\s+nacimiento\b|\bnacid[oa]\b)"
)
_DOB = re.compile(_BIRTH_CUE + r"[^\d\n.!?]{0,24}?(?P<v>" + _DATE + r")", re.IGNORECASE)

_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq)"
)
_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Unit|#)\.?\s*\w{1,6})?"
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'-]+\.?\s+){1,4}" + _STREET_SUFFIX + r"\b\.?" + _UNIT
)
# Lower-case street names: only unambiguous suffixes, and no function word inside ("5 days down
# the road" is not an address).
_ADDRESS_LOWER = re.compile(
    r"\b\d{1,5}[a-z]?\s+(?:(?!(?:the|a|an|my|your|its|his|her|our|their|to|on|in|of|for|and|is|was|"
    r"down|up|this|that|me|it|by|at|from|with|days?|weeks?|items?)\b)[a-z][a-z'-]+\s+){1,3}"
    r"(?:street|avenue|road|boulevard|lane|drive|terrace|parkway|highway)\b" + _UNIT,
    re.IGNORECASE,
)
_ADDRESS_EU = re.compile(
    # German/Dutch/Scandinavian style: Hauptstraße 5a, Musterstr. 12
    r"\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|gasse|allee|platz|damm|ring|straat|laan|gatan|vej)"
    r"\s+\d{1,4}[a-z]?\b"
    # French/Spanish/Italian style: 12 rue de la Paix, 3 avenida del Mar, via Roma 10
    r"|\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|boulevard|bd|chemin|allée|impasse|quai|calle|"
    r"avenida|paseo|via|viale|piazza)\s+(?:(?i:de|du|des|la|le|les|del|di|della|l')\s*)*"
    r"[A-ZÀ-Þ][\wÀ-ÿ'-]+(?:\s+[A-ZÀ-Þ][\wÀ-ÿ'-]+){0,3}"
    r"|\b(?i:calle|c/|avenida|via|viale|piazza)\s+[A-ZÀ-Þ][\wÀ-ÿ'-]+(?:\s+[A-ZÀ-Þ][\wÀ-ÿ'-]+){0,2},?\s+\d{1,4}\b"
)
_PO_BOX = re.compile(r"\bP\.?\s?O\.?\s?Box\s+\d{1,6}\b|\bPostfach\s+\d{1,6}\b", re.IGNORECASE)
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2}\b")
_US_ZIP = re.compile(r"(?<=,\s)[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")

# Names: capitalised words (O'Neill, Anne-Marie), or lower-case words only right after "my name is".
_CAP_WORD = r"[A-Z][a-zà-ÿ]*(?:['’-][A-Z]?[a-zà-ÿ]+)*"
_CAP_NAME = _CAP_WORD + r"(?:\s+" + _CAP_WORD + r"){0,2}"
_LOW_NAME = r"[a-zà-ÿ]+(?:['’-][a-zà-ÿ]+)?(?:\s+[a-zà-ÿ]+(?:['’-][a-zà-ÿ]+)?)?"
_NAME_CUE = re.compile(
    r"(?i:\bmy\s+name\s+is|\bmy\s+name's|\bi\s+am\s+called|\b(?:full\s+)?name\s*:|"
    r"\baccount\s+holder\s*:?|\bcard\s*holder\s*:?|\brecipient\s*:|\bsigned\s*:)"
    r"\s+(?P<v>" + _CAP_NAME + r")(?![\w'’-])"
)
_NAME_CUE_LOWER = re.compile(
    r"\b(?i:my\s+name\s+is|my\s+name's|i\s+am\s+called)\s+(?P<v>" + _LOW_NAME + r")\b"
)
_TITLE = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra)\.?\s+(?P<v>" + _CAP_NAME + r")(?![\w'’-])"
)
_GREETING = re.compile(r"(?:^|(?<=[\s.!?]))(?i:dear|hi|hello|hey)\s+(?P<v>" + _CAP_NAME + r")\s*[,!:]")
_SIGN_OFF = re.compile(
    r"(?i:\b(?:kind|best|warm|many)?\s*regards|\bsincerely|\byours(?:\s+(?:truly|faithfully|sincerely))?|"
    r"\bthanks(?:\s+(?:again|a\s+lot))?|\bthank\s+you|\bcheers|\bbest(?:\s+wishes)?|\bbr|\bmfg|"
    r"\bgrüße|\bcordialement|\bsaludos)"
    r"\s*[,!.\-–]?\s+(?P<v>" + _CAP_NAME + r")\s*[.!]?\s*$"
)
# Capitalised words that follow greetings/sign-offs but are not people.
_NOT_NAMES = {
    "team", "support", "customer", "customers", "service", "services", "department", "desk", "staff",
    "company", "there", "all", "everyone", "everybody", "sir", "madam", "friend", "friends", "folks",
    "guys", "again", "so", "very", "much", "in", "for", "the", "a", "and", "advance", "you", "is",
    "was", "not", "no", "yes", "ok", "okay", "please", "hello", "hi", "regards", "thanks", "i", "we",
    "me", "my", "it", "this", "that", "order", "account", "help", "care", "sales", "billing",
}
_LOWER_STOP = {
    "and", "i", "im", "my", "me", "from", "here", "the", "a", "an", "not", "is", "was", "but", "so",
    "to", "with", "at", "in", "on", "for", "of", "please", "thanks", "calling", "writing",
    "about", "because", "again", "also", "just", "really", "very",
}

# Words before a number that say what it is (the nearest cue wins).
_ID_CUE = re.compile(
    r"(?i:\b(?:order|orders|purchase|tracking|track|invoice|inv|ref|reference|account|acct|ticket|case|parcel|"
    r"shipment|package|transaction|txn|confirmation|booking|serial|sku|item|receipt|id|policy|claim|"
    r"contract|customer)\b|#|\bno\.)"
)
_PHONE_CUE = re.compile(
    r"(?i:\b(?:call|called|calling|phone|telephone|tel|mobile|cell|cellphone|landline|whatsapp|sms|"
    r"text\s+me|reach\s+me|ring\s+me|fax|my\s+(?:phone\s+|mobile\s+|cell\s+|contact\s+)?number|"
    r"contact\s+number|handy|telefon|téléphone|portable|teléfono|móvil)\b)"
)
_PAYMENT_CUE = re.compile(
    r"(?i:\b(?:card|cards|visa|mastercard|amex|credit|debit|paid|pay|payment|charged|cvv|expiry)\b)"
)
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}|\[[A-Z][A-Z_]*_\d+\]")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: str | None  # None = claimed but not PII (e.g. a Luhn-invalid card-shaped number)


def _nearest_cue(text: str, start: int, window: int = 40) -> str | None:
    """'phone', 'id' or None: which kind of cue stands closest before ``start``."""
    before = text[max(0, start - window) : start]
    ids = [m.end() for m in _ID_CUE.finditer(before)]
    phones = [m.end() for m in _PHONE_CUE.finditer(before)]
    if not ids and not phones:
        return None
    return "phone" if max(phones, default=-1) > max(ids, default=-1) else "id"


def _card_ok(text: str, m: re.Match[str]) -> bool:
    """Luhn-valid, and not right after an order/reference cue (1 in 10 random numbers pass Luhn)."""
    if not luhn_valid(re.sub(r"\D", "", m.group(0))):
        return False
    before = text[max(0, m.start() - 30) : m.start()]
    ids = [c.end() for c in _ID_CUE.finditer(before)]
    pays = [c.end() for c in _PAYMENT_CUE.finditer(before)]
    return not ids or max(pays, default=-1) > max(ids)


def _phone_ok(text: str, m: re.Match[str]) -> bool:
    value = m.group(0)
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15:
        return False
    # Dates (2024-01-15, 15.01.2024) and version-like strings are not phone numbers.
    if re.fullmatch(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}", value):
        return False
    if not value.startswith("+") and _nearest_cue(text, m.start()) == "id":
        return False  # "order 1234 5678", "ref 555-1234"
    return value.startswith(("+", "(")) or len(digits) >= 9 or bool(re.search(r"\d{3}[ .-]\d{4}$", value))


def _bare_phone_ok(text: str, m: re.Match[str]) -> bool:
    value = m.group(0)
    cue = _nearest_cue(text, m.start())
    if cue == "phone":
        return len(value) <= 13 or value.startswith("00")
    # Without a cue only unmistakable shapes: international 00 prefix, a UK 07 mobile.
    return cue is None and bool(re.fullmatch(r"00[1-9]\d{8,12}|07\d{9}", value))


def _name_ok(text: str, m: re.Match[str]) -> bool:
    words = re.split(r"\s+", m.group("v").lower())
    return not any(w.strip("'’-") in _NOT_NAMES for w in words)


def _lower_name_ok(text: str, m: re.Match[str]) -> bool:
    return m.group("v").split()[0] not in _LOWER_STOP


def _trim_lower_name(value: str) -> str:
    """'jane doe and' is cut before the stop word by the pattern; keep the name words only."""
    words = value.split()
    kept: list[str] = []
    for w in words:
        if w in _LOWER_STOP:
            break
        kept.append(w)
    return " ".join(kept)


_Check = Callable[[str, re.Match[str]], bool]
_Detector = tuple[str, re.Pattern[str], _Check | None]


def _value_check(check: Callable[[str], bool]) -> _Check:
    return lambda _text, m: check(m.group(0))


# Order matters: earlier detectors win overlaps (an email's digits are not a phone number).
_DETECTORS: list[_Detector] = [
    ("EMAIL", _EMAIL, None),
    ("IBAN", _IBAN, _value_check(iban_valid)),
    ("CARD", _CARD, _card_ok),
    ("SSN", _SSN, _value_check(ssn_valid)),
    ("NATIONAL_ID", _NINO, None),
    ("DOB", _DOB, None),
    ("ADDRESS", _ADDRESS, None),
    ("ADDRESS", _ADDRESS_LOWER, None),
    ("ADDRESS", _ADDRESS_EU, None),
    ("ADDRESS", _PO_BOX, None),
    ("ADDRESS", _UK_POSTCODE, None),
    ("ADDRESS", _US_ZIP, None),
    ("PERSON", _NAME_CUE, _name_ok),
    ("PERSON", _NAME_CUE_LOWER, _lower_name_ok),
    ("PERSON", _TITLE, _name_ok),
    ("PERSON", _GREETING, _name_ok),
    ("PERSON", _SIGN_OFF, _name_ok),
    ("PHONE", _PHONE, _phone_ok),
    ("PHONE", _BARE_DIGITS, _bare_phone_ok),
]


def _claim_on_fail(kind: str, text: str, start: int) -> bool:
    """A rejected match that must not be masked in part by a later detector: a Luhn-invalid
    card-shaped run is an order number, an "order 1234 5678" is not a phone."""
    cue = _nearest_cue(text, start)
    return (kind in ("CARD", "SSN") and cue != "phone") or (kind == "PHONE" and cue == "id")


def _overlaps(span: _Span, taken: list[_Span]) -> bool:
    return any(span.start < t.end and t.start < span.end for t in taken)


def _span_of(kind: str, m: re.Match[str]) -> tuple[int, int]:
    if "v" not in m.re.groupindex:
        return m.start(), m.end()
    start, end = m.start("v"), m.end("v")
    if m.re is _NAME_CUE_LOWER:
        end = start + len(_trim_lower_name(m.group("v")))
    return start, end


def _repeat_names(text: str, taken: list[_Span]) -> list[_Span]:
    """Every other occurrence of a detected name (a cue is only needed once)."""
    names = {text[s.start : s.end] for s in taken if s.kind == "PERSON"}
    extra: list[_Span] = []
    for name in sorted(names, key=len, reverse=True):
        for m in re.finditer(r"(?<![\w'’-])" + re.escape(name) + r"(?![\w'’-])", text):
            span = _Span(m.start(), m.end(), "PERSON")
            if not _overlaps(span, taken + extra):
                extra.append(span)
    return extra


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """All PII spans ``(start, end, kind)`` in text order (pure; used by :func:`mask_pii`)."""
    taken: list[_Span] = [_Span(m.start(), m.end(), None) for m in _TEMPLATE.finditer(text)]
    for kind, pattern, check in _DETECTORS:
        for m in pattern.finditer(text):
            start, end = _span_of(kind, m)
            if end <= start:
                continue
            ok = check is None or check(text, m)
            span = _Span(start, end, kind if ok else None)
            if _overlaps(span, taken):
                continue
            if ok or _claim_on_fail(kind, text, start):
                taken.append(span)
    taken += _repeat_names(text, taken)
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

