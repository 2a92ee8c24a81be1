"""Writing outputs so that nothing is ever half-written: a temporary sibling, then one rename.

Readers (a resumed ``prepare``, a browser on report.html, ``ablate`` deciding whether a run finished) see the old
file or the new one. No fsync: this guards against kills and Ctrl-C; a power cut may lose the newest files, and every
reader treats a missing file as work still to do.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary sibling; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """A 16-bit PCM WAV file's bytes (int16 input as is; float input clipped to [-1, 1])."""
    import soundfile as sf

    if np.issubdtype(np.asarray(audio).dtype, np.floating):
        audio = np.clip(audio, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: Path | str, audio: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV, written atomically."""
    return write_atomic(path, wav_bytes(audio, rate))
