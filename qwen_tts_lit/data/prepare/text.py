"""Transcript cleaning: pure functions on strings.

The model reads what it is trained on, so a transcript must hold only what is spoken: non-speech tags (``<laugh>``,
``[breath]``, ``(applause)``, ``*sigh*``) are removed, Unicode is put in NFC (an NFD "é" is two code points and
tokenizes differently from the "é" users type), typographic quotes become ASCII, invisible characters go, and
whitespace is collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from qwen_tts_lit.languages.rules import QUOTES

# Words that name a sound rather than speech. Parentheses and asterisks also hold real text ("the meeting (on
# Friday)", "*really*"), so for those only these words count as tags; <...> and [...] are never spoken.
NON_SPEECH_WORDS = (
    r"laugh(?:s|ing|ter)?|chuckles?|giggles?|sigh(?:s|ing)?|breath(?:s|es|ing)?|inhales?|exhales?|gasps?"
    r"|cough(?:s|ing)?|clears throat|sniff(?:s|ing)?|sobs?|groans?|yawns?|applause|music|noise|silence|pause"
    r"|inaudible|crosstalk"
)

DEFAULT_TAG_PATTERNS: tuple[str, ...] = (
    r"<[^<>]{1,40}>",
    r"\[[^\[\]]{1,40}\]",
    rf"\((?i:{NON_SPEECH_WORDS})\)",
    rf"\*(?i:{NON_SPEECH_WORDS})\*",
)

INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Punctuation that attaches to the previous word: a tag removed before it must not leave "printer ." behind.
CLOSING_PUNCTUATION = r"[,.;:!?\u3002\uff0c\uff01\uff1f]"


@dataclass(frozen=True)
class CleanText:
    """A cleaned transcript and what was changed to get there (each change is reported as a warning)."""

    text: str
    tags: list[str] = field(default_factory=list)
    unicode_changed: bool = False
    whitespace_changed: bool = False


def compile_tag_patterns(patterns: Sequence[str]) -> re.Pattern | None:
    """One regex matching any of ``patterns``; None when there is nothing to strip. Raises ``re.error``."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def strip_tags(text: str, tags: re.Pattern | None) -> tuple[str, list[str]]:
    """Remove every match of ``tags``; return the text and the removed tags, in order."""
    if tags is None:
        return text, []
    found = [m.group(0) for m in tags.finditer(text)]
    if not found:
        return text, []
    # "printer (applause)." -> "printer." : drop the space before a tag that is followed by closing punctuation.
    text = re.sub(rf"\s*(?:{tags.pattern})(?=\s*{CLOSING_PUNCTUATION})", "", text)
    # "dog [breath] barked" -> "dog  barked" (whitespace normalisation collapses it); "a<b>c" -> "a c".
    return tags.sub(" ", text), found


def normalize_unicode(text: str, ascii_quotes: bool = True) -> str:
    """NFC, without invisible characters (zero-width spaces, BOM, soft hyphens, controls), optionally ASCII quotes."""
    text = unicodedata.normalize("NFC", INVISIBLE.sub("", text))
    text = "".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc")
    return text.translate(QUOTES) if ascii_quotes else text


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (tabs, newlines, no-break and ideographic spaces) to one space; trim ends."""
    return " ".join(text.split())


def clean_text(text: str, tags: re.Pattern | None, ascii_quotes: bool = True) -> CleanText:
    """The whole transcript cleaning: Unicode, then tags, then whitespace. Reports each kind of change.
    Idempotent: tags are stripped until none is left, since removing a nested one can complete another
    ("[[inaudible]]" -> "[ ]" -> ""), so inference may clean a text that was already cleaned and get it back."""
    unicode_clean = normalize_unicode(text, ascii_quotes)
    stripped, found = strip_tags(unicode_clean, tags)
    final = normalize_whitespace(stripped)
    while True:  # removing a nested tag, or collapsing whitespace, may have completed another one
        stripped, more = strip_tags(final, tags)
        if not more:
            break
        final, found = normalize_whitespace(stripped), found + more
    # Whitespace that only exists because a tag was removed is not a whitespace problem of the input.
    whitespace_changed = normalize_whitespace(unicode_clean) != unicode_clean
    return CleanText(final, found, unicode_clean != text, whitespace_changed)


def clean_spoken_text(text: str) -> CleanText:
    """Inference's cleaning of a text to speak: :func:`clean_text` with prepare's defaults (tags, quotes), so the
    model reads what it was trained to read. Its one caller is ``synthesis.Synthesizer.spoken_text``; prepare calls
    :func:`clean_text` itself."""
    return clean_text(text, _DEFAULT_TAGS)


_DEFAULT_TAGS = compile_tag_patterns(DEFAULT_TAG_PATTERNS)
