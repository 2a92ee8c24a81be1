"""Audio plumbing shared by ``prepare`` and the evaluation judges: mono float32, and one resampler (soxr's high
quality filter, the same as librosa's ``res_type='soxr_hq'``), so a clip is resampled the same way everywhere.
:func:`resample_stream` is the same filter over a stream of blocks (hours of audio in one block's memory); its output
equals :func:`resample` of the whole signal. :func:`decoder_quiet` keeps a C decoder's own complaints off the
terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np


@contextmanager
def decoder_quiet() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null while a native decoder call runs: libsndfile's mpg123 prints lines like
    ``[src/libmpg123/layer3.c:...] error: part2_3_length (1856) too large for available bit count`` straight to the
    process's stderr, below Python, for frames it then decodes anyway (failures still reach us as exceptions). Wrap
    only the call itself, never code that prints: what it writes to stderr in the meantime is lost."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (a pythonw process, a closed stderr): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def as_mono(wav: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) of any dtype -> (n,) float32: channels averaged, integer PCM scaled to [-1, 1]."""
    wav = np.asarray(wav)
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav / -float(np.iinfo(wav.dtype).min)  # int16: / 32768
    wav = wav.astype(np.float32, copy=False)
    return wav.mean(axis=1, dtype=np.float32) if wav.ndim == 2 else wav


def resample(wav: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 at ``target_rate``."""
    mono = as_mono(wav)
    if rate == target_rate:
        return mono
    import soxr

    return soxr.resample(mono, rate, target_rate, quality="HQ").astype(np.float32, copy=False)


def resample_stream(blocks: Iterable[np.ndarray], rate: int, target_rate: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``target_rate`` from blocks of any size at ``rate`` ((n,) or (n, channels)): the filter
    of :func:`resample`, its state carried from block to block, so the concatenated output is the one-shot result."""
    if rate == target_rate:
        yield from (as_mono(block) for block in blocks)
        return
    import soxr

    stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        out = stream.resample_chunk(as_mono(block))
        if out.size:
            yield out
    tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if tail.size:
        yield tail
