"""``draft(ticket, analysis, similar) -> Draft``: a reply grounded in retrieved resolutions.

The model sees the retrieved resolutions as ``<evidence id=...>`` blocks and must cite the ids it
used. Post-checks (src/llm/checks.py) mark the draft ``reliable=False`` when it invents values,
copies a value only one other customer's ticket or resolution holds (``another_customers_values``;
company constants go on ``Settings.draft_allowed_values``), cites no evidence it was shown or only
evidence that does not agree with the reply, promises a refund/credit/resolution the evidence does
not support, is empty, or has no evidence at all; the graph never auto-resolves an unreliable
draft. Provider failures raise ``LLMError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from src.config import get_settings
from src.llm.checks import (
    citation_agreement,
    foreign_values,
    invented_values,
    unknown_placeholders,
    unsupported_promises,
)
from src.llm.prompts import DRAFT_PROMPT_VERSION, draft_system, escape_data, ticket_block
from src.llm.providers.base import LLMProvider
from src.llm.structured import complete_validated
from src.llm.types import Analysis, Draft
from src.retrieval.types import Hit
from src.text.language import detect_language

# Citation agreement needed for a reliable draft; measured by scripts/draft_agreement.py (docs/llm.md).
DEFAULT_MIN_AGREEMENT = 0.25


class LLMDraftOutput(BaseModel):
    model_config = ConfigDict(title="reply_draft", extra="ignore")

    # Citations first: the model commits to its evidence before writing, and a token budget that
    # runs out cuts the reply (caught as invalid) rather than silently dropping the citations.
    evidence_ids: list[str] = Field(default_factory=list, max_length=10)
    reply: str = Field(max_length=1500)


def draft_schema(max_tokens: int = 320) -> dict:
    """JSON schema for the draft; the reply's length is bounded by the token budget."""
    schema = LLMDraftOutput.model_json_schema()
    schema["properties"]["reply"]["maxLength"] = max(80, min(900, 2 * max_tokens))
    schema["properties"]["evidence_ids"]["maxItems"] = 5
    schema["properties"]["evidence_ids"]["items"]["maxLength"] = 40
    schema["required"] = ["evidence_ids", "reply"]
    schema["additionalProperties"] = False
    return schema


def evidence_block(hits: list[Hit], max_chars: int = 1200) -> str:
    """Retrieved resolutions as delimited, escaped evidence (each cut to ``max_chars``).

    Only the resolution: the other customer's own message would cost prompt time and is exactly
    where their order numbers and names are (draft-v3).
    """
    parts = [
        f'<evidence id="{escape_data(h.id)}">\n{escape_data((h.ticket.response or "")[:max_chars])}\n'
        "</evidence>"
        for h in hits
    ]
    return "\n".join(parts) if parts else "(no evidence available)"


def check_draft(
    reply: str,
    cited: list[str],
    ticket_text: str,
    hits: list[Hit],
    language: str | None,
    *,
    allowed_values: Sequence[str] = (),
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
    context: Sequence[Hit] | None = None,
) -> tuple[list[str], list[str], bool]:
    """Pure post-check: (evidence ids to record, flags, reliable).

    Only ids the model cited *and* was shown (``hits``) are recorded (nothing is credited on its
    behalf). The draft is reliable only if at least one of them agrees with the reply
    (:func:`citation_agreement` >= ``min_agreement``) and no other check blocks it. The value checks
    (invented, another customer's) look at ``context`` when given: every retrieved ticket,
    not only the ones shown, so a value several resolutions share counts as a company constant.
    """
    given = {h.id: h for h in hits}
    flags: list[str] = []
    valid = [i for i in dict.fromkeys(cited) if i in given]
    if len(valid) < len(set(cited)):
        flags.append("unknown_evidence_id")
    blocking: list[str] = []
    if not reply.strip():
        blocking.append("empty_draft")
    if not hits:
        blocking.append("no_evidence")
    elif not valid:
        blocking.append("no_citation")
    else:
        best = max(citation_agreement(reply, given[i].ticket.response or "") for i in valid)
        if best < min_agreement:
            blocking.append(f"citation_disagrees:{best:.2f}<{min_agreement:g}")
    known = list(context) if context is not None else hits
    evidence_texts = [f"{h.ticket.text}\n{h.ticket.response}" for h in known]
    invented = invented_values(reply, [ticket_text, *evidence_texts], allowed_values=allowed_values)
    if invented:
        blocking.append("invented_values:" + ",".join(invented[:5]))
    foreign = foreign_values(reply, ticket_text, evidence_texts, allowed_values=allowed_values)
    if foreign:
        blocking.append("another_customers_values:" + ",".join(foreign[:5]))
    for placeholder in unknown_placeholders(reply, ticket_text):
        blocking.append(f"unknown_placeholder:{placeholder}")
    for kind in unsupported_promises(reply, [h.ticket.response for h in hits]):  # shown evidence only
        blocking.append(f"unsupported_promise:{kind}")
    if language and language not in ("und",):
        reply_lang = detect_language(reply)
        if reply_lang is not None and reply_lang != language:
            blocking.append(f"language_mismatch:{reply_lang}!={language}")
    return valid, flags + blocking, not blocking


def draft(
    ticket_text: str,
    analysis: Analysis,
    similar: list[Hit],
    provider: LLMProvider | None = None,
    *,
    max_tokens: int | None = None,
) -> Draft:
    """A grounded reply draft; invalid model output after one repair gives an empty unreliable draft.

    The prompt shows the first ``Settings.draft_evidence_k`` hits (default 1), each cut to
    ``draft_evidence_chars``: on a CPU the prompt's evidence, not the reply, is most of a local
    model's time. The post-checks run against every retrieved hit.
    """
    settings = get_settings()
    max_tokens = max_tokens or settings.draft_max_tokens
    retrieved = list(similar)  # the checks know every retrieved ticket (shared values are constants)
    similar = retrieved[: settings.draft_evidence_k]  # the prompt shows the top one(s)
    if provider is None:
        from src.llm.providers import get_provider

        provider = get_provider()
    # The deterministic detector first: a small model's language field is often wrong.
    language = detect_language(ticket_text) or (analysis.language if analysis.language != "und" else "")
    system = draft_system(language, analysis.sentiment)
    user = (
        ticket_block(ticket_text, settings.llm_max_input_chars)
        + "\n\n"
        + evidence_block(similar, settings.draft_evidence_chars)
        + "\n\nWrite the reply draft as JSON with fields reply and evidence_ids."
    )
    schema = draft_schema(max_tokens)
    out, usage, error = complete_validated(
        provider, system, user, schema, LLMDraftOutput, max_tokens=max_tokens,
        repair=lambda err: f"{user}\n\nYour previous answer was invalid ({err[:200]}). Try again.",
    )
    if out is not None:
        ids, flags, reliable = check_draft(
            out.reply.strip(), out.evidence_ids, ticket_text, similar, language, context=retrieved,
            allowed_values=settings.draft_allowed_values, min_agreement=settings.draft_min_agreement,
        )
        return Draft(
            text=out.reply.strip(),
            evidence_ids=ids,
            reliable=reliable,
            usage=usage,
            prompt_version=DRAFT_PROMPT_VERSION,
            flags=flags,
        )
    return Draft(
        text="",
        evidence_ids=[],
        reliable=False,
        usage=usage,
        prompt_version=DRAFT_PROMPT_VERSION,
        flags=[f"invalid_output:{error[:120]}"],
    )
