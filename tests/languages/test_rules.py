"""The language rules (qwen_tts_lit.languages): hand-written strings and configs, no models."""

from __future__ import annotations

import pytest

from qwen_tts_lit.data.prepare.text import normalize_unicode
from qwen_tts_lit.languages import (
    QWEN_LANGUAGES,
    count_words,
    error_metric,
    language_name,
    model_languages,
    normalize_text,
    resolve_language,
)


@pytest.mark.parametrize(
    ("given", "detected", "asr_language", "code", "source"),
    [
        ("Chinese", "en", None, "zh", "given"),  # a row's own language wins over anything heard
        ("auto", "zh", None, "zh", "detected"),
        (None, "zh", None, "zh", "detected"),
        ("AUTO", "zh", "en", "en", "asr_language"),  # told English, the judge decoded English: scored as English
        ("auto", "", None, "en", "default"),  # nothing said and nothing heard (ASR off, or silence)
    ],
)  # fmt: skip
def test_auto_is_resolved_once_by_one_rule(given, detected, asr_language, code, source):
    spoken = resolve_language(given, detected, asr_language)
    assert (spoken.code, spoken.source) == (code, source)


def test_names_and_codes_round_trip_for_the_ten_languages():
    assert len(QWEN_LANGUAGES) == 10
    for code, name in QWEN_LANGUAGES.items():
        assert language_name(code) == language_name(name) == name == resolve_language(name).name
    assert language_name("yue") == "yue" and language_name("auto") == language_name(None) == "auto"
    assert [error_metric(x) for x in ("zh", "Japanese", "ko", "cantonese", "en", "de")] == ["cer"] * 4 + ["wer"] * 2


def test_the_models_languages_leave_dialects_out():
    ids = {"english": 2050, "chinese": 2055, "beijing_dialect": 2074, "sichuan_dialect": 2062}
    assert model_languages(ids) == {"english": 2050, "chinese": 2055}


def test_one_word_count_for_money_and_for_every_script():
    """The "$5.50" of issue 21: four spoken words, as normalisation spells it, in every caller."""
    assert normalize_text("It costs $5.50.", "en") == "it costs five dollars fifty cents"
    assert count_words("It costs $5.50.", "en") == 6
    # U+FA11 﨑 is a compatibility ideograph that NFKC keeps: one unit per character, like its neighbours.
    assert count_words("山﨑﨑さん", "ja") == 5
    assert count_words("안녕하세요 여러분", "ko") == 8  # Hangul syllable blocks


def test_prepare_and_scoring_read_one_quote_table():
    """Prepare writes typographic quotes as ASCII; scoring reads the same apostrophes (and look-alikes prepare leaves
    alone, since ʻ and ʼ are letters in some orthographies) as one."""
    assert normalize_unicode("\u201cDon\u2019t\u201d \u201aquote\u2018") == "\"Don't\" 'quote'"
    assert normalize_unicode("Hawai\u02bbi") == "Hawai\u02bbi"
    assert normalize_text("Don\u2019t", "en") == normalize_text("Don\u02bct", "en") == normalize_text("Don't", "en")
