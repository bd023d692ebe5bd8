"""Post-checks on a draft (pure): what the model wrote that the inputs do not support.

A failed check never edits the draft; it flags it (``reliable=False``) so the graph keeps a human
in the loop. Checks are deliberately strict: a false alarm costs a review, a miss costs a promise
the company never made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\[[A-Z_]+_\d+\]")
# Identifiers and amounts: 3+ digit runs (order/tracking numbers), money, alphanumeric codes.
_NUMBERISH = re.compile(
    r"(?:[$€£¥]\s?\d[\d,.]*)"
    r"|(?:\d[\d,.]*\s?(?:USD|EUR|GBP|dollars?|euros?|pounds?)\b)"
    r"|(?:\b[A-Z]{0,4}\d[\dA-Z-]{2,}\b)",
    re.IGNORECASE,
)
_MASK_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*_\d+\]")
_URL_OR_EMAIL = re.compile(r"https?://\S+|www\.\S+|[\w.+-]+@[\w-]+\.[\w.]+")

PROMISES: dict[str, re.Pattern[str]] = {
    "refund": re.compile(
        r"\b(?:refund(?:ed|s|ing)?|reimburs\w*|money back|reembols\w*|rembours\w*|r[üu]ckerstatt\w*|"
        r"erstatt\w*)\b",
        re.IGNORECASE,
    ),
    "credit": re.compile(
        r"\b(?:credit(?:ed)? (?:to )?your|store credit|account credit|voucher|compensat\w*|"
        r"gift card|coupon|free of charge|waive\w*)\b",
        re.IGNORECASE,
    ),
    "resolution": re.compile(
        r"\b(?:(?:has|have) been (?:resolved|fixed|closed)|(?:is|are) (?:now )?(?:resolved|fixed)|"
        r"marked (?:as )?(?:resolved|closed)|closed your (?:ticket|case)|approved your)\b",
        re.IGNORECASE,
    ),
}


_CURRENCY = re.compile(r"[$€£¥]|\b(?:usd|eur|gbp|dollars?|euros?|pounds?)\b", re.IGNORECASE)


def _norm(token: str) -> str:
    return re.sub(r"[^0-9a-z]", "", token.lower())


def _values(draft: str) -> list[str]:
    """Identifiers, amounts, links and emails in ``draft`` (placeholders and small numbers skipped)."""
    text = _PLACEHOLDER.sub(" ", draft)
    found: list[str] = []
    for m in _NUMBERISH.finditer(text):
        token = m.group(0).strip()
        digits = re.sub(r"\D", "", token)
        if len(digits) < 3 and not re.search(r"[$€£¥]|usd|eur|gbp|dollar|euro|pound", token, re.IGNORECASE):
            continue  # "2 days", "24/7"-like small numbers are not identifiers
        if _norm(token):
            found.append(token)
    found += [m.group(0).rstrip(".,;)") for m in _URL_OR_EMAIL.finditer(text)]
    return list(dict.fromkeys(found))


def value_key(token: str) -> str:
    """How a value is compared: links/emails case-folded, others without currency or punctuation.

    ``$1,249.00`` and ``1249.00 USD`` are the same value; ``$50`` is not part of ``1500``.
    """
    if _URL_OR_EMAIL.fullmatch(token):
        return token.lower().rstrip("/.,;)")
    return _norm(_CURRENCY.sub("", token))


def _keys(text: str) -> set[str]:
    """The value keys in ``text`` (each source is read with the same extractor as the draft)."""
    return {value_key(v) for v in _values(text)}


def _found_in(text: str) -> Callable[[str], bool]:
    """A membership test for ``text``: a value counts only as a whole value of ``text``."""
    keys = _keys(text)

    def contains(token: str) -> bool:
        return value_key(token) in keys

    return contains


def _allowed(allowed_values: Sequence[str]) -> Callable[[str], bool]:
    """Company constants: exact values, and for a link every page under it."""
    keys = {value_key(v.strip()) for v in allowed_values if v.strip()}
    links = tuple(k for k in keys if k.startswith(("http://", "https://", "www.")))

    def ok(token: str) -> bool:
        key = value_key(token)
        return key in keys or (bool(links) and key.startswith(links))

    return ok


def invented_values(draft: str, sources: list[str], *, allowed_values: Sequence[str] = ()) -> list[str]:
    """Numbers, codes, amounts, links or emails in ``draft`` that appear in none of ``sources``."""
    in_sources, allowed = _found_in(" ".join(sources)), _allowed(allowed_values)
    return [t for t in _values(draft) if not in_sources(t) and not allowed(t)]


def foreign_values(
    draft: str, ticket_text: str, other_customers: list[str], *, allowed_values: Sequence[str] = ()
) -> list[str]:
    """Values in ``draft`` that only *one* other customer's ticket supports, not this ticket.

    Each item of ``other_customers`` is everything known about one resolved ticket (its message and
    its resolution: a resolution is written to its customer and carries their order and tracking
    numbers, emails and amounts). A value found in exactly one item is that customer's data; a value
    found in two or more items is treated as shared (a company constant repeated across
    resolutions); values on the allow-list (``Settings.draft_allowed_values``) are always fine.
    """
    in_ticket, allowed = _found_in(ticket_text), _allowed(allowed_values)
    items = [_found_in(text) for text in other_customers]
    return [
        t
        for t in _values(draft)
        if not in_ticket(t) and not allowed(t) and sum(found(t) for found in items) == 1
    ]


def unknown_placeholders(draft: str, ticket_text: str) -> list[str]:
    """``[KIND_n]`` PII placeholders in ``draft`` that this ticket does not have (copied from evidence)."""
    own = set(_MASK_PLACEHOLDER.findall(ticket_text))
    return [p for p in dict.fromkeys(_MASK_PLACEHOLDER.findall(draft)) if p not in own]


def unsupported_promises(draft: str, evidence: list[str]) -> list[str]:
    """Promise kinds (refund, credit, resolution) the draft makes that no evidence text supports."""
    evidence_text = " ".join(evidence)
    return [
        kind
        for kind, pattern in PROMISES.items()
        if pattern.search(draft) and not pattern.search(evidence_text)
    ]


def placeholders(text: str) -> set[str]:
    """``{{Order Number}}``-style template placeholders in ``text``."""
    return set(re.findall(r"\{\{[^{}]*\}\}", text))


# --- citation agreement -----------------------------------------------------------------------

def _stem(word: str) -> str:
    """Crude stemming, enough for overlap: track/tracking/tracked -> track, orders -> order."""
    if len(word) > 4:
        word = re.sub(r"(?:ing|ed|es|s|ly)$", "", word)
    return word[:6]


# Tone words every reply may use whatever it cites: they say nothing about the evidence.
_TONE = frozenset(
    _stem(w)
    for w in [
        "sorry", "apologize", "apologise", "apologies", "inconvenience", "understand", "help", "happy",
        "assist", "assistance", "thank", "thanks", "please", "hello", "dear", "regards", "glad", "hear",
        "frustration", "frustrating", "concern", "appreciate", "patience", "kind", "hope",
    ]
)  # fmt: skip


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # a maintained list, loaded once

    return frozenset(ENGLISH_STOP_WORDS)


def content_terms(text: str) -> set[str]:
    """Lower-cased, stemmed content words of ``text`` (no stop words, tone words or placeholders)."""
    stop = _stop_words()
    words = re.findall(r"[^\W\d_]{3,}", _PLACEHOLDER.sub(" ", text).lower())
    return {stem for stem in (_stem(w) for w in words if w not in stop) if stem not in _TONE}


def citation_agreement(reply: str, resolution: str) -> float:
    """Share of the reply's content terms that the cited resolution also uses (0..1, lexical, no model).

    A reply grounded in a resolution reuses its words (the steps, the page, the policy); a reply that
    cites an unrelated resolution shares few. Tone words and stop words are left out of both sides.
    """
    terms = content_terms(reply)
    if not terms:
        return 0.0
    return len(terms & content_terms(resolution)) / len(terms)
