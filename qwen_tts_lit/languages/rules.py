"""The language rules every stage shares: names and codes, the languages Qwen3-TTS speaks, the model's own list and
its dialects, script ranges, quotes, which error metric a language is scored by, and how "auto" is resolved.

Pure tables and functions of strings (no model, no torch): ``upstream``, ``metrics``, ``data`` and ``evaluation``
all read them, so each rule has one spelling (docs/languages.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

AUTO = "auto"  # upstream's name for "no language given": the codec prefix without a language, and nothing to score by
DEFAULT_LANGUAGE = "en"  # the rules a row is counted and scored by when it names no language and no judge detected one
# The ten languages Qwen3-TTS speaks: ISO 639-1 code -> the name its configs (codec_language_id), generate and
# prepare's manifests use.
QWEN_LANGUAGES = {"en": "english", "zh": "chinese", "ja": "japanese", "ko": "korean", "de": "german",
                  "fr": "french", "ru": "russian", "pt": "portuguese", "es": "spanish", "it": "italian"}  # fmt: skip
# Names a user or a transcript gives -> code: the model's names, plus the spoken varieties of Chinese.
LANGUAGE_NAMES = {name: code for code, name in QWEN_LANGUAGES.items()} | {"mandarin": "zh", "cantonese": "yue"}
# Scored by characters, as Seed-TTS-eval scores Chinese: Chinese, Japanese and Cantonese write no spaces between
# words, and Korean's spacing is loose enough that ASR and transcripts disagree on it (spaces are not counted in CER).
CER_LANGUAGES = frozenset({"zh", "ja", "ko", "yue"})
# Written in either Chinese script: compared in simplified. Japanese keeps its own kanji forms (not a script choice).
SIMPLIFY_LANGUAGES = frozenset({"zh", "yue"})

# Scripts written without spaces between words: kana, CJK extension A, the unified ideographs and the compatibility
# ideographs (U+F900-FAFF). The wider range on purpose: twelve characters of the compatibility block (U+FA0E, U+FA11
# 﨑 as in the surname 山﨑, ...) are unified ideographs in their own right that no normalisation maps elsewhere: a
# range without the block counts a run of them as one word instead of one unit per character.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HANGUL = "\uac00-\ud7a3"  # precomposed Hangul syllable blocks: one spoken syllable each

# Typographic quotes and their ASCII forms: prepare writes transcripts with these (``--ascii_quotes``) and scoring
# compares apostrophes through the same characters, so "Don’t" is one spelling everywhere.
SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032"
DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033"
QUOTES = str.maketrans({**dict.fromkeys(SINGLE_QUOTES, "'"), **dict.fromkeys(DOUBLE_QUOTES, '"')})
# Typed for an apostrophe but letters or accents of their own (ʼ ʻ are letters in Hawaiian and other orthographies):
# scoring reads them as apostrophes, prepare does not rewrite a transcript's letters.
APOSTROPHE_LOOKALIKES = "\u02bc\u02bb\u0060\u00b4"
APOSTROPHES = str.maketrans(dict.fromkeys(SINGLE_QUOTES + APOSTROPHE_LOOKALIKES, "'"))


def is_auto(language: str | None) -> bool:
    """True when no language is given: None, "" or "auto" (any case, as upstream compares)."""
    return not language or language.strip().lower() == AUTO


def language_code(language: str | None) -> str:
    """ISO 639-1 code from a code or an English name ("English", "zh", "zh-CN"); "" when none is given (None, "",
    "auto"); an unknown name comes back lower-cased."""
    if is_auto(language):
        return ""
    key = language.strip().lower().replace("_", "-")
    return LANGUAGE_NAMES.get(key, key.split("-")[0])


def language_name(language: str | None) -> str:
    """The model's name of one of its ten languages ("zh" -> "chinese"); another language's code as given;
    "auto" when none is given."""
    code = language_code(language)
    return QWEN_LANGUAGES.get(code, code or AUTO)


def is_dialect(name: str) -> bool:
    """A ``codec_language_id`` entry that is a dialect (``beijing_dialect``): upstream lists it neither among the
    languages ``generate`` accepts nor as one a row may name; a dialect speaker's checkpoint reaches it through
    ``spk_is_dialect``."""
    return "dialect" in name


def model_languages(codec_language_id: Mapping[str, int]) -> dict[str, int]:
    """The languages a checkpoint speaks, name -> codec id, from its ``talker_config.codec_language_id``, dialects
    left out (as upstream's ``Qwen3TTSForConditionalGeneration.__init__`` builds ``supported_languages``)."""
    return {name: int(index) for name, index in codec_language_id.items() if not is_dialect(name)}


def uses_cer(language: str | None) -> bool:
    """True for languages scored by characters (no spaces between words)."""
    return language_code(language) in CER_LANGUAGES


def error_metric(language: str | None) -> Literal["cer", "wer"]:
    """The primary error metric of a language: "cer" for Chinese, Japanese, Korean and Cantonese, else "wer"."""
    return "cer" if uses_cer(language) else "wer"


@dataclass(frozen=True)
class SpokenLanguage:
    """The language a row is counted and scored by, and where it came from: "given" (the row names it),
    "asr_language" (the ASR judge was set to transcribe unnamed rows in it), "detected" (the judge detected it)
    or "default" (:data:`DEFAULT_LANGUAGE`: nothing else said)."""

    code: str
    source: Literal["given", "asr_language", "detected", "default"]

    @property
    def name(self) -> str:
        """The model's name of the language where it is one of its ten, else its code."""
        return language_name(self.code)


def resolve_language(given: str | None, detected: str = "", asr_language: str | None = None) -> SpokenLanguage:
    """The one resolution of "auto": a row's own language when it names one; else the language the ASR judge
    transcribed it in (``asr_language``, when the judge was told one), else the one the judge detected, else
    :data:`DEFAULT_LANGUAGE`."""
    if not is_auto(given):
        return SpokenLanguage(language_code(given), "given")
    if language_code(asr_language):
        return SpokenLanguage(language_code(asr_language), "asr_language")
    if language_code(detected):
        return SpokenLanguage(language_code(detected), "detected")
    return SpokenLanguage(DEFAULT_LANGUAGE, "default")
