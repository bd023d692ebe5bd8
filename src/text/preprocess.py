"""Raw ticket -> clean, capped, language-tagged, PII-masked text (``Preprocessed``).

Why: email tickets carry HTML, quoted history, signatures and auto-reply banners that are not the
customer's request and confuse both the classifier and the LLM; binary junk and empty bodies must be
recognised (``valid=False``) so the graph sends them to a human instead of guessing. Pure and
deterministic: no I/O, no model (the language detector is seeded).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

from src.text.language import detect_language
from src.text.types import Masked, Preprocessed

Masker = Callable[[str], Masked]

_HTML_HINT = re.compile(
    r"<\s*(html|body|div|p|br|span|table|td|tr|a|b|i|font|blockquote|ul|li|head)\b[^>]*>", re.I
)
_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "body"}
)
_VOID_TAGS = frozenset({"br", "hr", "img", "meta", "input", "link", "wbr", "area", "base", "col", "source"})
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "blockquote"})

# Quoted history starts here (everything after is dropped).
_QUOTE_HEADERS = [
    re.compile(r"^\s*On\b.{0,200}\bwrote:\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(Original|Forwarded) Message\s*-{2,}", re.I),
    re.compile(r"^\s*From:\s.+", re.I),  # Outlook-style header block
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^\s*Le\b.{0,200}\ba écrit\s*:\s*$", re.I),
    re.compile(r"^\s*Am\b.{0,200}\bschrieb\b.{0,100}:\s*$", re.I),
]
# A two-line "On <date>, <name>\nwrote:" header.
_QUOTE_HEADER_START = re.compile(r"^\s*On\b.{0,200}$", re.I)
_WROTE = re.compile(r"^\s*wrote:\s*$", re.I)

# Signature block starts here (only looked for in the last lines of the message).
_SIGNATURE_STARTS = [
    re.compile(r"^\s*--\s*$"),
    re.compile(r"^\s*Sent from my \w+", re.I),
    re.compile(r"^\s*Get Outlook for \w+", re.I),
    re.compile(
        r"^\s*(best|kind|warm|many)?\s*(regards|wishes|thanks|thank you|cheers|sincerely|br)[,.!]?\s*$", re.I
    ),
]
SIGNATURE_WINDOW = 8  # a signature is within the last N non-empty lines

_BANNER_LINES = [
    re.compile(r"^\s*\[?\s*EXTERNAL( EMAIL)?\s*\]?:?.*$", re.I),
    re.compile(r"^\s*CAUTION:.*(outside|external).*$", re.I),
    re.compile(r"^\s*This (e-?mail|message) (originated|was sent) from outside.*$", re.I),
    re.compile(r"^\s*(Auto(matic)?[- ]?reply|Out of (the )?office|Automatic response)\b.*$", re.I),
    re.compile(r"^\s*(I am|I'm) (currently )?out of (the )?office.*$", re.I),
    re.compile(r"^\s*This is an auto(mated|matic) (message|reply|response).*$", re.I),
    re.compile(r"^\s*(Please )?do not reply to this (e-?mail|message).*$", re.I),
]
_AUTO_REPLY = re.compile(r"\b(auto(matic)?[- ]?reply|out of (the )?office|automatic response)\b", re.I)
_WS = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    """Visible text of an HTML email; quoted history (``blockquote``, gmail_quote) is skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag in _BLOCK_TAGS:
                self.parts.append("\n")
            return
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        if self._skip_depth or tag in _SKIP_TAGS or "gmail_quote" in classes or "moz-cite-prefix" in classes:
            self._skip_depth += 1  # count every nested element so the matching end tag ends the skip
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS:
            return
        if self._skip_depth:
            self._skip_depth -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self.parts.append(data)


def strip_html(raw: str) -> str:
    """Visible text of an HTML document, with line breaks at block elements."""
    parser = _TextExtractor()
    parser.feed(raw)
    parser.close()
    return "".join(parser.parts)


def looks_like_html(text: str) -> bool:
    return bool(_HTML_HINT.search(text))


def looks_binary(text: str) -> bool:
    """NUL bytes, many control characters or replacement characters: not a human-written ticket."""
    if not text:
        return False
    if "\x00" in text:
        return True
    sample = text[:4000]
    bad = sum(1 for ch in sample if (ord(ch) < 32 and ch not in "\t\n\r") or ch == "\ufffd")
    return bad / len(sample) > 0.05


