"""What every judge model needs besides mono float32 at its own rate (:mod:`qwen_tts_lit.audio`): telling silence."""

from __future__ import annotations

import numpy as np

from qwen_tts_lit.audio import as_mono

SILENT_PEAK = 1e-4  # -80 dBFS: below this a clip holds nothing a judge model could hear


def is_silent(wav: np.ndarray) -> bool:
    """True for an empty clip or one whose peak is below -80 dBFS."""
    wav = as_mono(wav)
    return wav.size == 0 or float(np.abs(wav).max()) < SILENT_PEAK
