"""The probe's measures on known answers: YIN's median F0 (metrics/pitch.py) on tones of known frequency and on real
speech shifted by a known number of semitones, the active-speech level (metrics/level.py) on tones of known RMS
with pauses, and both on espeak-ng speech at known -p / -a in Qwen3-TTS's ten languages. CPU; needs espeak-ng and
sox (apt)."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from helpers.espeak_voice import ESPEAK_RATE, SENTENCES, espeak

from qwen_tts_lit.metrics.level import active_level_db
from qwen_tts_lit.metrics.pitch import f0_track, median_f0, semitones

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt)")
RATE = 24000


def tone(f0: float, seconds: float = 1.0, harmonics: int = 1, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, harmonics + 1))).astype(np.float32)


@pytest.mark.parametrize("f0", [70.0, 110.0, 196.0, 330.0, 620.0])
def test_median_f0_of_tones(f0: float) -> None:
    assert median_f0(tone(f0), RATE) == pytest.approx(f0, rel=0.005)
    # A voiced-like tone: nine harmonics, the fundamental not the strongest peak of the autocorrelation's neighbours.
    assert median_f0(tone(f0, harmonics=9), RATE) == pytest.approx(f0, rel=0.005)


def test_no_pitch_without_voicing() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)
    assert math.isnan(median_f0(noise, RATE))
    assert math.isnan(median_f0(np.zeros(RATE, dtype=np.float32), RATE))
    assert math.isnan(median_f0(np.zeros(0, dtype=np.float32), RATE))
    # Pauses do not vote: a tone with silence on both sides reads the tone, and the silent frames are unvoiced.
    padded = np.concatenate([np.zeros(RATE // 2), tone(150.0, 0.5), np.zeros(RATE)]).astype(np.float32)
    track = f0_track(padded, RATE)
    assert median_f0(padded, RATE) == pytest.approx(150.0, rel=0.005)
    assert 0.2 < np.isfinite(track).mean() < 0.3  # 0.5 s voiced of 2 s
    assert math.isnan(semitones(math.nan, 100.0)) and semitones(200.0, 100.0) == pytest.approx(12.0)


@needs_espeak
@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox (apt)")
@pytest.mark.parametrize("language", ["en", "de", "zh"])
def test_semitone_shifts_of_real_speech(tmp_path, language: str) -> None:
    # sox's pitch effect scales every period by a known factor and keeps the timing, so frame i of the shifted clip
    # is frame i of the original: frame by frame the F0 moves by exactly the shift. The median over voiced frames
    # may pick other frames (voicing shifts a little), so it is held to a looser bound.
    voice, text = SENTENCES[language]
    source = tmp_path / "plain.wav"
    sf.write(str(source), espeak(text, voice), ESPEAK_RATE)
    plain = espeak(text, voice)
    track = f0_track(plain, ESPEAK_RATE)
    for cents in (-400, -200, 200, 400):
        shifted = tmp_path / f"{cents}.wav"
        subprocess.run(["sox", str(source), str(shifted), "pitch", str(cents)], check=True)
        wav, rate = sf.read(str(shifted), dtype="float32")
        moved = f0_track(wav, rate)
        n = min(len(track), len(moved))
        both = np.isfinite(track[:n]) & np.isfinite(moved[:n])
        assert both.sum() > 80
        assert np.median(12 * np.log2(moved[:n][both] / track[:n][both])) == pytest.approx(cents / 100, abs=0.05)
        assert semitones(median_f0(wav, rate), median_f0(plain, ESPEAK_RATE)) == pytest.approx(cents / 100, abs=0.3)


@needs_espeak
@pytest.mark.parametrize("language", sorted(SENTENCES))
def test_espeak_pitch_and_amplitude_in_order(language: str) -> None:
    voice, text = SENTENCES[language]
    low, plain, high = (median_f0(espeak(text, voice, pitch=p), ESPEAK_RATE) for p in (15, 50, 90))
    assert semitones(plain, low) > 2 and semitones(high, plain) > 2, (low, plain, high)
    soft, normal, loud = (active_level_db(espeak(text, voice, amplitude=a), ESPEAK_RATE) for a in (40, 100, 180))
    # espeak-ng's -a is a linear gain (below clipping): 40 -> 100 is 20 log10(2.5) = 7.96 dB, 100 -> 180 5.1 dB.
    assert normal - soft == pytest.approx(20 * math.log10(100 / 40), abs=0.5)
    assert loud - normal == pytest.approx(20 * math.log10(180 / 100), abs=0.8)
    # Whispering has no voicing: no pitch, and a lower level. (espeak-ng's French voice ignores the +whisper
    # variant: its "whisper" is the plain clip, sample for sample.)
    if language == "fr":
        return
    whisper = espeak(text, voice + "+whisper")
    assert math.isnan(median_f0(whisper, ESPEAK_RATE))
    assert active_level_db(whisper, ESPEAK_RATE) < normal - 2


def test_active_level_ignores_pauses() -> None:
    speech = tone(200.0, 0.5, amplitude=0.5)  # RMS 0.5 / sqrt 2: -9.03 dBFS
    expected = 20 * math.log10(0.5 / math.sqrt(2))
    short = np.concatenate([speech, np.zeros(RATE // 2)]).astype(np.float32)
    long = np.concatenate([np.zeros(RATE), speech, np.zeros(3 * RATE)]).astype(np.float32)
    assert active_level_db(speech, RATE) == pytest.approx(expected, abs=0.01)
    assert active_level_db(short, RATE) == pytest.approx(expected, abs=0.1)
    assert active_level_db(long, RATE) == pytest.approx(expected, abs=0.1)
    # The oracle a plain RMS fails: with 8x the silence it reads 6 dB quieter, the gated level does not move.
    plain_rms = [10 * math.log10(np.mean(x.astype(np.float64) ** 2)) for x in (short, long)]
    assert plain_rms[0] - plain_rms[1] > 5
    # Gain is read exactly; a quiet breath 40 dB down between two words does not count.
    assert active_level_db(0.1 * long, RATE) == pytest.approx(expected - 20, abs=0.1)
    breath = np.concatenate([speech, 0.005 * np.random.default_rng(1).normal(size=RATE), speech]).astype(np.float32)
    assert active_level_db(breath, RATE) == pytest.approx(expected, abs=0.1)
    assert active_level_db(np.zeros(RATE, dtype=np.float32), RATE) == -math.inf
