"""Dashboard numbers (pure): route mix, auto-resolve precision, time to first action, queue sizes.

Auto-resolve precision comes from human outcomes on auto-resolved tickets: reviewers spot-check
them on the board (``check`` actions: correct / wrong). It is reported with its exact 95%
Clopper–Pearson interval and sample size, never as a bare point estimate. Suggestions reviewers
accepted unchanged are a different number (how often a *held-back* draft was right) and are shown
as such, not as auto-resolve precision.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

ROUTES = ("auto_resolve", "suggest", "escalate")
CHECK_CORRECT, CHECK_WRONG = "correct", "wrong"
DELAY_BINS: tuple[tuple[str, float], ...] = (
    ("< 5 min", 300.0),
    ("5–15 min", 900.0),
    ("15–60 min", 3600.0),
    ("1–4 h", 4 * 3600.0),
    ("4–24 h", 24 * 3600.0),
    ("> 24 h", float("inf")),
)


@dataclass(frozen=True)
class Proportion:
    """k of n with an exact 95% interval (``None`` values when n == 0)."""

    k: int
    n: int
    low: float | None
    high: float | None

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None


def proportion(k: int, n: int) -> Proportion:
    if n <= 0:
        return Proportion(0, 0, None, None)
    from src.classifier.metrics import clopper_pearson  # scipy: imported only when there is data

    low, high = clopper_pearson(k, n)
    return Proportion(k, n, low, high)


def check_verdict(note: str | None) -> str | None:
    """``correct`` / ``wrong`` from a spot check's note (``"wrong: reply promised a refund"``)."""
    head = (note or "").split(":", 1)[0].strip().lower()
    return head if head in (CHECK_CORRECT, CHECK_WRONG) else None


def auto_resolve_precision(checks: list[dict[str, Any]]) -> Proportion:
    """Share of spot-checked auto-resolved tickets a reviewer judged correct (latest check per ticket)."""
    verdicts = [check_verdict(c.get("note")) for c in checks]
    judged = [v for v in verdicts if v is not None]
    return proportion(sum(v == CHECK_CORRECT for v in judged), len(judged))


def suggestion_acceptance(outcomes: list[dict[str, Any]]) -> Proportion:
    """Share of reviewed tickets finished by accepting the draft with the predicted intent."""
    ok = sum(o.get("action") == "accept" and not o.get("corrected_intent") for o in outcomes)
    return proportion(ok, len(outcomes))


def route_counts(mix: dict[str, int]) -> list[tuple[str, int]]:
    """The three routes in pipeline order (zeros included), then anything unexpected."""
    known = [(r, int(mix.get(r, 0))) for r in ROUTES]
    return known + sorted((r, n) for r, n in mix.items() if r not in ROUTES)


def median_seconds(delays: list[float]) -> float | None:
    return statistics.median(delays) if delays else None


def delay_histogram(delays: list[float]) -> list[tuple[str, int]]:
    counts = [0] * len(DELAY_BINS)
    for d in delays:
        counts[next(i for i, (_, upper) in enumerate(DELAY_BINS) if d < upper)] += 1
    return [(label, n) for (label, _), n in zip(DELAY_BINS, counts, strict=True)]


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
