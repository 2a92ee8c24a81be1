"""Level matching and the low anchor against known answers: BS.1770's own coefficient table, the loudness of a
sine of known level, the gates, two gains of one recording brought level, the clipping rule, the anchor's slope."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qwen_tts_lit.listening import loudness

RATE = 24_000


def sine(freq: float, dbfs: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def test_k_weighting_at_48k_is_bs1770s_table():
    (shelf_b, shelf_a), (high_b, high_a) = loudness.k_weighting(48_000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-8)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-8)
    np.testing.assert_allclose(high_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(high_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-8)


@pytest.mark.parametrize("rate", [48_000, 24_000, 16_000])
def test_a_997_hz_sine_at_minus_20_dbfs_reads_minus_23_lufs(rate):
    # EBU Tech 3341: a 997 Hz sine at -23 dBFS in both stereo channels is -23.0 LUFS, so one channel at -20 dBFS
    # (mean square 3 dB below its peak) is -23.01.
    assert loudness.integrated_loudness(sine(997, -20, 5, rate), rate) == pytest.approx(-23.01, abs=0.05)


def test_the_gates_ignore_silence_that_rms_would_count():
    tone = sine(997, -20, 3)
    padded = np.concatenate([tone, np.zeros(6 * RATE)])  # two thirds silence: RMS drops by 4.8 dB
    # only the three 400 ms blocks that straddle the edge count a little silence
    assert loudness.integrated_loudness(padded, RATE) == pytest.approx(
        loudness.integrated_loudness(tone, RATE), abs=0.3
    )
    rms_drop = 10 * math.log10(np.mean(padded**2) / np.mean(tone**2))
    assert rms_drop < -4.5
    # the relative gate: a passage 20 dB quieter than the rest is left out of the mean, not averaged in
    quiet_tail = np.concatenate([tone, sine(997, -40, 3)])
    assert loudness.integrated_loudness(quiet_tail, RATE) == pytest.approx(-23.01, abs=0.3)
    assert 10 * math.log10(np.mean(quiet_tail**2) / np.mean(tone**2)) < -2.9  # where an ungated mean would be


def test_silence_and_a_clip_shorter_than_a_block_have_no_loudness():
    assert loudness.integrated_loudness(np.zeros(RATE), RATE) == -math.inf
    assert loudness.integrated_loudness(1e-6 * np.ones(RATE), RATE) == -math.inf  # below the -70 LUFS gate
    assert loudness.integrated_loudness(sine(997, -20, 0.3), RATE) == -math.inf


def test_two_gains_of_one_signal_come_out_matched():
    rng = np.random.default_rng(0)
    burst = rng.standard_normal(2 * RATE) * np.repeat(rng.uniform(0, 1, 20), RATE // 10)  # speech-like envelope
    quiet, loud = 0.01 * burst, 0.3 * burst
    levels = [loudness.integrated_loudness(x, RATE) for x in (quiet, loud)]
    assert levels[1] - levels[0] == pytest.approx(20 * math.log10(30), abs=1e-6)
    matched = [loudness.gain_to(x, level, -23.0) for x, level in zip((quiet, loud), levels, strict=True)]
    assert [loudness.integrated_loudness(x, RATE) for x in matched] == pytest.approx([-23.0, -23.0], abs=1e-3)
    np.testing.assert_allclose(matched[0], matched[1], atol=1e-6)


def test_the_target_is_lowered_for_everyone_when_one_stimulus_would_clip():
    measured = [(-30.0, -12.0), (-25.0, -3.0), (-math.inf, -math.inf)]  # the second peaks 22 dB above its loudness
    assert loudness.common_target(measured) == pytest.approx(-25.0 - (-3.0) + loudness.PEAK_CEILING_DBFS)
    assert loudness.common_target([(-30.0, -12.0)]) == loudness.TARGET_LUFS
    # what gain_to makes of the lowered target: every peak at or below the ceiling, loudness still matched
    target = loudness.common_target(measured)
    assert max(peak + target - level for level, peak in measured[:2]) <= loudness.PEAK_CEILING_DBFS + 1e-9


def test_the_low_anchor_passes_speech_band_and_cuts_above_3_5_khz():
    low, high = sine(1000, -10, 1), sine(6000, -10, 1)
    middle = slice(RATE // 4, -RATE // 4)
    assert np.std(loudness.low_anchor(low, RATE)[middle]) / np.std(low[middle]) == pytest.approx(1.0, abs=0.01)
    attenuation = 20 * math.log10(np.std(loudness.low_anchor(high, RATE)[middle]) / np.std(high[middle]))
    assert attenuation < -60
    shifted = loudness.low_anchor(low, RATE)
    assert np.argmax(np.correlate(shifted[middle], low[middle][:2400], "valid")[:48]) == 0  # zero phase: no delay


def test_trimming_cuts_the_silent_ends_by_a_rule_that_ignores_gain():
    tone = sine(300, -20, 1)
    clip = np.concatenate([np.zeros(RATE // 2), tone, np.zeros(RATE)])
    trimmed = loudness.trim_silence(clip, RATE)
    margin = round(loudness.TRIM_MARGIN_SECONDS * RATE)
    assert len(trimmed) == pytest.approx(len(tone) + 2 * margin, abs=round(0.02 * RATE))
    assert len(loudness.trim_silence(0.01 * clip, RATE)) == len(trimmed)
    silent = 1e-5 * np.ones(RATE)
    assert len(loudness.trim_silence(silent, RATE)) == RATE  # nothing to hear: left whole
