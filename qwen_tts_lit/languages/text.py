"""Text normalisation for error rates, and word counting: pure functions on strings.

Reference and ASR hypothesis go through the same :func:`normalize_text`, so that "Five." and "5" or "Don’t" and
"don't" are not counted as errors: the metric should measure what was said, not how it was written. English
numbers are spelled out (Whisper writes digits, transcripts often words); other languages keep their digits. CJK
characters and kana become one token each, so a word split counts characters where words are not separated by
spaces (Chinese CER, and mixed-language WER). Chinese is compared in one script: traditional characters become
simplified on both sides (OpenCC's ``t2s``), as Seed-TTS-eval converts before scoring, since Whisper writes
either script for the same speech and 說話 is not a different word from 说话.

:func:`count_words` counts the spoken words of a text on the same normalisation, so "$5.50" is the four words said
("five dollars fifty cents") wherever a rate is computed: prepare's outlier check, segment's rate filter and
evaluation's speech rate. The tables these functions read (codes, scripts, quotes) are in ``languages.rules``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from qwen_tts_lit.languages.rules import APOSTROPHES, CJK, DEFAULT_LANGUAGE, HANGUL, SIMPLIFY_LANGUAGES, language_code

ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen"
).split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth"}
ORDINAL_IRREGULAR |= {"nine": "ninth", "twelve": "twelfth"}
CJK_CHAR = re.compile(f"([{CJK}])")
HANGUL_SYLLABLE = re.compile(f"[{HANGUL}]")
# Symbols with a spoken English form; every other symbol and all punctuation become spaces.
SPOKEN_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}
CURRENCY = {"$": ("dollars", "cents"), "£": ("pounds", "pence"), "€": ("euros", "cents")}
MONEY = re.compile(r"([$£€])\s?(\d+)(?:\.(\d{2}))?\b")
GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
DECIMAL = re.compile(r"(\d+)\.(\d+)")
INTEGER = re.compile(r"\d+")
# An apostrophe belongs to a word only between two letters ("don't", "o'clock"); quotes around words go.
LOOSE_APOSTROPHE = re.compile(r"(?<![^\W\d_])'|'(?![^\W\d_])")


def has_speakable(text: str) -> bool:
    """True when the text has at least one letter or digit: punctuation alone is no transcript and nothing to say."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


@cache
def _t2s():
    import opencc  # the OpenCC project's own binding; its dictionaries ship in the wheel (no download)

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters as simplified ones (phrase-aware: 乾燥 -> 干燥, 一隻 -> 一只); simplified text,
    Latin letters and digits come back unchanged."""
    return _t2s().convert(text)


def spell_integer(n: int) -> str:
    """English cardinal: 1234 -> "one thousand two hundred thirty four" (no "and", no hyphens)."""
    if n < 0:
        return "minus " + spell_integer(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, rest = divmod(n, 10)
        return TENS[tens] + (" " + ONES[rest] if rest else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return ONES[hundreds] + " hundred" + (" " + spell_integer(rest) if rest else "")
    for value, name in SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return spell_integer(head) + " " + name + (" " + spell_integer(rest) if rest else "")
    raise AssertionError("unreachable")


def spell_year(n: int) -> str:
    """A four-digit year as read: 1990 -> "nineteen ninety", 1905 -> "nineteen oh five", 1900 -> "nineteen hundred"."""
    head, tail = divmod(n, 100)
    if tail == 0:
        return spell_integer(head) + " hundred"
    return spell_integer(head) + " " + (("oh " + ONES[tail]) if tail < 10 else spell_integer(tail))


def spell_number(digits: str) -> str:
    """A run of digits as spoken: years 1100-1999 and 2010-2099 in pairs, other numbers as cardinals."""
    n = int(digits)
    if len(digits) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099):
        return spell_year(n)
    if len(digits) > 1 and digits.startswith("0"):  # "007", a code or phone number: digit by digit
        return " ".join(ONES[int(d)] for d in digits)
    return spell_integer(n)


def spell_ordinal(n: int) -> str:
    """English ordinal: 21 -> "twenty first", 12 -> "twelfth", 40 -> "fortieth"."""
    words = spell_integer(n).split()
    last = words[-1]
    if last in ORDINAL_IRREGULAR:
        words[-1] = ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def spell_money(match: re.Match) -> str:
    """ "$5" -> "five dollars", "$5.50" -> "five dollars fifty cents" (how Whisper's "$5.50" is read)."""
    major, minor = CURRENCY[match.group(1)]
    text = f" {spell_integer(int(match.group(2)))} {major} "
    if match.group(3) and int(match.group(3)):
        text += f"{spell_integer(int(match.group(3)))} {minor} "
    return text


def spell_decimal(match: re.Match) -> str:
    """ "3.14" -> "three point one four" (digits after the point are read one by one)."""
    return f" {spell_number(match.group(1))} point {' '.join(ONES[int(d)] for d in match.group(2))} "


def spell_numbers_en(text: str) -> str:
    """Every number in English text spelled out: 1,000 groups, money, ordinals, decimals, then plain digit runs."""
    text = GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = MONEY.sub(spell_money, text)
    text = ORDINAL.sub(lambda m: f" {spell_ordinal(int(m.group(1)))} ", text)
    text = DECIMAL.sub(spell_decimal, text)
    return INTEGER.sub(lambda m: f" {spell_number(m.group(0))} ", text)


def strip_punctuation(text: str) -> str:
    """Punctuation and symbols become spaces; apostrophes survive only inside words."""
    text = LOOSE_APOSTROPHE.sub(" ", text)
    return "".join(" " if c != "'" and unicodedata.category(c)[0] in "PS" else c for c in text)


def normalize_text(text: str, language: str | None = DEFAULT_LANGUAGE) -> str:
    """Lowercase, punctuation-free, single-spaced text for WER/CER; English numbers spelled, CJK one char per token,
    Chinese in simplified characters."""
    code = language_code(language)
    english = code == "en"
    text = unicodedata.normalize("NFKC", text).translate(APOSTROPHES)  # NFKC: full-width "５，" -> "5,"
    if code in SIMPLIFY_LANGUAGES:  # after NFKC, which maps compatibility ideographs (U+F900..) to unified ones
        text = to_simplified(text)
    if english:
        for symbol, spoken in SPOKEN_SYMBOLS.items():
            text = text.replace(symbol, spoken)
        text = spell_numbers_en(text)
    text = strip_punctuation(text.casefold())
    text = CJK_CHAR.sub(r" \1 ", text)
    return " ".join(text.split())


def count_words(text: str, language: str | None = DEFAULT_LANGUAGE) -> int:
    """Spoken words of ``text``: the words of its normalised form (numbers spelled out in English: "$5.50" is four),
    each CJK character or kana one (normalisation splits them) and each Hangul syllable block one (Korean spacing
    is loose: ASR and transcripts disagree on it, as in CER). The unit of every rate: prepare's and segment's
    words per second, evaluation's pace."""
    return sum(len(HANGUL_SYLLABLE.findall(token)) or 1 for token in normalize_text(text, language).split())
