"""The speaker x-vector file (``speaker.safetensors``), in safetensors plus string metadata: one voice or several;
and the speaker ids it holds (how a name is stored, which names are valid).

- One voice (format ``qwen_tts_lit.speaker/v1``): one float32 tensor ``xvector`` (D,).
- Several voices (format ``qwen_tts_lit.speaker/v2``): one float32 tensor ``xvectors`` (S, D), row i the x-vector
  of the i-th name of the metadata ``speakers`` (a JSON list). A one-voice file reads as it always did.

The same file sits in a prepared dataset (computed once by ``prepare``), in every run folder (what the run trained
with) and in an adapter export, so data, train, export and synthesis all read or write it: it sits in the lowest
layer (beside ``files``, whose atomic write it uses) rather than in any one of them. It is written with a fixed key
order, so the same vector gives the same bytes in every process (``safetensors``' own writer orders metadata by a
hash map, which broke byte-identical resumes).
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path

import numpy as np

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic

SPEAKER_FILE = "speaker.safetensors"
TENSOR = "xvector"
SPEAKERS_TENSOR = "xvectors"  # (S, D): several voices, in the order of the metadata "speakers"
SPEAKERS_FORMAT = "qwen_tts_lit.speaker/v2"
SPEAKER_NAME_MAX_CHARS = 64
SPEAKER_NAME_PUNCTUATION = "_-"


def _array(xvector) -> np.ndarray:
    return np.asarray(xvector.detach().float().cpu() if hasattr(xvector, "detach") else xvector)


def speaker_bytes(xvector, metadata: dict[str, str] | None = None, tensor: str = TENSOR) -> bytes:
    """The file's bytes: u64 header length, JSON header (padded with spaces to 8 bytes), little-endian data."""
    array = _array(xvector)
    data = np.ascontiguousarray(array, dtype="<f4").tobytes()
    entry = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [0, len(data)]}
    header = {"__metadata__": dict(sorted((metadata or {}).items())), tensor: entry}
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + data


def speakers_bytes(xvectors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """A file of several voices: ``xvectors`` maps name -> (D,) in the order the rows are written."""
    names = list(xvectors)
    table = np.stack([_array(xvectors[name]) for name in names])  # (S, D)
    metadata = {**(metadata or {}), "format": SPEAKERS_FORMAT, "speakers": json.dumps(names, ensure_ascii=False)}
    return speaker_bytes(table, metadata, SPEAKERS_TENSOR)


def write_speaker(folder: Path, xvector, metadata: dict[str, str] | None = None) -> Path:
    """Write ``folder/speaker.safetensors`` atomically; returns its path."""
    return write_atomic(Path(folder) / SPEAKER_FILE, speaker_bytes(xvector, metadata))


def write_speakers(folder: Path, xvectors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Write a file of several voices (name -> (D,)) atomically; returns its path."""
    return write_atomic(Path(folder) / SPEAKER_FILE, speakers_bytes(xvectors, metadata))


def speaker_path(folder: Path) -> Path:
    return Path(folder) / SPEAKER_FILE


def read_voices(folder: Path, what: str = "folder") -> tuple[object | None, dict]:
    """(x-vector (D,) of a one-voice file or None, {name: (D,)} of a several-voices file or {}), float32 torch."""
    from safetensors import safe_open

    path = speaker_path(folder)
    if not path.is_file():
        raise UserError(f"{path}: the speaker x-vector is missing from this {what}")
    with safe_open(str(path), "pt") as handle:
        if SPEAKERS_TENSOR not in handle.keys():
            return handle.get_tensor(TENSOR).float(), {}
        names = json.loads((handle.metadata() or {})["speakers"])
        table = handle.get_tensor(SPEAKERS_TENSOR).float()  # (S, D)
    return None, {name: table[i] for i, name in enumerate(names)}


def pick_voice(xvector, voices: dict, speaker: str | None, where: Path):
    """The x-vector to speak with: a one-voice folder's, or the named one of a folder of several speakers (looked up
    lower-cased, as upstream looks up a custom_voice speaker)."""
    if not voices:
        if speaker is not None:
            raise UserError(f"--speaker {speaker}: {where} holds one voice; leave --speaker out")
        return xvector
    if speaker is None or speaker.lower() not in voices:
        given = "" if speaker is None else f" ({speaker!r} is not one of them)"
        raise UserError(f"{where}: speakers {', '.join(voices)}{given}; pick one with --speaker")
    return voices[speaker.lower()]


def run_speakers(folder: Path) -> list[str]:
    """The speakers a folder's x-vector file names ([] for one voice, or when the folder has no such file)."""
    if not speaker_path(folder).is_file():
        return []
    return list(read_voices(folder)[1])


def read_speaker(folder: Path, what: str = "folder"):
    """The x-vector of a one-voice ``folder`` as a float32 torch tensor (D,); UserError naming the file when it is
    missing or holds several voices."""
    xvector, speakers = read_voices(folder, what)
    if xvector is None:
        raise UserError(f"{speaker_path(folder)}: holds {len(speakers)} voices ({', '.join(speakers)}); pick one")
    return xvector


def speaker_key(name: str) -> str:
    """The form a speaker name is stored in: NFC, lower-cased (upstream looks speakers up by ``name.lower()``)."""
    return unicodedata.normalize("NFC", name).lower()


def speaker_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a speaker id of a custom_voice checkpoint, or None: letters and digits of any script,
    then also '_' and '-', lower-case (the lookup lower-cases), at most 64 characters."""

    def allowed(char: str, first: bool) -> bool:
        category = unicodedata.category(char)
        return category[0] in "LN" or (not first and (category[0] == "M" or char in SPEAKER_NAME_PUNCTUATION))

    if not name or not all(allowed(c, i == 0) for i, c in enumerate(name)) or len(name) > SPEAKER_NAME_MAX_CHARS:
        return f"use letters and digits of any script, then also '_' or '-' (at most {SPEAKER_NAME_MAX_CHARS})"
    if name != speaker_key(name):
        return f"use the lower-case form {speaker_key(name)!r} (speakers are looked up lower-cased)"
    return None
