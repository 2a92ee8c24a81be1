"""Reading recordings of any length in blocks: libsndfile (soundfile) for what it decodes (wav, flac, ogg, mp3),
PyAV (FFmpeg, which faster-whisper already depends on) for the rest (m4a/aac, opus, webm, mp4...).

Only one block is in memory at a time, so an hour-long file costs what a second does. Blocks are float32
(frames, channels) at the file's own rate; :func:`qwen_tts_lit.audio.resample_stream` takes them from there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwen_tts_lit.audio import decoder_quiet
from qwen_tts_lit.errors import UserError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".mp4", ".webm", ".wma")
MAX_ID_CHARS = 100  # the clip id adds "_NNNN"; prepare takes ids of up to 128 characters
BLOCK_SECONDS = 4.0  # large enough that per-block Python overhead vanishes, small enough to be nothing in memory


@dataclass(frozen=True)
class SourceInfo:
    """What a recording is, before it is read."""

    path: Path
    rate: int
    channels: int
    seconds: float
    """Duration from the header (PyAV's may be an estimate; the read is exact)."""
    decoder: str
    """"soundfile" or "pyav"."""


def _soundfile_info(path: Path) -> SourceInfo | None:
    import soundfile as sf

    try:
        with decoder_quiet():
            info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError):
        return None
    if info.samplerate <= 0 or info.channels <= 0:
        return None
    return SourceInfo(path, info.samplerate, info.channels, info.frames / info.samplerate, "soundfile")


def _pyav_info(path: Path) -> SourceInfo | None:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            seconds = float(container.duration / av.time_base) if container.duration else 0.0
            return SourceInfo(path, int(stream.rate), int(stream.channels), seconds, "pyav")
    except (av.FFmpegError, OSError, ValueError):
        return None


def probe(path: Path) -> SourceInfo:
    """Rate, channels and duration of ``path``; UserError naming the file when neither decoder can read it."""
    if not path.is_file():
        raise UserError(f"{path}: not found")
    info = _soundfile_info(path) or _pyav_info(path)
    if info is None:
        raise UserError(f"{path}: cannot decode it as audio (neither libsndfile nor FFmpeg reads it)")
    return info


def _soundfile_blocks(info: SourceInfo, block: int) -> Iterator[np.ndarray]:
    import soundfile as sf

    blocks = sf.blocks(str(info.path), blocksize=block, dtype="float32", always_2d=True)
    while True:
        with decoder_quiet():  # around each read only: the caller draws progress between blocks
            data = next(blocks, None)
        if data is None:
            return
        yield data


def _frame_array(frame, channels: int) -> np.ndarray:
    """One decoded PyAV frame as float32 (samples, channels), whatever its sample format."""
    array = frame.to_ndarray()
    array = array.reshape(channels, -1).T if frame.format.is_planar else array.reshape(-1, channels)
    if np.issubdtype(array.dtype, np.integer):
        array = array / -float(np.iinfo(array.dtype).min)
    return array.astype(np.float32, copy=False)


def _pyav_blocks(info: SourceInfo, block: int) -> Iterator[np.ndarray]:
    import av

    pending, size = [], 0
    with av.open(str(info.path)) as container:
        for frame in container.decode(container.streams.audio[0]):
            channels = len(frame.layout.channels)
            if channels != info.channels or frame.sample_rate != info.rate:
                raise UserError(
                    f"{info.path}: the audio format changes mid-file ({channels} channels at {frame.sample_rate} Hz "
                    f"after {info.channels} at {info.rate}); convert it to one format first"
                )
            pending.append(_frame_array(frame, channels))
            size += len(pending[-1])
            if size >= block:
                yield np.concatenate(pending)
                pending, size = [], 0
    if pending:
        yield np.concatenate(pending)


def read_blocks(info: SourceInfo, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """The whole recording as consecutive float32 (frames, channels) blocks at its own rate."""
    block = max(1, round(block_seconds * info.rate))
    reader = _soundfile_blocks if info.decoder == "soundfile" else _pyav_blocks
    try:
        yield from reader(info, block)
    except UserError:
        raise
    except Exception as error:  # a file that probes but breaks while decoding (truncated, corrupt frames)
        raise UserError(f"{info.path}: decoding failed part-way ({type(error).__name__}: {error})") from error


def find_recordings(inputs: tuple[Path, ...], skip: Path | None = None) -> list[tuple[str, Path]]:
    """(recording id, path) of every recording: files as given, folders searched recursively for audio files (but
    not inside ``skip``, the output folder: its clips are not recordings).

    The id is the file name without extension (for files found in a folder, the path below that folder, ``/`` as
    ``_``), with characters other than ASCII letters, digits, ``-`` and ``.`` replaced by ``_``: it names the clips.
    """
    found: list[tuple[str, Path]] = []
    for given in inputs:
        if given.is_dir():
            files = sorted(p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if skip is not None:
                files = [p for p in files if not p.resolve().is_relative_to(skip.resolve())]
            if not files:
                raise UserError(f"{given}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
            found += [(_recording_id(p.relative_to(given).with_suffix("").as_posix()), p) for p in files]
        elif given.is_file():
            found.append((_recording_id(given.stem), given))
        else:
            raise UserError(f"{given}: not found")
    by_id: dict[str, Path] = {}
    for recording_id, path in found:
        if recording_id in by_id and by_id[recording_id].resolve() != path.resolve():
            raise UserError(f"{by_id[recording_id]} and {path} would both be named {recording_id!r}; rename one")
        by_id.setdefault(recording_id, path)
    return sorted(by_id.items())


def _recording_id(name: str) -> str:
    """An ASCII file-name-safe id (prepare's id rule); a name with no ASCII letter or digit gets a hash of itself."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "_" for c in name.replace("/", "_"))
    cleaned = cleaned.lstrip("._-")[:MAX_ID_CHARS].rstrip("._-")
    if not any(c.isalnum() for c in cleaned):
        return "recording-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return cleaned
