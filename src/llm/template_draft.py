"""Template drafts: a vetted resolution of a highly similar, same-intent resolved ticket is the draft.

No LLM call. The resolution's entity placeholders (order / invoice number, the customer's name,
an amount) are filled from *this* ticket when it holds exactly one such value, company placeholders
(support phone, website ...) from ``Settings.draft_placeholder_values`` when configured (otherwise
they stay ``{{...}}`` for the helpdesk macro, as in an LLM draft). The result goes through the same
post-checks as an LLM draft (src/llm/draft.py ``check_draft``): a resolution carrying another
customer's values, a promise no evidence supports, or a language other than the ticket's is
rejected and the next candidate is tried; when none passes, the caller falls back to the LLM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from src.llm.draft import check_draft
from src.llm.types import Draft
from src.retrieval.types import Hit
from src.text.language import detect_language

TEMPLATE_VERSION = "template-v1"

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_MASK = re.compile(r"\[([A-Z][A-Z_]*)_\d+\]")
_ID = r"[A-Za-z]{0,4}[-#]?\d[\dA-Za-z-]{3,}"

# placeholder kind -> (words in the placeholder name, how to find this ticket's value)
_ENTITY_PATTERNS: dict[str, tuple[tuple[str, ...], re.Pattern[str]]] = {
    "order": (("order", "purchase"), re.compile(
        rf"\b(?:orders?|purchases?)\s*(?:number|no\.?|n[º°]|id|#)?\s*[:#]?\s*({_ID})\b", re.IGNORECASE)),
    "invoice": (("invoice", "bill"), re.compile(
        rf"\b(?:invoices?|bills?)\s*(?:number|no\.?|id|#)?\s*[:#]?\s*({_ID})\b", re.IGNORECASE)),
    "tracking": (("tracking",), re.compile(
        rf"\btracking\s*(?:number|no\.?|id|#|code)?\s*[:#]?\s*({_ID})\b", re.IGNORECASE)),
    "amount": (("amount", "price", "sum"), re.compile(r"([$€£]\s?\d[\d,]*(?:\.\d{2})?)")),
}  # fmt: skip
_NAME_WORDS = ("name", "client", "customer name")


def _kind(name: str) -> str | None:
    low = name.lower()
    if any(w in low for w in ("phone", "website", "url", "email", "chat", "hours", "availability")):
        return None  # company constants, never the customer's
    for kind, (words, _) in _ENTITY_PATTERNS.items():
        if any(w in low for w in words) and any(w in low for w in ("number", "id", "anonymized", "amount",
                                                                       "price", "sum")):
            return kind
    if any(w in low for w in _NAME_WORDS) and "company" not in low and "website" not in low:
        return "name"
    return None


def ticket_values(ticket_text: str) -> dict[str, str]:
    """This ticket's own values by kind, only where it has exactly one (ambiguity fills nothing).

    ``{{Order Number}}`` already in the ticket counts as its order value; a masked name
    (``[PERSON_1]``) as its name (unmasked when the service renders the draft).
    """
    found: dict[str, str] = {}
    for kind, (_, pattern) in _ENTITY_PATTERNS.items():
        values = {m.group(1) for m in pattern.finditer(ticket_text)}
        values |= {m.group(0) for m in _PLACEHOLDER.finditer(ticket_text)
                   if _kind(m.group(1)) == kind}  # fmt: skip
        if len(values) == 1:
            found[kind] = values.pop()
    names = {m.group(0) for m in _MASK.finditer(ticket_text) if m.group(1) == "PERSON"}
    if len(names) == 1:
        found["name"] = names.pop()
    return found


def fill_placeholders(resolution: str, ticket_text: str, constants: Mapping[str, str] | None = None) -> str:
    """The resolution with this ticket's values and the company's constants in its placeholders."""
    values = ticket_values(ticket_text)
    consts = {k.strip().lower(): v for k, v in (constants or {}).items()}

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.lower() in consts:
            return consts[name.lower()]
        kind = _kind(name)
        return values.get(kind, m.group(0)) if kind else m.group(0)

    return _PLACEHOLDER.sub(fill, resolution)


def candidates(hits: Sequence[Hit], intent: str | None, min_similarity: float) -> list[Hit]:
    """Same-intent resolved tickets at least ``min_similarity`` similar, most similar first."""
    if intent is None:
        return []
    ok = [h for h in hits if h.ticket.intent == intent and h.similarity >= min_similarity
          and (h.ticket.response or "").strip()]  # fmt: skip
    return sorted(ok, key=lambda h: h.similarity, reverse=True)


def template_draft(
    ticket_text: str,
    intent: str | None,
    hits: Sequence[Hit],
    *,
    min_similarity: float,
    constants: Mapping[str, str] | None = None,
    allowed_values: Sequence[str] = (),
    min_agreement: float = 0.25,
    language: str | None = None,
) -> Draft | None:
    """The first candidate resolution that passes every draft check, as a Draft; None when none does."""
    language = language if language is not None else detect_language(ticket_text)
    evidence = list(hits)
    rejected: list[str] = []
    for hit in candidates(hits, intent, min_similarity):
        reply = fill_placeholders(hit.ticket.response or "", ticket_text, constants).strip()
        ids, flags, reliable = check_draft(
            reply, [hit.id], ticket_text, evidence, language,
            allowed_values=allowed_values, min_agreement=min_agreement,
        )  # fmt: skip
        if reliable:
            return Draft(
                text=reply,
                evidence_ids=ids,
                reliable=True,
                prompt_version=TEMPLATE_VERSION,
                flags=[f"template:{hit.id}:{hit.similarity:.3f}", *(f"rejected:{r}" for r in rejected)],
                source="template",
            )
        rejected.append(f"{hit.id}:{'|'.join(flags)[:80]}")
    return None
