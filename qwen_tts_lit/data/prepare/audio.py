"""Audio cleaning: pure functions on numpy arrays.

Pipeline (:func:`clean_audio`): downmix to mono, trim leading/trailing silence at the source rate, resample to 24 kHz
with soxr's high-quality filter (librosa's ``soxr_hq``), scale down if the peak exceeds full scale, append trailing
digital silence up to a whole number of codec frames, and quantise to 16-bit PCM.

The length is rounded up to a whole codec frame (1920 samples = 80 ms at 24 kHz) because the 12 Hz speech
tokenizer's last partial frame depends on whatever follows it in a padded batch: with whole frames the codes of a
clip are the same alone or in any batch (tests/test_prepare_codec.py), so cached codes never depend on batching,
and ``num_frames * 1920 == len(audio)`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qwen_tts_lit.audio import as_mono, resample

FRAME_SAMPLES = 1920  # 24000 Hz / 12.5 Hz: audio samples per codec frame
BLOCK_S = 0.01  # silence detection looks at the RMS of 10 ms blocks
SILENT_DB = -200.0  # dBFS reported for digital zero


def block_db(audio: np.ndarray, rate: int) -> np.ndarray:
    """RMS level in dBFS of consecutive 10 ms blocks (the last, partial block included)."""
    block = max(1, round(rate * BLOCK_S))
    padded = np.zeros(-(-len(audio) // block) * block, dtype=np.float64)
    padded[: len(audio)] = audio
    power = (padded.reshape(-1, block) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(power), SILENT_DB)


def peak_db(audio: np.ndarray) -> float:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    return 20 * np.log10(peak) if peak > 0 else SILENT_DB


def speech_bounds(audio: np.ndarray, rate: int, threshold_db: float, margin_s: float) -> tuple[int, int] | None:
    """[start, end) sample range from the first to the last block louder than ``threshold_db``, widened by
    ``margin_s`` on each side (soft consonants start below any threshold). None when no block is that loud."""
    loud = np.flatnonzero(block_db(audio, rate) > threshold_db)
    if len(loud) == 0:
        return None
    block, margin = max(1, round(rate * BLOCK_S)), round(rate * margin_s)
    start = max(0, int(loud[0]) * block - margin)
    end = min(len(audio), (int(loud[-1]) + 1) * block + margin)
    return start, end


def pad_to_frames(audio: np.ndarray, min_pad: int, frame: int = FRAME_SAMPLES) -> np.ndarray:
    """Append at least ``min_pad`` zeros, and as many more as make the length a whole number of ``frame``."""
    total = -(-(len(audio) + min_pad) // frame) * frame
    return np.concatenate([audio, np.zeros(total - len(audio), dtype=audio.dtype)])


def unpadded_length(audio: np.ndarray, min_pad: int, frame: int = FRAME_SAMPLES) -> int:
    """The length before :func:`pad_to_frames` appended its zeros, for a clip whose length was not recorded (prepared
    datasets before the manifest's ``speech_samples``). The padding adds between ``min_pad`` and ``min_pad + frame -
    1`` zeros, so the clip's trailing run of exact zeros, cut up to that most, is cut. Exact when the recording ends
    in room tone; when its own tail is digital zeros (synthetic speech, a gated recorder) up to ``frame - 1`` of
    them (80 ms) go too: silence either way, never speech. Measured on the demo corpus (espeak-ng, digital zeros):
    12 of 48 clips exact, the others 114-1919 samples (5-80 ms of zeros) shorter than recorded."""
    nonzero = np.flatnonzero(audio)
    zeros = len(audio) - (int(nonzero[-1]) + 1 if len(nonzero) else 0)
    return len(audio) - min(zeros, min_pad + frame - 1)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16, the inverse of soundfile's int16 -> float (x / 32768)."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


@dataclass(frozen=True)
class CleanAudio:
    """Cleaned audio and the facts about the cleaning that the report and the x-vector need."""

    pcm: np.ndarray
    """(n,) int16 at the target rate, n a multiple of the codec frame."""
    speech_samples: int
    """Samples before the appended silence (the trimmed speech)."""
    trimmed_s: float
    """Seconds of leading plus trailing silence removed, at the source rate."""
    gain_db: float
    """Gain applied to bring a peak above full scale back to 0 dBFS (0.0 when none was needed)."""


def clean_audio(
    audio: np.ndarray,
    rate: int,
    *,
    target_rate: int = 24000,
    threshold_db: float = -45.0,
    margin_s: float = 0.1,
    trailing_silence_s: float = 1.0,
    frame: int = FRAME_SAMPLES,
) -> CleanAudio | None:
    """The whole audio cleaning for one clip; None when nothing is louder than ``threshold_db`` (a silent clip)."""
    mono = as_mono(audio)
    bounds = speech_bounds(mono, rate, threshold_db, margin_s)
    if bounds is None:
        return None
    speech = resample(mono[bounds[0] : bounds[1]], rate, target_rate)
    peak = float(np.max(np.abs(speech)))
    gain_db = 0.0
    if peak > 1.0:  # float sources, or resampler overshoot on a full-scale source: scale rather than clip
        speech, gain_db = speech / peak, -20 * np.log10(peak)
    padded = pad_to_frames(speech, round(trailing_silence_s * target_rate), frame)
    trimmed_s = (len(mono) - (bounds[1] - bounds[0])) / rate
    return CleanAudio(to_pcm16(padded), len(speech), trimmed_s, gain_db)
