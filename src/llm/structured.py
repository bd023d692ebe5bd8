"""Ask a provider for JSON validated into a pydantic model, with one repair attempt.

Both ``analyze`` and ``draft`` need the same contract: a small model's invalid output is not an
error (it gets one retry with the validation message, then the caller marks its result
unreliable), while provider failures (timeouts, outages) propagate as ``LLMError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from src.llm.providers.base import LLMProvider
from src.llm.types import LLMInvalidOutput, Usage

M = TypeVar("M", bound=BaseModel)


def sum_usage(usages: Sequence[Usage]) -> Usage | None:
    """One Usage for several calls of the same provider (None when no call was made)."""
    if not usages:
        return None
    first = usages[0]
    return Usage(
        provider=first.provider,
        model=first.model,
        tokens_in=sum(u.tokens_in for u in usages),
        tokens_out=sum(u.tokens_out for u in usages),
        latency_s=round(sum(u.latency_s for u in usages), 4),
        cost_usd=round(sum(u.cost_usd for u in usages), 8),
        calls=sum(u.calls for u in usages),
    )


def validation_message(exc: ValidationError) -> str:
    """``field: problem; ...`` - short enough to hand back to the model in a repair prompt."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def complete_validated(
    provider: LLMProvider,
    system: str,
    user: str,
    schema: dict,
    model: type[M],
    *,
    max_tokens: int,
    repair: Callable[[str], str],
) -> tuple[M | None, Usage | None, str]:
    """(validated output or None, summed usage, last error). ``repair(error)`` builds the retry prompt."""
    usages: list[Usage] = []
    error = ""
    for attempt in range(2):
        prompt = user if attempt == 0 else repair(error)
        try:
            data, usage = provider.complete_json(system, prompt, schema, max_tokens=max_tokens)
        except LLMInvalidOutput as exc:
            usages.append(Usage(provider=provider.name, model=provider.model))
            error = str(exc)
            continue
        usages.append(usage)
        try:
            return model.model_validate(data), sum_usage(usages), ""
        except ValidationError as exc:
            error = validation_message(exc)
    return None, sum_usage(usages), error