def drop_quoted_reply(lines: list[str]) -> list[str]:
    """Cut at the first quoted-history header; drop ``>``-quoted lines."""
    kept: list[str] = []
    for i, line in enumerate(lines):
        if any(p.match(line) for p in _QUOTE_HEADERS) and i > 0:
            break
        if _QUOTE_HEADER_START.match(line) and i + 1 < len(lines) and _WROTE.match(lines[i + 1]) and i > 0:
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return kept


def drop_signature(lines: list[str]) -> list[str]:
    """Cut a closing signature block if one starts within the last few non-empty lines."""
    non_empty = [i for i, line in enumerate(lines) if line.strip()]
    window = non_empty[-SIGNATURE_WINDOW:]
    for i in window:
        if i == non_empty[0]:
            continue  # the first line is the message, never a signature
        if any(p.match(lines[i]) for p in _SIGNATURE_STARTS):
            return lines[:i]
    return lines


def drop_banners(lines: list[str]) -> list[str]:
    return [line for line in lines if not any(p.match(line) for p in _BANNER_LINES)]


def clean_text(raw: str) -> tuple[str, list[str]]:
    """HTML -> text, banners, quoted replies and signatures removed, whitespace collapsed."""
    flags: list[str] = []
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if looks_like_html(text):
        flags.append("html")
        text = strip_html(text)
    if _AUTO_REPLY.search(text[:500]):
        flags.append("auto_reply")
    lines = text.split("\n")
    lines = drop_banners(lines)
    before = len(lines)
    lines = drop_quoted_reply(lines)
    if len(lines) < before:
        flags.append("quoted_reply_removed")
    before = len(lines)
    lines = drop_signature(lines)
    if len(lines) < before:
        flags.append("signature_removed")
    return _WS.sub(" ", " ".join(lines)).strip(), flags


def cap_length(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut to at most ``max_chars`` at a word boundary when one is near; True when cut."""
    if len(text) <= max_chars:
        return text, False
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space > max_chars * 0.8:
        cut = cut[:space]
    return cut.rstrip(), True


def _default_masker(text: str) -> Masked:
    from src.text.pii import mask_pii

    return mask_pii(text)


def _decode(raw: str | bytes) -> tuple[str | None, bool]:
    if isinstance(raw, str):
        return raw, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return None, True


def preprocess(
    raw: str | bytes | None,
    *,
    max_chars: int | None = None,
    supported_languages: list[str] | None = None,
    masker: Masker | None = None,
) -> Preprocessed:
    """Clean one raw ticket. Never raises on bad input: it returns ``valid=False`` with flags.

    ``max_chars`` defaults to ``Settings.max_ticket_chars``; ``supported_languages`` (default
    ``Settings.supported_languages``) decides the ``unsupported_language`` flag.
    """
    if max_chars is None or supported_languages is None:
        from src.config import get_settings

        settings = get_settings()
        max_chars = settings.max_ticket_chars if max_chars is None else max_chars
        if supported_languages is None:
            supported_languages = settings.supported_languages
    text, undecodable = _decode(raw if raw is not None else "")
    if undecodable or text is None or looks_binary(text):
        return Preprocessed(text="", masked_text="", flags=["binary"], valid=False)
    # Cap before the expensive steps too (a 50 MB paste must not stall the parser), then again after.
    text, truncated = cap_length(text, max_chars * 4)
    cleaned, flags = clean_text(text)
    cleaned, cut = cap_length(cleaned, max_chars)
    if truncated or cut:
        flags.append("truncated")
    if not cleaned:
        return Preprocessed(text="", masked_text="", flags=[*flags, "empty"], valid=False)
    language = detect_language(cleaned)
    if language is None:
        flags.append("language_unknown")
    elif language not in supported_languages:
        flags.append("unsupported_language")
        if language != "en":
            flags.append("non_english")
    masked = (masker or _default_masker)(cleaned)
    if masked.mapping:
        flags.append("pii_masked")
    return Preprocessed(
        text=cleaned,
        masked_text=masked.text,
        pii_map=masked.mapping,
        language=language,
        flags=flags,
        valid=True,
    )
