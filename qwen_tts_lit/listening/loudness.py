"""Level matching and the low anchor, pure functions of mono float arrays (numpy and scipy only).

Loudness is ITU-R BS.1770-4 integrated loudness (LUFS): K-weighting (a high shelf for the head, a high-pass for
low frequencies), mean square over 400 ms blocks overlapping by 75 %, an absolute gate at -70 LUFS and a relative
gate 10 LU below the mean of the blocks that pass it. It is the measure broadcast uses to make programmes sound
equally loud (EBU R 128), and its gates skip pauses, so a sentence with long silences is not turned up for them:
a plain RMS rule would. Every stimulus is brought to one target (:data:`TARGET_LUFS`, EBU R 128's -23 LUFS) unless
that would clip one of them; then the target is lowered for all (:func:`common_target`), so levels stay matched.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import butter, lfilter, sosfiltfilt

TARGET_LUFS = -23.0  # EBU R 128's programme loudness
PEAK_CEILING_DBFS = -1.0  # headroom left for the 16-bit file and the listener's DAC
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
BLOCK_SECONDS, STEP_SECONDS = 0.4, 0.1  # 400 ms blocks, 75 % overlap
LOW_ANCHOR_HZ = 3500.0  # ITU-R BS.1534-3's low anchor: the reference low-passed at 3.5 kHz
ANCHOR_ORDER = 8  # Butterworth order, run forwards and backwards (zero phase, 16th-order slope: ~96 dB/octave)
SILENCE_BELOW_PEAK_DB = 40.0  # trim: 20 ms frames this far below the loudest frame are silence at the ends
SILENCE_FLOOR_DBFS = -70.0  # a clip whose loudest frame is below this is silence throughout (left whole)
TRIM_MARGIN_SECONDS = 0.1


def k_weighting(rate: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The two biquads of BS.1770's K-weighting at ``rate`` as ((b, a) shelf, (b, a) high-pass). BS.1770 tabulates
    them at 48 kHz only; these are the analogue prototypes behind that table (libebur128's derivation), which give
    its coefficients at 48 kHz to 1e-8 and the same curve at any other rate."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    shelf_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    high_b = np.array([1.0, -2.0, 1.0])
    high_a = np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return (shelf_b, shelf_a), (high_b, high_a)


def integrated_loudness(wav: np.ndarray, rate: int) -> float:
    """BS.1770-4 integrated loudness of a mono signal in LUFS; -inf when no block passes the absolute gate
    (silence, or a clip shorter than one 400 ms block)."""
    (sb, sa), (hb, ha) = k_weighting(rate)
    weighted = lfilter(hb, ha, lfilter(sb, sa, np.asarray(wav, dtype=np.float64)))
    size, step = round(BLOCK_SECONDS * rate), round(STEP_SECONDS * rate)
    if len(weighted) < size:
        return -math.inf
    squares = np.concatenate([[0.0], np.cumsum(weighted**2)])
    starts = np.arange(0, len(weighted) - size + 1, step)
    power = (squares[starts + size] - squares[starts]) / size  # mean square of each block
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10 * np.log10(power)
    kept = power[blocks > ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return -math.inf
    relative = -0.691 + 10 * math.log10(kept.mean()) + RELATIVE_GATE_LU
    kept = power[(blocks > ABSOLUTE_GATE_LUFS) & (blocks > relative)]
    return -0.691 + 10 * math.log10(kept.mean())


def peak_dbfs(wav: np.ndarray) -> float:
    """The sample peak in dBFS (-inf for silence)."""
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def common_target(measured: list[tuple[float, float]], target: float = TARGET_LUFS) -> float:
    """The loudness every stimulus is brought to, from each one's (loudness, peak dBFS): ``target``, or lower when
    bringing some stimulus there would push its peak above :data:`PEAK_CEILING_DBFS` (a gain of g dB moves both by
    g, so a stimulus allows at most loudness - peak + ceiling). Silent stimuli (-inf) do not count."""
    allowed = [loudness - peak + PEAK_CEILING_DBFS for loudness, peak in measured if math.isfinite(loudness)]
    return min([target, *allowed])


def gain_to(wav: np.ndarray, loudness: float, target: float) -> np.ndarray:
    """``wav`` scaled from ``loudness`` to ``target`` LUFS; a silent one (-inf) unchanged."""
    if not math.isfinite(loudness):
        return np.asarray(wav, dtype=np.float32)
    return (np.asarray(wav, dtype=np.float64) * 10 ** ((target - loudness) / 20)).astype(np.float32)


def trim_silence(wav: np.ndarray, rate: int) -> np.ndarray:
    """``wav`` without the silence at its ends (20 ms frames more than :data:`SILENCE_BELOW_PEAK_DB` below the
    loudest frame), keeping :data:`TRIM_MARGIN_SECONDS` on each side. Every stimulus is trimmed by the same rule:
    prepared recordings carry about a second of appended silence and a synthesized clip may carry none, which
    would tell a listener which is which. The threshold is relative, so a clip is cut at the same samples whatever
    its gain (the level matching comes after). A clip whose loudest frame is below :data:`SILENCE_FLOOR_DBFS` is
    returned whole."""
    wav = np.asarray(wav, dtype=np.float32)
    frame = max(1, round(0.02 * rate))
    count = len(wav) // frame
    if count == 0:
        return wav
    rms = np.sqrt(np.mean(wav[: count * frame].astype(np.float64).reshape(count, frame) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        level = 20 * np.log10(rms)
    if not level.max() > SILENCE_FLOOR_DBFS:
        return wav
    active = np.flatnonzero(level > level.max() - SILENCE_BELOW_PEAK_DB)
    margin = round(TRIM_MARGIN_SECONDS * rate)
    start = max(0, active[0] * frame - margin)
    end = min(len(wav), (active[-1] + 1) * frame + margin)
    return wav[start:end]


def low_anchor(wav: np.ndarray, rate: int, cutoff: float = LOW_ANCHOR_HZ) -> np.ndarray:
    """BS.1534-3's low anchor: ``wav`` low-passed at ``cutoff`` Hz (zero-phase Butterworth, so it is not shifted
    in time against the reference)."""
    if cutoff >= rate / 2:
        return np.asarray(wav, dtype=np.float32)
    sos = butter(ANCHOR_ORDER, cutoff, btype="low", fs=rate, output="sos")
    padlen = min(len(wav) - 1, 3 * (2 * len(sos) + 1))  # a clip shorter than scipy's default padding still filters
    return sosfiltfilt(sos, np.asarray(wav, dtype=np.float64), padlen=max(padlen, 0)).astype(np.float32)
