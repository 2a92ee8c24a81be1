"""Pitch: the median fundamental frequency (F0) of a clip's voiced frames, by YIN with a voicing decision.

YIN (de Cheveigné and Kawahara 2002, JASA 111(4)): per frame, the difference function d(tau) of the signal and itself
delayed by tau, normalised by its cumulative mean (d'(tau) = d(tau) * tau / sum_{j<=tau} d(j)); the period is the
first tau whose d' dips below an absolute threshold (``THRESHOLD`` 0.2; the paper's 0.1 read shifted speech worse),
taken to the bottom of that dip and refined by parabolic interpolation. A frame is voiced when such a dip exists (its
aperiodicity d' is below the threshold) and it is loud enough (within ``ENERGY_GATE_DB`` of the clip's loudest frame,
above -60 dBFS): unvoiced consonants, noise and pauses have no dip that deep. The paper's fallback to the global minimum
for frames without one is left out on purpose: it turns noise into a pitch. :func:`median_f0` is the median over voiced
frames (robust to the octave errors of a few frames), NaN when fewer than ``MIN_VOICED`` frames are voiced: "no pitch",
never a number.

Checked on known answers (tests/metrics/test_voice_measures.py): sines and harmonic tones within 0.5 %, espeak-ng speech
shifted by sox by a known number of semitones within 0.25 semitone, espeak-ng's ``-p`` in order. (librosa's yin and
pyin crash this environment's numba, so they are not the cross-check.) Pure numpy: a function of a waveform and its
sample rate.
"""

from __future__ import annotations

import math

import numpy as np

from qwen_tts_lit.audio import as_mono, resample

PITCH_RATE = 16000  # speech F0 needs nothing above 8 kHz
FMIN, FMAX = 50.0, 800.0  # Hz: a low male voice to a high child's or a shout
FRAME = 1024  # samples at 16 kHz per analysis frame (64 ms): the integration window plus the longest period
WINDOW = 512  # integration window W (32 ms): more than the longest period (16000 / 50 = 320 samples)
HOP = 160  # 10 ms between frames
# YIN's absolute threshold on d'. The paper uses 0.1 and finds 0.1-0.2 alike on its error rate; on espeak-ng speech
# pitch-shifted by sox by -4, -2, +2 and +4 semitones, 0.1 voiced 23 % of the frames and read -4.32 for -4; 0.2
# voiced 45 % and read -4.05, -2.01, +1.98, +3.98 (0.3 about the same, with more breathy frames let in).
THRESHOLD = 0.2
ENERGY_GATE_DB = 40.0  # frames this far below the loudest frame are not voiced (breath, reverberation tails)
FLOOR_DBFS = -60.0  # nor any frame below this
MIN_VOICED = 5  # 50 ms of voicing at least, else no pitch


def _frames(x: np.ndarray) -> np.ndarray:
    """(n_frames, FRAME) frames every HOP samples; the clip zero-padded to a whole frame."""
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    count = 1 + (len(x) - FRAME) // HOP
    return np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:count]


def difference(frames: np.ndarray, max_lag: int) -> np.ndarray:
    """YIN's d(tau) for tau = 0..max_lag of each frame: sum over j < WINDOW of (x_j - x_{j+tau})^2, expanded as
    energy(0..W) + energy(tau..tau+W) - 2 * cross-correlation (the correlation by FFT), (n_frames, max_lag + 1)."""
    size = 1 << int(math.ceil(math.log2(FRAME + WINDOW)))
    spectrum = np.fft.rfft(frames, size)  # (n, size/2+1)
    head = np.fft.rfft(frames[:, :WINDOW][:, ::-1], size)  # the window reversed: convolution = correlation
    cross = np.fft.irfft(spectrum * head, size)[:, WINDOW - 1 : WINDOW + max_lag]  # (n, max_lag + 1)
    squares = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    energy_head = squares[:, WINDOW : WINDOW + 1]
    lags = np.arange(max_lag + 1)
    energy_lag = squares[:, lags + WINDOW] - squares[:, lags]
    return np.maximum(energy_head + energy_lag - 2 * cross, 0.0)


def cumulative_mean_normalized(d: np.ndarray) -> np.ndarray:
    """YIN's d'(tau): d(tau) * tau / sum_{j=1..tau} d(j), with d'(0) = 1 (and 1 where the sum is 0: silence)."""
    lags = np.arange(d.shape[1])
    sums = np.cumsum(d[:, 1:], axis=1)
    out = np.ones_like(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 1:] = np.where(sums > 0, d[:, 1:] * lags[1:] / sums, 1.0)
    return out


def f0_track(wav: np.ndarray, sr: int, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """F0 in Hz of each 10 ms frame, NaN where the frame is not voiced (see the module docstring)."""
    x = resample(as_mono(np.asarray(wav, dtype=np.float32)), sr, PITCH_RATE).astype(np.float64)
    if x.size == 0:
        return np.zeros(0)
    frames = _frames(x)
    lag_min, lag_max = int(PITCH_RATE // fmax), int(math.ceil(PITCH_RATE / fmin))
    normalized = cumulative_mean_normalized(difference(frames, lag_max + 1))
    power = np.mean(frames[:, :WINDOW] ** 2, axis=1)
    level = 10 * np.log10(np.maximum(power, 1e-20))
    loud = (level >= FLOOR_DBFS) & (level >= level.max() - ENERGY_GATE_DB)
    f0 = np.full(len(frames), np.nan)
    band = normalized[:, lag_min : lag_max + 1]
    below = band < THRESHOLD
    for i in np.flatnonzero(loud & below.any(axis=1)):
        tau = int(np.argmax(below[i]))  # the first lag under the threshold...
        while tau + 1 < band.shape[1] and band[i, tau + 1] < band[i, tau]:
            tau += 1  # ...taken to the bottom of its dip
        lag = tau + lag_min
        left, mid, right = normalized[i, lag - 1], normalized[i, lag], normalized[i, lag + 1]
        curve = left - 2 * mid + right
        shift = 0.5 * (left - right) / curve if curve > 0 else 0.0
        f0[i] = PITCH_RATE / (lag + float(np.clip(shift, -0.5, 0.5)))
    return f0


def median_f0(wav: np.ndarray, sr: int) -> float:
    """Median F0 (Hz) of the voiced frames; NaN when fewer than ``MIN_VOICED`` frames are voiced."""
    track = f0_track(wav, sr)
    voiced = track[np.isfinite(track)]
    return float(np.median(voiced)) if len(voiced) >= MIN_VOICED else math.nan


def semitones(f0: float, reference: float) -> float:
    """12 log2(f0 / reference): a pitch difference as heard (NaN when either is missing or not positive)."""
    if not (f0 > 0 and reference > 0):  # NaN compares False
        return math.nan
    return 12.0 * math.log2(f0 / reference)
