"""Pass 2 over a recording: the planned clips cut out of one streamed read at 24 kHz.

The source is resampled once, straight to the codec's 24 kHz (the 16 kHz analysis stream of :mod:`~.scan` is not
reused for audio), and each clip's samples are handed on as soon as they are complete: memory holds one clip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from qwen_tts_lit.audio import resample_stream
from qwen_tts_lit.data.segment.cuts import Cut
from qwen_tts_lit.data.segment.decode import SourceInfo, read_blocks
from qwen_tts_lit.files import wav_bytes

CLIP_RATE = 24000  # the 12 Hz codec's input rate: prepare then has nothing to resample


def clip_samples(cut: Cut, rate: int = CLIP_RATE) -> tuple[int, int]:
    """[first, last) sample of ``cut`` at ``rate``."""
    return round(cut.start * rate), round(cut.end * rate)


def cut_clips(
    info: SourceInfo, cuts: list[Cut], advance: Callable[[float], None] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(index in ``cuts``, float32 audio at 24 kHz) of each clip, in order, from one read of the recording."""

    def source_blocks() -> Iterator[np.ndarray]:
        for block in read_blocks(info):
            if advance is not None:
                advance(len(block) / info.rate)
            yield block

    if not cuts:
        return  # nothing to cut: no need to read the recording again
    spans = [clip_samples(cut) for cut in cuts]
    index, position, parts = 0, 0, []
    for block in resample_stream(source_blocks(), info.rate, CLIP_RATE):
        block_end = position + len(block)
        while index < len(spans):
            first, last = spans[index]
            if first >= block_end:
                break
            parts.append(block[max(0, first - position) : max(0, min(last, block_end) - position)])
            if last > block_end:
                break
            yield index, np.concatenate(parts)
            index, parts = index + 1, []
        position = block_end
    if index < len(spans):  # the last clip reaches the end of the stream (rounding of the end time)
        yield index, np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def clip_wav(audio: np.ndarray) -> bytes:
    """16-bit PCM WAV bytes of a clip; a float peak above full scale (mp3 decoders overshoot) is scaled down to it,
    not clipped."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return wav_bytes(audio / peak if peak > 1.0 else audio, CLIP_RATE)
