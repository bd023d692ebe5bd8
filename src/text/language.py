"""Deterministic language detection that admits when it does not know.

langdetect is probabilistic (random restarts), so the seed is fixed once; short texts are where it
is wrong most often ("cancel order" -> Italian), so below a minimum of letters, or when the top
language is not clearly ahead, the answer is ``None`` (unknown) instead of a confident guess.
"""

from __future__ import annotations

import re
from functools import lru_cache

MIN_LETTERS = 20
MIN_PROBABILITY = 0.80
# Very common English function words: a short ticket full of them is English whatever langdetect says.
_EN_WORDS = frozenset(
    {
        *("i", "my", "me", "you", "your", "the", "a", "an", "to", "of", "and", "is", "are", "was"),
        *("can", "could", "would", "how", "what", "where", "when", "why", "do", "does", "not"),
        *("please", "help", "want", "need", "order", "account", "with", "for", "on", "in", "it"),
        *("this", "that", "have", "has"),
    }
)


@lru_cache(maxsize=1)
def _factory_ready() -> bool:
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0
    return True


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text`` or None when too short / ambiguous to say."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < MIN_LETTERS:
        return None
    words = re.findall(r"[a-zA-Z']+", text.lower())
    if words and sum(w in _EN_WORDS for w in words) / len(words) >= 0.25:
        return "en"
    _factory_ready()
    from langdetect import detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    try:
        candidates = detect_langs(text)
    except LangDetectException:
        return None
    if not candidates or candidates[0].prob < MIN_PROBABILITY:
        return None
    return str(candidates[0].lang)
