"""The stimulus files of a test: each source clip decoded, made mono at one sample rate, trimmed of the silence at
its ends, made into the low anchor where the plan says so, brought to one loudness (:mod:`.loudness`) and written
as a bare 16-bit PCM WAV: the RIFF header, ``fmt `` and ``data`` chunks only, no LIST/INFO or other metadata a
source file might carry (an encoder name, a title, a date), so the bytes tell nothing but the sound."""

from __future__ import annotations

import io
import math
import os
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_tts_lit.audio import resample
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.listening import loudness
from qwen_tts_lit.listening.plan import ANCHOR, Stimulus

RATE = 24_000  # Qwen3-TTS's output rate; a real recording at another rate is resampled to it
FIXED_TIME = 946_684_800  # 2000-01-01: every stimulus gets this modification time, so times tell no writing order


@dataclass(frozen=True)
class Levels:
    """What the level matching did: the common target, whether clipping lowered it, the silent stimuli."""

    target_lufs: float
    lowered: bool
    silent: tuple[str, ...]
    measured: dict[str, float | None]  # file -> loudness before the gain (LUFS; None when silent)


def plain_wav(wav: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV bytes with nothing but the ``fmt `` and ``data`` chunks (Python's ``wave`` writes
    exactly those)."""
    pcm = np.clip(np.round(np.asarray(wav, dtype=np.float64) * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def read_clip(path: Path) -> np.ndarray:
    """A source clip as mono float32 at :data:`RATE`; UserError naming an unreadable file."""
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise UserError(f"{path}: cannot read the audio ({error})") from error
    return resample(wav, rate, RATE)


def processed(path: Path, anchor: bool) -> np.ndarray:
    """One source clip trimmed (and low-passed for the anchor), before the level matching."""
    wav = loudness.trim_silence(read_clip(path), RATE)
    return loudness.low_anchor(wav, RATE) if anchor else wav


def write_stimuli(
    stimuli: Iterable[Stimulus],
    source_of: Callable[[Stimulus], Path],
    folder: Path,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
    target: float = loudness.TARGET_LUFS,
) -> Levels:
    """Write every stimulus into ``folder`` (its ``file`` name) at one loudness. ``source_of`` gives a stimulus's
    source clip (the anchor: the real recording it is made from). Files are written in name order (random with
    respect to systems) and all get one modification time."""
    stimuli = sorted(stimuli, key=lambda stimulus: stimulus.file)
    clips: dict[tuple[Path, bool], np.ndarray] = {}
    for stimulus in progress(stimuli):
        key = (source_of(stimulus), stimulus.system == ANCHOR)
        if key not in clips:
            clips[key] = processed(*key)
    measured = {key: (loudness.integrated_loudness(wav, RATE), loudness.peak_dbfs(wav)) for key, wav in clips.items()}
    level = loudness.common_target(list(measured.values()), target)
    silent = []
    for stimulus in stimuli:
        key = (source_of(stimulus), stimulus.system == ANCHOR)
        if not math.isfinite(measured[key][0]):
            silent.append(stimulus.file)
        path = write_atomic(
            folder / stimulus.file, plain_wav(loudness.gain_to(clips[key], measured[key][0], level), RATE)
        )
        os.utime(path, (FIXED_TIME, FIXED_TIME))
    before = {}
    for stimulus in stimuli:
        value = measured[(source_of(stimulus), stimulus.system == ANCHOR)][0]
        before[stimulus.file] = round(value, 2) if math.isfinite(value) else None
    return Levels(round(level, 2), level < target, tuple(silent), before)
