"""Audio plumbing shared by ``prepare`` and the evaluation judges: mono float32, and one resampler (soxr's high
quality filter, the same as librosa's ``res_type='soxr_hq'``), so a clip is resampled the same way everywhere."""

from __future__ import annotations

import numpy as np


def as_mono(wav: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) of any dtype -> (n,) float32: channels averaged, integer PCM scaled to [-1, 1]."""
    wav = np.asarray(wav)
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav / -float(np.iinfo(wav.dtype).min)  # int16: / 32768
    wav = wav.astype(np.float32, copy=False)
    return wav.mean(axis=1, dtype=np.float32) if wav.ndim == 2 else wav


def resample(wav: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 at ``target_rate``."""
    mono = as_mono(wav)
    if rate == target_rate:
        return mono
    import soxr

    return soxr.resample(mono, rate, target_rate, quality="HQ").astype(np.float32, copy=False)
