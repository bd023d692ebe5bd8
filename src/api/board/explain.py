"""The route's reasons in plain words for a reviewer (pure).

The router's reasons (``src.graph.confidence.score``) are precise and technical ("score 0.7123 <=
auto-resolve threshold 0.9: suggest"). The board shows a plain sentence for each one it recognises
and keeps the exact text one click away; a reason it does not recognise is shown as it is, so a new
reason is never hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ROUTE_WORDS = {"auto_resolve": "answer automatically", "suggest": "suggest a draft", "escalate": "escalate"}


@dataclass(frozen=True)
class Reason:
    plain: str
    exact: str


def _pct(x: str) -> str:
    try:
        return f"{float(x):.0%}"
    except ValueError:
        return x


def _words(name: str) -> str:
    return name.strip("'\"").replace("_", " ")


_RULES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (
        re.compile(r"^calibrated probability ([\d.e-]+) for intent '?([^'(]*?)'? \((.+)\)$"),
        lambda m: (
            f"The classifier gives “{_words(m[2])}” a {_pct(m[1])} probability"
            + (" (calibrated)." if m[3].startswith("calibrated") else " (not calibrated for this model).")
        ),
    ),
    (
        re.compile(r"^score ([\d.e-]+) > auto-resolve threshold ([\d.e-]+)"),
        lambda m: f"Confident enough to answer on its own (score {_pct(m[1])}, above {_pct(m[2])}).",
    ),
    (
        re.compile(r"^score ([\d.e-]+) <= auto-resolve threshold ([\d.e-]+): suggest"),
        lambda m: (
            f"Not confident enough to answer alone (score {_pct(m[1])}, needs above {_pct(m[2])}): "
            "a person checks the draft."
        ),
    ),
    (
        re.compile(r"^score ([\d.e-]+) \(no auto-resolve threshold\): suggest"),
        lambda m: (
            f"This intent is never answered automatically; score {_pct(m[1])}: a person checks the draft."
        ),
    ),
    (
        re.compile(r"^score ([\d.e-]+) < suggest threshold ([\d.e-]+): escalate"),
        lambda m: (
            f"Too uncertain to draft a reply (score {_pct(m[1])}, below {_pct(m[2])}): a person handles it."
        ),
    ),
    (
        re.compile(r"^score ([\d.e-]+) = calibrated probability - "),
        lambda m: f"Warning signs lowered the score to {_pct(m[1])}.",
    ),
    (
        re.compile(r"^ambiguous intent: top-1/top-2 margin ([\d.]+)"),
        lambda m: f"Two intents were close (only {_pct(m[1])} apart).",
    ),
    (re.compile(r"^spread-out prediction"), lambda m: "The classifier hesitated between several intents."),
    (re.compile(r"^no similar resolved tickets? found"), lambda m: "No similar resolved ticket was found."),
    (
        re.compile(r"^retrieval agrees: (\d+)/(\d+) similar tickets"),
        lambda m: f"{m[1]} of {m[2]} similar resolved tickets had the same intent.",
    ),
    (
        re.compile(r"^retrieval disagrees: only (\d+)/(\d+)"),
        lambda m: f"Only {m[1]} of {m[2]} similar resolved tickets had the same intent.",
    ),
    (
        re.compile(r"^similar resolved tickets mostly have another intent"),
        lambda m: "Similar resolved tickets mostly had another intent.",
    ),
    (
        re.compile(r"^weak evidence: best similarity ([\d.]+)"),
        lambda m: f"The closest resolved ticket is only loosely similar ({_pct(m[1])}).",
    ),
    (
        re.compile(r"^unfamiliar ticket: best similarity ([\d.]+)"),
        lambda m: f"Unlike any resolved ticket (closest {_pct(m[1])}): never answered automatically.",
    ),
    (
        re.compile(r"^unlike the training tickets"),
        lambda m: "Unlike the tickets the classifier was trained on: never answered automatically.",
    ),
    (re.compile(r"^(angry|negative|frustrated) customer"), lambda m: f"The customer sounds {m[1]}."),
    (re.compile(r"^priority (P\d)"), lambda m: f"Priority {m[1]}."),
    (re.compile(r"^P1 priority"), lambda m: "Priority P1: goes to the escalation team."),
    (
        re.compile(r"^escalation signals: ([^(]+)"),
        lambda m: f"Escalation words in the message: {m[1].strip()}.",
    ),
    (re.compile(r"^rule-based escalation signals"), lambda m: "Escalation words in the message."),
    (re.compile(r"^analysis flags escalation risk"), lambda m: "The analysis flags a risk of escalation."),
    (
        re.compile(r"^sensitive (?:topic|flag):? ([^(:]+)"),
        lambda m: f"Sensitive topic: {_words(m[1].strip())}.",
    ),
    (
        re.compile(r"^possible prompt injection"),
        lambda m: "The message tries to give the assistant instructions.",
    ),
    (
        re.compile(
            r"^(?:unsupported )?language '?([^' ]+)'? not supported|^unsupported language '?([^' ]+)'?"
        ),
        lambda m: f"Language {m[1] or m[2]} is not supported.",
    ),
    (re.compile(r"^language not detected"), lambda m: "The language could not be detected."),
    (
        re.compile(r"^failed step -> human: (.*)"),
        lambda m: f"A step failed ({m[1][:120]}): a person takes over.",
    ),
    (re.compile(r"^failed step -> human$"), lambda m: "A step failed: a person takes over."),
    (
        re.compile(r"^no valid intent prediction"),
        lambda m: "No intent could be predicted (empty or unreadable).",
    ),
    (
        re.compile(r"^auto-resolve thresholds are not calibrated"),
        lambda m: "Automatic answers are off until the model is calibrated.",
    ),
    (
        re.compile(r"^intent '?([^']+)'? has no auto-resolve threshold"),
        lambda m: f"“{_words(m[1])}” is never answered automatically.",
    ),
    (
        re.compile(r"^(analysis|draft) output was not reliable|^(analysis|draft) was not reliable"),
        lambda m: f"The {m[1] or m[2]} could not be trusted: a person reviews.",
    ),
    (
        re.compile(r"^analysis heads unsure"),
        lambda m: "The quick analysis was unsure whether this is routine: a person reviews.",
    ),
    (
        re.compile(r"^escalated by reviewer ([^:]+)(?:: (.*))?$"),
        lambda m: f"Escalated by {m[1]}" + (f": {m[2]}" if m[2] else "."),
    ),
    (
        re.compile(r"^audit write failed"),
        lambda m: "The decision could not be stored: not answered automatically.",
    ),
]
_CAPPED = re.compile(r"^(.*) \(route capped at (\w+)\)$")


def plain(reason: str) -> str:
    """One reason in plain words (the exact text when no rule knows it)."""
    text = reason.strip()
    capped = _CAPPED.match(text)
    core = capped[1] if capped else text
    sentence = next((fn(m) for rx, fn in _RULES if (m := rx.search(core))), None)
    if sentence is None:
        return text
    if capped:
        sentence = sentence.rstrip(".") + f", so at most: {ROUTE_WORDS.get(capped[2], capped[2])}."
    return sentence


def explain(reasons: list[str]) -> list[Reason]:
    return [Reason(plain=plain(r), exact=r) for r in reasons if str(r).strip()]
