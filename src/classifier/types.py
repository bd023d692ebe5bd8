"""What the classifier hands to the rest of the pipeline."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    """One text's calibrated intent prediction.

    ``valid`` is False for empty/unreadable text: the label is then None and the graph sends the
    ticket to a human instead of raising (a ticket is never lost to an exception).
    """

    label: str | None
    confidence: float = 0.0  # calibrated probability of ``label``
    probs: dict[str, float] = Field(default_factory=dict)  # calibrated, sums to 1
    top3: list[tuple[str, float]] = Field(default_factory=list)
    margin: float = 0.0  # top-1 minus top-2 probability
    entropy: float = 1.0  # normalised to [0, 1] (1 = uniform)
    valid: bool = True
    truncated: bool = False
    reason: str | None = None  # why invalid / notes
    # how unlike the training tickets this text is (higher = further; the bundle's chosen score, see
    # src.classifier.ood); None when the bundle has no out-of-distribution model
    ood_score: float | None = None


class BundleError(RuntimeError):
    """A serving bundle is missing a part or its parts do not match."""
