"""The text the classifier sees in production, for calibration and evaluation.

The graph classifies ``preprocess(raw).masked_text`` (HTML/signatures/quotes removed, length capped,
PII replaced by placeholders); a ticket that preprocessing rejects never reaches the classifier (it
is escalated). Thresholds and test numbers are only honest if they are measured on that same text,
so this module runs the project's own :func:`src.text.preprocess.preprocess` with the same settings
as ``Deps.run_preprocess`` — it does not re-implement any cleaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from src.config import Settings, get_settings


@dataclass
class RuntimeView:
    """Masked texts of the rows the classifier would see, and which input rows they came from."""

    texts: list[str]
    kept: list[int]  # indices into the input
    dropped: dict[int, str] = field(default_factory=dict)  # input index -> why preprocess rejected it

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)


def runtime_view(texts: Sequence[str], settings: Settings | None = None) -> RuntimeView:
    """Preprocess + mask each text exactly as the graph's preprocess node does."""
    from src.text.preprocess import preprocess

    settings = settings or get_settings()
    out = RuntimeView(texts=[], kept=[])
    for i, raw in enumerate(texts):
        pre = preprocess(raw, max_chars=settings.max_ticket_chars,
                         supported_languages=settings.supported_languages)
        if pre.valid and pre.masked_text.strip():
            out.texts.append(pre.masked_text)
            out.kept.append(i)
        else:
            out.dropped[i] = ", ".join(pre.flags) or "invalid"
    return out
