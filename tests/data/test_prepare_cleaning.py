"""Unit tests of prepare's pure pieces: transcript cleaning, audio cleaning, options, split. Hand-made inputs only."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from qwen_tts_lit.data.prepare import audio as ac
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.plan import split_val
from qwen_tts_lit.data.prepare.text import (
    DEFAULT_TAG_PATTERNS,
    clean_text,
    compile_tag_patterns,
    normalize_unicode,
    normalize_whitespace,
    strip_tags,
)
from qwen_tts_lit.languages import count_words, has_speakable

TAGS = compile_tag_patterns(DEFAULT_TAG_PATTERNS)

# ------------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("raw", "clean", "tags"),
    [
        ("<laugh> My brother planted tomatoes.", "My brother planted tomatoes.", ["<laugh>"]),
        ("A small dog [breath] barked.", "A small dog barked.", ["[breath]"]),
        ("We need more paper (applause).", "We need more paper.", ["(applause)"]),
        ("*sigh* Our team finished early.", "Our team finished early.", ["*sigh*"]),
        ("The bus stop [laughter], then home!", "The bus stop, then home!", ["[laughter]"]),
        ("Yes<breath/>no", "Yes no", ["<breath/>"]),
        ("(Laughs) OK *Coughing* fine", "OK fine", ["(Laughs)", "*Coughing*"]),
        # Parentheses and asterisks that hold words are speech, not tags.
        ("The meeting (on Friday) was *really* long.", "The meeting (on Friday) was *really* long.", []),
    ],
)
def test_strip_tags_then_whitespace(raw, clean, tags):
    stripped, found = strip_tags(raw, TAGS)
    assert normalize_whitespace(stripped) == clean
    assert found == tags


def test_custom_tag_patterns_replace_the_defaults():
    custom = compile_tag_patterns([r"\{[^}]*\}"])
    assert normalize_whitespace(strip_tags("a {noise} b <laugh>", custom)[0]) == "a b <laugh>"
    assert compile_tag_patterns([]) is None
    assert strip_tags("a <laugh> b", None) == ("a <laugh> b", [])


def test_normalize_unicode_nfc_quotes_and_invisibles():
    nfd = unicodedata.normalize("NFD", "café")
    assert len(nfd) == 5
    assert normalize_unicode(nfd) == "café" and len(normalize_unicode(nfd)) == 4
    assert normalize_unicode("Let\u2019s \u201cgo\u201d") == 'Let\'s "go"'
    assert normalize_unicode("Let\u2019s", ascii_quotes=False) == "Let\u2019s"
    assert normalize_unicode("\ufeffzero\u200bwidth\u00ad\x07") == "zerowidth"
    assert normalize_unicode("tab\tstays") == "tab\tstays"  # whitespace is normalize_whitespace's job


def test_normalize_whitespace():
    assert normalize_whitespace("  a \t b\n\nc\u00a0d\u3000e  ") == "a b c d e"


def test_clean_text_reports_each_kind_of_change():
    demo_37 = "  Let\u2019s meet  outside the " + unicodedata.normalize("NFD", "café") + " at seven. \t"
    result = clean_text(demo_37, TAGS)
    assert result.text == "Let's meet outside the café at seven."
    assert (result.tags, result.unicode_changed, result.whitespace_changed) == ([], True, True)
    tagged = clean_text("<laugh> Hello.", TAGS)
    assert tagged.text == "Hello." and tagged.tags == ["<laugh>"]
    assert not tagged.whitespace_changed  # the space left by a removed tag is not a whitespace problem of the input
    untouched = clean_text("Plain text.", TAGS)
    assert (untouched.text, untouched.tags, untouched.unicode_changed, untouched.whitespace_changed) == (
        "Plain text.",
        [],
        False,
        False,
    )


def test_speakable_and_word_count():
    assert not has_speakable(" ... !? ")
    assert has_speakable("42") and has_speakable("é")
    assert count_words("Let's meet outside, at 7.", "en") == 5
    assert count_words("你好世界") == 4
    assert count_words("hello 世界") == 3


# ------------------------------------------------------------------------------------------------- audio


def tone(seconds: float, rate: int, db: float = -12.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)  # RMS = db dBFS


def test_block_db_measures_rms_in_dbfs():
    levels = ac.block_db(np.concatenate([np.zeros(240), tone(0.1, 24000, db=-20.0, freq=1000.0)]), 24000)
    assert levels[0] == ac.SILENT_DB
    assert np.all(np.abs(levels[1:] + 20.0) < 0.01)  # whole cycles per 10 ms block


def test_speech_bounds_threshold_and_margin():
    rate = 24000
    audio = np.concatenate([np.zeros(rate), tone(0.5, rate), tone(0.3, rate, db=-60.0)])  # -60 dBFS "noise" tail
    start, end = ac.speech_bounds(audio, rate, threshold_db=-45.0, margin_s=0.1)
    assert start == rate - round(0.1 * rate)
    assert end == round(1.5 * rate) + round(0.1 * rate)
    assert ac.speech_bounds(audio, rate, threshold_db=-70.0, margin_s=0.0)[1] == len(audio)  # noise counts as loud
    assert ac.speech_bounds(np.zeros(rate), rate, -45.0, 0.1) is None
    assert ac.speech_bounds(tone(1.0, rate, db=-50.0), rate, -45.0, 0.1) is None


def test_pad_to_frames_adds_at_least_the_requested_silence():
    out = ac.pad_to_frames(np.ones(1000, np.float32), 24000)
    assert len(out) % ac.FRAME_SAMPLES == 0 and len(out) >= 25000 and len(out) - 25000 < ac.FRAME_SAMPLES
    assert np.all(out[1000:] == 0)
    assert len(ac.pad_to_frames(np.ones(1920, np.float32), 0)) == 1920


def test_to_pcm16_round_trips_soundfile_scaling_and_clips():
    pcm = ac.to_pcm16(np.array([0.0, 0.5, -1.0, 1.0, 2.0, -2.0], np.float32))
    assert pcm.tolist() == [0, 16384, -32768, 32767, 32767, -32768]
    ints = np.array([-32768, -1, 0, 1, 32767], np.int16)
    assert np.array_equal(ac.to_pcm16(ac.pcm16_to_float(ints)), ints)


def test_clean_audio_full_pipeline():
    rate = 16000
    speech = tone(1.0, rate)
    stereo = np.stack([np.concatenate([np.zeros(rate), speech, np.zeros(rate // 2)])] * 2, axis=1)
    result = ac.clean_audio(stereo, rate, threshold_db=-45.0, margin_s=0.1, trailing_silence_s=1.0)
    assert result.pcm.dtype == np.int16 and len(result.pcm) % ac.FRAME_SAMPLES == 0
    assert abs(result.speech_samples - 1.2 * 24000) <= 2  # 1 s of tone + 0.1 s margin each side, at 24 kHz
    assert np.all(result.pcm[result.speech_samples :] == 0)
    assert len(result.pcm) - result.speech_samples >= 24000
    assert abs(result.trimmed_s - 1.3) < 1e-6 and result.gain_db == 0.0
    assert ac.clean_audio(np.zeros((rate, 1), np.float32), rate) is None


def test_clean_audio_scales_a_float_peak_above_full_scale():
    loud = tone(1.0, 24000, db=0.0) * 2  # peak ~ +9 dBFS
    result = ac.clean_audio(loud, 24000, trailing_silence_s=0.0)
    assert result.gain_db < -8.0
    expected = loud / np.max(np.abs(loud))  # the same waveform at full scale, not clipped flat
    assert np.max(np.abs(ac.pcm16_to_float(result.pcm[:24000]) - expected)) < 1e-4


# ------------------------------------------------------------------------------------------------- options, split


def test_option_ranges_are_checked_together():
    bad = PrepareOptions("r", "o", "m", val_fraction=1.0, min_seconds=5, max_seconds=2, batch_size=0).check()
    assert any("--val_fraction" in m for m in bad)
    assert any("--max_seconds" in m for m in bad)
    assert any("--batch_size" in m for m in bad)
    assert PrepareOptions("r", "o", "m").check() == []


def test_split_val_is_a_seeded_hash_rank():
    ids = [f"utt_{i:03d}" for i in range(50)]
    val = split_val(ids, 0.1, seed=0)
    assert len(val) == 5 and val == split_val(list(reversed(ids)), 0.1, seed=0)
    assert val != split_val(ids, 0.1, seed=1)
    assert val <= split_val(ids + ["new_clip"], 0.1, seed=0) | {"new_clip"}  # adding a clip moves no old clip
    assert split_val(ids, 0.0, 0) == set() and split_val(["a"], 0.5, 0) == set()
    assert len(split_val(["a", "b"], 0.9, 0)) == 1  # never every clip
