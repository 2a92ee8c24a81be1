"""Pass 1 over a recording: every 32 ms frame's speech probability, level and clipped samples, in one streamed read.

The recording is decoded in blocks, resampled once to 16 kHz (silero-vad's rate) and fed to a :class:`VadStream`;
full-scale samples are counted at the source rate, before any filter smooths them. What is kept is three small
arrays (12 bytes per 32 ms: 1.3 MB for an hour), never the audio, so memory does not grow with the recording.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from qwen_tts_lit.audio import resample_stream
from qwen_tts_lit.data.segment.decode import SourceInfo, read_blocks
from qwen_tts_lit.metrics.speech_rate import VAD_FRAME, VAD_RATE, VadStream

FRAME_S = VAD_FRAME / VAD_RATE  # 0.032 s: the time step of everything the cutting sees
CLIP_LEVEL = 0.999  # a source sample at least this loud sits at full scale (clipped, or about to be)
SILENT_DB = -200.0  # level reported for digital zero
SCAN_VERSION = 1  # bump when what a scan holds changes: cached scans are then redone


@dataclass(frozen=True)
class Scan:
    """The frame tracks of one recording (frame i covers [i * 32 ms, (i + 1) * 32 ms) of the source)."""

    rate: int
    """Source sample rate."""
    samples: int
    """Source samples per channel."""
    speech_prob: np.ndarray
    """(F,) float32 silero-vad speech probability."""
    level_db: np.ndarray
    """(F,) float32 RMS level (dBFS) of the frame at 16 kHz."""
    clipped: np.ndarray
    """(F,) int32 source samples in the frame at full scale on any channel."""

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def to_bytes(self, digest: str) -> bytes:
        """A JSON header line (rate, samples, version, the source file's digest, frame count) and the three arrays'
        bytes: the same scan always gives the same bytes (an .npz would stamp the time)."""
        header = {"version": SCAN_VERSION, "digest": digest, "rate": self.rate, "samples": self.samples,
                  "frames": len(self.speech_prob)}  # fmt: skip
        arrays = (self.speech_prob.astype("<f4"), self.level_db.astype("<f4"), self.clipped.astype("<i4"))
        return (json.dumps(header) + "\n").encode() + b"".join(a.tobytes() for a in arrays)

    @staticmethod
    def from_bytes(data: bytes, digest: str) -> Scan | None:
        """The scan stored by :meth:`to_bytes`, or None when it is of another file, another version or damaged."""
        try:
            line, body = data.split(b"\n", 1)
            header = json.loads(line)
            if header["version"] != SCAN_VERSION or header["digest"] != digest or len(body) != 12 * header["frames"]:
                return None
            n = header["frames"]
            prob, level, clipped = (
                np.frombuffer(body, dtype, n, 4 * n * i) for i, dtype in enumerate(("<f4", "<f4", "<i4"))
            )
        except (ValueError, KeyError, TypeError):
            return None
        return Scan(header["rate"], header["samples"], prob.astype(np.float32), level.astype(np.float32),
                    clipped.astype(np.int32))  # fmt: skip


def file_digest(path, block: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in blocks: what a cached scan is valid for."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def frame_db(frames: np.ndarray) -> np.ndarray:
    """(k, n) frames -> (k,) RMS level in dBFS (``SILENT_DB`` for digital zero)."""
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    with np.errstate(divide="ignore"):
        return np.maximum(10 * np.log10(power), SILENT_DB).astype(np.float32)


def scan(info: SourceInfo, vad: VadStream, advance: Callable[[float], None] | None = None) -> Scan:
    """Read ``info``'s recording once; ``advance(seconds)`` is called as source audio is consumed (progress)."""
    clipped_runs: list[tuple[int, np.ndarray]] = []  # (first frame, counts): only where clipping happened
    samples = 0

    def source_blocks() -> Iterator[np.ndarray]:
        nonlocal samples
        for block in read_blocks(info):
            full = np.flatnonzero(np.abs(block).max(axis=1) >= CLIP_LEVEL)
            if full.size:
                frames = (samples + full) * VAD_RATE // (info.rate * VAD_FRAME)
                clipped_runs.append((int(frames[0]), np.bincount(frames - frames[0])))
            samples += len(block)
            if advance is not None:
                advance(len(block) / info.rate)
            yield block

    probabilities, levels = [], []
    pending = np.zeros(0, dtype=np.float32)
    for block in resample_stream(source_blocks(), info.rate, VAD_RATE):
        pending = np.concatenate([pending, block])
        whole = len(pending) // VAD_FRAME * VAD_FRAME
        if whole:
            frames = pending[:whole].reshape(-1, VAD_FRAME)
            probabilities.append(vad(frames))
            levels.append(frame_db(frames))
            pending = pending[whole:]
    if pending.size:  # the last partial frame, zero-padded as silero-vad pads it
        frames = np.concatenate([pending, np.zeros(VAD_FRAME - len(pending), dtype=np.float32)])[None]
        probabilities.append(vad(frames))
        levels.append(frame_db(frames))
    speech_prob = np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)
    clipped = np.zeros(len(speech_prob), dtype=np.int32)
    for first, counts in clipped_runs:
        end = min(len(clipped), first + len(counts))
        if first < end:
            clipped[first:end] += counts[: end - first].astype(np.int32)
    return Scan(info.rate, samples, speech_prob, np.concatenate(levels) if levels else speech_prob.copy(), clipped)


def span_facts(scan: Scan, start: float, end: float, threshold: float) -> dict:
    """What the frame tracks say about [start, end) s: speech seconds (frames at or above ``threshold``), the RMS
    level of those frames (of all frames when none is speech) and the fraction of source samples at full scale."""
    first, last = int(start / FRAME_S), max(int(start / FRAME_S) + 1, int(np.ceil(end / FRAME_S)))
    prob, level = scan.speech_prob[first:last], scan.level_db[first:last].astype(np.float64)
    speech = prob >= threshold
    chosen = level[speech] if speech.any() else level
    power = float(np.mean(np.power(10.0, chosen / 10))) if chosen.size else 0.0
    samples = max(1.0, (end - start) * scan.rate)
    return {
        "speech_seconds": round(float(speech.sum()) * FRAME_S, 3),
        "level_db": round(10 * np.log10(power), 2) if power > 0 else SILENT_DB,
        "clipped_fraction": round(float(scan.clipped[first:last].sum()) / samples, 6),
    }
