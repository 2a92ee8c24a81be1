"""librosa.filters.mel in numpy: librosa 0.11's definition (Slaney mel scale, Slaney area normalisation)."""

from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 66.67 Hz per mel
_MIN_LOG_HZ = 1000.0
_LOGSTEP = np.log(6.4) / 27.0  # log-spaced above 1 kHz


def hz_to_mel(frequencies):
    frequencies = np.asanyarray(frequencies, dtype=np.float64)
    mels = frequencies / _F_SP
    log_region = frequencies >= _MIN_LOG_HZ
    return np.where(log_region, _MIN_LOG_HZ / _F_SP + np.log(np.maximum(frequencies, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP,
                    mels)  # fmt: skip


def mel_to_hz(mels):
    mels = np.asanyarray(mels, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(mels >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - min_log_mel)), _F_SP * mels)


def mel(*, sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None, htk: bool = False,
        norm: str | None = "slaney", dtype=np.float32) -> np.ndarray:  # fmt: skip
    """(n_mels, 1 + n_fft // 2) triangular mel filters, as ``librosa.filters.mel`` with its defaults."""
    if htk or norm not in ("slaney", None):
        raise RuntimeError("librosa stand-in: only the Slaney mel scale with Slaney or no normalisation")
    fmax = float(sr) / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(dtype)
