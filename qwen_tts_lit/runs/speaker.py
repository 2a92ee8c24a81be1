"""The speaker x-vector file: one float32 tensor ``xvector`` (D,) in safetensors, plus string metadata.

The same file sits in a prepared dataset (computed once by ``prepare``), in every run folder (what the run trained
with) and in an adapter export. It is written with a fixed key order, so the same vector gives the same bytes in
every process (``safetensors``' own writer orders metadata by a hash map, which broke byte-identical resumes).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic

SPEAKER_FILE = "speaker.safetensors"
TENSOR = "xvector"


def speaker_bytes(xvector, metadata: dict[str, str] | None = None) -> bytes:
    """The file's bytes: u64 header length, JSON header (padded with spaces to 8 bytes), little-endian data."""
    array = np.asarray(xvector.detach().float().cpu() if hasattr(xvector, "detach") else xvector)
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    entry = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [0, len(data)]}
    header = {"__metadata__": dict(sorted((metadata or {}).items())), TENSOR: entry}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data


def write_speaker(folder: Path, xvector, metadata: dict[str, str] | None = None) -> Path:
    """Write ``folder/speaker.safetensors`` atomically; returns its path."""
    return write_atomic(Path(folder) / SPEAKER_FILE, speaker_bytes(xvector, metadata))


def speaker_path(folder: Path) -> Path:
    return Path(folder) / SPEAKER_FILE


def read_speaker(folder: Path, what: str = "folder"):
    """The x-vector of ``folder`` as a float32 torch tensor (D,); UserError naming the file when it is missing."""
    from safetensors.torch import load_file

    path = speaker_path(folder)
    if not path.is_file():
        raise UserError(f"{path}: the speaker x-vector is missing from this {what}")
    return load_file(str(path))[TENSOR].float()
