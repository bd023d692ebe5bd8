"""Post-checks on a draft (pure): what the model wrote that the inputs do not support.

A failed check never edits the draft; it flags it (``reliable=False``) so the graph keeps a human
in the loop. Checks are deliberately strict: a false alarm costs a review, a miss costs a promise
the company never made.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}|\[[A-Z_]+_\d+\]")
# Identifiers and amounts: 3+ digit runs (order/tracking numbers), money, alphanumeric codes.
_NUMBERISH = re.compile(
    r"(?:[$€£¥]\s?\d[\d,.]*)"
    r"|(?:\d[\d,.]*\s?(?:USD|EUR|GBP|dollars?|euros?|pounds?)\b)"
    r"|(?:\b[A-Z]{0,4}\d[\dA-Z-]{2,}\b)",
    re.IGNORECASE,
)
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


def _found_in(text: str) -> Callable[[str], bool]:
    """A membership test for ``text``, normalised once (not once per token)."""
    lower, norm = text.lower(), _norm(text)

    def contains(token: str) -> bool:
        return token.lower() in lower if _URL_OR_EMAIL.fullmatch(token) else _norm(token) in norm

    return contains


def invented_values(draft: str, sources: list[str]) -> list[str]:
    """Numbers, codes, amounts, links or emails in ``draft`` that appear in none of ``sources``."""
    in_sources = _found_in(" ".join(sources))
    return [t for t in _values(draft) if not in_sources(t)]


def foreign_values(draft: str, ticket_text: str, other_customers: list[str]) -> list[str]:
    """Values in ``draft`` taken from *another customer's* message (evidence), not from this ticket.

    Resolved tickets carry their customers' order numbers and emails; a draft that copies one
    would send a stranger's data to this customer.
    """
    in_others, in_ticket = _found_in(" ".join(other_customers)), _found_in(ticket_text)
    return [t for t in _values(draft) if in_others(t) and not in_ticket(t)]


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
