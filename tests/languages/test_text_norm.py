"""Text normalisation for WER/CER (qwen_tts_lit.languages.text): hand-written strings, no models."""

from __future__ import annotations

import pytest

from qwen_tts_lit.languages import language_code
from qwen_tts_lit.languages.text import normalize_text, spell_integer, spell_number, spell_ordinal


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (42, "forty two"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (12_345, "twelve thousand three hundred forty five"),
        (1_000_000, "one million"),
        (2_500_017, "two million five hundred thousand seventeen"),
        (10**12 + 1, "one trillion one"),
        (-3, "minus three"),
    ],
)
def test_spell_integer(n: int, words: str) -> None:
    assert spell_integer(n) == words


@pytest.mark.parametrize(
    ("digits", "words"),
    [
        ("1990", "nineteen ninety"),
        ("1905", "nineteen oh five"),
        ("1900", "nineteen hundred"),
        ("2024", "twenty twenty four"),
        ("2005", "two thousand five"),  # 2000-2009 are read as cardinals
        ("3000", "three thousand"),
        ("007", "zero zero seven"),
    ],
)
def test_spell_number_years_and_codes(digits: str, words: str) -> None:
    assert spell_number(digits) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (21, "twenty first"), (40, "fortieth")],
)
def test_spell_ordinal(n: int, words: str) -> None:
    assert spell_ordinal(n) == words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The garden looks lovely after the rain.", "the garden looks lovely after the rain"),
        ("  Hello,\tWORLD!\n ", "hello world"),
        ("Don\u2019t say \u201chello\u201d \u2014 it\u2019s fine.", "don't say hello it's fine"),
        ("The students' books, 'quoted'.", "the students books quoted"),
        ("twenty-one state-of-the-art", "twenty one state of the art"),
        ("I have 5 cats.", "i have five cats"),
        ("It costs $5.50, not $5.", "it costs five dollars fifty cents not five dollars"),
        ("1,000,000 people", "one million people"),
        ("on the 21st of May", "on the twenty first of may"),
        ("pi is 3.14", "pi is three point one four"),
        ("50% & more", "fifty percent and more"),
        ("In 1990 we met at 3:30.", "in nineteen ninety we met at three thirty"),
        ("\uff21\uff22\uff23 \uff15", "abc five"),  # full-width letters and digits (NFKC)
        ("Stra\u00dfe", "strasse"),  # casefold, so German spellings compare equal
        ("caf\u0065\u0301", "caf\u00e9"),  # NFD accent composed
        ("...?!", ""),
    ],
)
def test_normalize_text_english(text: str, expected: str) -> None:
    assert normalize_text(text, "en") == expected


def test_digits_and_words_compare_equal() -> None:
    assert normalize_text("He bought 2 tickets for the 3rd show.") == normalize_text(
        "He bought two tickets for the third show"
    )


def test_cjk_is_one_token_per_character_and_keeps_digits() -> None:
    assert normalize_text("我们在2020年，去了北京。", "zh") == "我 们 在 2020 年 去 了 北 京"
    assert normalize_text("こんにちは、世界！", "ja") == "こ ん に ち は 世 界"
    # Mixed English/Chinese under English rules: the CJK characters still become single tokens.
    assert normalize_text("Hello 北京 2 times", "en") == "hello 北 京 two times"


def test_chinese_becomes_simplified_and_nothing_else_changes() -> None:
    assert normalize_text("我們說話，頭髮乾燥。", "zh") == "我 们 说 话 头 发 干 燥"
    assert normalize_text("Zhōngwén 2020 我们", "zh") == "zhōngwén 2020 我 们"  # Latin, digits, simplified: as before
    assert normalize_text("我們", "en") == "我 們"  # only Chinese (and Cantonese) rows are converted


def test_non_english_keeps_digits() -> None:
    assert normalize_text("Ich habe 5 Katzen.", "de") == "ich habe 5 katzen"
    assert normalize_text("5 cats", None) == "5 cats"


@pytest.mark.parametrize(
    ("given", "code"),
    [("en", "en"), ("English", "en"), ("Chinese", "zh"), ("zh-CN", "zh"), ("zh_TW", "zh"), (None, ""), ("", "")],
)
def test_language_code(given: str | None, code: str) -> None:
    assert language_code(given) == code
