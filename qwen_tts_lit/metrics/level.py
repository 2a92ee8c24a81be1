"""Level: the loudness of a clip's active speech, in dBFS (RMS; a full-scale sine reads -3.01 dBFS).

An energy-gated RMS, with the two-stage gating of ITU-R BS.1770-4 (the loudness standard behind EBU R128) applied to
short speech frames instead of 400 ms blocks, and without its K-weighting (a level difference is what the probe
reads, and the weighting would only tilt it by the spectral change of, say, whispering): 20 ms frames every 10 ms;
an absolute gate drops frames below ``ABSOLUTE_GATE_DBFS``; a relative gate then drops frames more than
``RELATIVE_GATE_DB`` below the power mean of those left (pauses, breaths, decaying tails); the level is the power
mean of the frames kept. So pauses do not count: the same speech with twice the silence around and inside it reads
the same level, where a plain RMS would read it 3 dB quieter. -inf for silence (no frame passes the absolute gate).
Pure numpy: a function of a waveform and its sample rate.
"""

from __future__ import annotations

import math

import numpy as np

from qwen_tts_lit.audio import as_mono

FRAME_S, HOP_S = 0.020, 0.010
ABSOLUTE_GATE_DBFS = -70.0  # BS.1770's absolute gate (LUFS there, dBFS here)
# BS.1770 gates 10 LU below the mean of 400 ms blocks; 20 ms frames of running speech spread wider (a vowel and the
# consonant beside it differ by 20-30 dB), so the relative gate sits lower and keeps the quiet phonemes of speech.
RELATIVE_GATE_DB = 20.0


def frame_powers(wav: np.ndarray, sr: int) -> np.ndarray:
    """Mean square of each 20 ms frame, every 10 ms (the clip zero-padded to one frame when shorter)."""
    x = as_mono(np.asarray(wav, dtype=np.float32)).astype(np.float64)
    frame, hop = max(1, round(FRAME_S * sr)), max(1, round(HOP_S * sr))
    if len(x) < frame:
        x = np.pad(x, (0, frame - len(x)))
    windows = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    return np.mean(windows**2, axis=1)


def to_db(power: float) -> float:
    """10 log10(power); -inf for 0."""
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def active_level_db(wav: np.ndarray, sr: int) -> float:
    """The active-speech level in dBFS (see the module docstring); -inf for a silent clip."""
    powers = frame_powers(wav, sr)
    kept = powers[powers >= 10 ** (ABSOLUTE_GATE_DBFS / 10)]
    if kept.size == 0:
        return -math.inf
    relative = 10 ** ((to_db(float(kept.mean())) - RELATIVE_GATE_DB) / 10)
    return to_db(float(kept[kept >= relative].mean()))
