"""The audio plumbing every judge model shares: mono float32 at the rate the model was trained on."""

from __future__ import annotations

import numpy as np

from qwen_tts_lit.data import audio_clean

SILENT_PEAK = 1e-4  # -80 dBFS: below this a clip holds nothing a judge model could hear


def as_mono(wav: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) of any dtype -> (n,) float32 (integer PCM scaled to [-1, 1])."""
    wav = np.asarray(wav)
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav / -float(np.iinfo(wav.dtype).min)  # int16: / 32768
    wav = wav.astype(np.float32, copy=False)
    return wav.mean(axis=1, dtype=np.float32) if wav.ndim == 2 else wav


def resample(wav: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Mono float32 at ``target_sr``, with the resampler ``prepare`` uses."""
    return audio_clean.resample(as_mono(wav), sr, target_sr)


def is_silent(wav: np.ndarray) -> bool:
    """True for an empty clip or one whose peak is below -80 dBFS."""
    wav = as_mono(wav)
    return wav.size == 0 or float(np.abs(wav).max()) < SILENT_PEAK
