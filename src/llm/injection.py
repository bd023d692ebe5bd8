"""Prompt-injection heuristics (pure rules) the graph can use as a signal.

Detection is not the defence: prompts already treat ticket text as delimited data and post-checks
catch unsupported promises. This only surfaces attempts so a human sees them.
"""

from __future__ import annotations

import re

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        (
            "ignore_instructions",
            r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}\b(?:instructions?|rules|prompts?|"
            r"guidelines|polic(?:y|ies)|above|previous)\b",
        ),
        ("system_prompt", r"\b(?:system prompt|system message|developer message|hidden instructions?)\b"),
        (
            "role_override",
            r"\b(?:you are now|from now on,? you|act as (?:an?|the)|pretend (?:to be|you are)|"
            r"new instructions?|developer mode|jailbreak|DAN mode)\b",
        ),
        (
            "fake_role_tag",
            r"(?:^|\n)\s*(?:system|assistant|developer)\s*:|</?(?:ticket|system|evidence|"
            r"instructions?)>|\[/?INST\]|<\|im_(?:start|end)\|>",
        ),
        (
            "route_manipulation",
            r"\b(?:mark|set|flag|classify|route)\b.{0,30}\b(?:resolved|closed|auto[- ]?resolve|"
            r"low priority|P4|not urgent|no escalation)\b",
        ),
        (
            "forced_refund",
            r"\b(?:issue|approve|process|grant|give|send)\b.{0,25}\b(?:full )?"
            r"(?:refund|credit|compensation|reimbursement)\b.{0,40}\b(?:immediately|now|"
            r"automatically|without (?:review|approval|checking))\b",
        ),
        ("tool_call", r"\b(?:call|invoke|execute|run)\b.{0,20}\b(?:tool|function|command|api)\b"),
    )
)


def looks_like_injection(text: str) -> list[str]:
    """Names of the injection rules that fire on ``text`` (empty list: nothing suspicious)."""
    if not text:
        return []
    return [name for name, pattern in _RULES if pattern.search(text)]
