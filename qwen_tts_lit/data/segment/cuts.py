"""Where to cut: pure functions from a recording's frame tracks (:mod:`~.scan`) to clip boundaries.

1. Speech runs: frames whose silero-vad probability crosses ``threshold`` (leaving speech below ``threshold - 0.15``,
   silero's own hysteresis); gaps shorter than ``min_pause`` are bridged (they are inside a phrase), runs shorter
   than ``MIN_SPEECH_S`` dropped (clicks, breaths).
2. A run longer than a clip may be (``max_seconds`` minus both margins) has no pause to cut in: it is cut at its
   quietest points (the lowest RMS over the 64 ms around each frame boundary), into as few pieces as fit, each at
   least ``min_seconds`` where possible. These edges are *forced*: the clip is flagged for review.
3. Every remaining pause is a cut. A piece shorter than ``min_seconds`` is merged with its neighbour across the
   shorter pause, if that pause is at most ``max_inner_pause`` and the result still fits; what cannot merge stays
   short (and is dropped later as ``too_short``).
4. Each clip keeps ``margin`` of silence before and after its speech, never past the middle of the pause to the
   next clip, so clips never overlap; forced edges get no margin (there is no silence there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qwen_tts_lit.data.segment.scan import FRAME_S

MIN_SPEECH_S = 0.25  # silero-vad's own minimum speech duration
HYSTERESIS = 0.15  # silero-vad's neg_threshold = threshold - 0.15


@dataclass(frozen=True)
class CutSettings:
    """The cutting knobs (``SegmentRequest`` owns their defaults and documents them)."""

    min_seconds: float
    max_seconds: float
    margin_seconds: float
    min_pause_seconds: float
    max_inner_pause_seconds: float
    threshold: float


@dataclass(frozen=True)
class Cut:
    """One clip of a recording, in seconds of the source."""

    start: float
    end: float
    speech_start: float
    speech_end: float
    forced_start: bool = False
    """The clip starts inside speech (a run too long for one clip was cut here)."""
    forced_end: bool = False
    """The clip ends inside speech."""

    @property
    def seconds(self) -> float:
        return self.end - self.start


def speech_runs(prob: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of speech, with silero-vad's hysteresis (enter at ``threshold``, leave below
    ``threshold - 0.15``)."""
    runs, start, leave = [], None, threshold - HYSTERESIS
    for i, p in enumerate(prob.tolist()):
        if start is None and p >= threshold:
            start = i
        elif start is not None and p < leave:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(prob)))
    return runs


def bridge_short_gaps(runs: list[tuple[int, int]], min_gap: int) -> list[tuple[int, int]]:
    """Runs separated by fewer than ``min_gap`` frames joined into one."""
    joined: list[tuple[int, int]] = []
    for start, end in runs:
        if joined and start - joined[-1][1] < min_gap:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def boundary_quietness(level_db: np.ndarray) -> np.ndarray:
    """(F + 1,) mean power (dB) of the two frames around each frame boundary: where a forced cut hurts least."""
    power = np.power(10.0, np.asarray(level_db, dtype=np.float64) / 10)
    padded = np.concatenate([power[:1], power, power[-1:]])
    with np.errstate(divide="ignore"):
        return 10 * np.log10((padded[:-1] + padded[1:]) / 2)


def split_long_run(start: int, end: int, quiet: np.ndarray, max_len: int, min_len: int) -> list[int]:
    """Frame boundaries that cut [start, end) into the fewest pieces of at most ``max_len`` frames, each cut at the
    quietest boundary that still lets the rest fit (and keeps pieces at least ``min_len`` where possible)."""
    cuts, left = [], start
    while end - left > max_len:
        pieces = math.ceil((end - left) / max_len)
        lo = max(left + min_len, end - (pieces - 1) * max_len)
        hi = min(left + max_len, end - (pieces - 1) * min_len)
        if lo > hi:  # min_len cannot be honoured: any cut that lets the rest fit
            lo, hi = max(left + 1, end - (pieces - 1) * max_len), left + max_len
        cut = lo + int(np.argmin(quiet[lo : hi + 1]))  # first of equally quiet boundaries: deterministic
        cuts.append(cut)
        left = cut
    return cuts


@dataclass
class _Piece:
    start: int
    end: int
    forced_start: bool = False
    forced_end: bool = False


def _merge_short(pieces: list[_Piece], min_len: int, max_len: int, max_gap: int) -> list[_Piece]:
    """Merge pieces shorter than ``min_len`` into a neighbour (the one across the shorter pause), shortest first."""
    pieces = list(pieces)
    while True:
        options = []
        for i, piece in enumerate(pieces):
            if piece.end - piece.start >= min_len:
                continue
            for j in (i - 1, i + 1):
                if not 0 <= j < len(pieces):
                    continue
                a, b = (pieces[j], piece) if j < i else (piece, pieces[j])
                gap = b.start - a.end
                if gap <= max_gap and b.end - a.start <= max_len:
                    options.append((piece.end - piece.start, gap, min(i, j)))
        if not options:
            return pieces
        _, _, left = min(options)
        a, b = pieces[left], pieces[left + 1]
        pieces[left : left + 2] = [_Piece(a.start, b.end, a.forced_start, b.forced_end)]


def frames(seconds: float) -> int:
    """Whole 32 ms frames nearest to ``seconds``."""
    return int(round(seconds / FRAME_S))


def min_speech_frames(settings: CutSettings) -> int:
    """Speech frames a clip needs to reach ``min_seconds`` with its two margins."""
    return max(1, math.ceil((settings.min_seconds - 2 * settings.margin_seconds) / FRAME_S - 1e-6))


def plan_cuts(prob: np.ndarray, level_db: np.ndarray, seconds: float, settings: CutSettings) -> list[Cut]:
    """The clips of one recording (see the module docstring), in time order."""
    max_len = int((settings.max_seconds - 2 * settings.margin_seconds) / FRAME_S)  # speech frames a clip may hold
    min_len = min(min_speech_frames(settings), max_len // 2)
    runs = bridge_short_gaps(speech_runs(prob, settings.threshold), max(1, frames(settings.min_pause_seconds)))
    runs = [(a, b) for a, b in runs if b - a >= frames(MIN_SPEECH_S)]
    quiet = boundary_quietness(level_db)
    pieces: list[_Piece] = []
    for a, b in runs:
        bounds = [a, *split_long_run(a, b, quiet, max_len, min_len), b]
        last = len(bounds) - 2
        pieces += [_Piece(s, e, i > 0, i < last) for i, (s, e) in enumerate(zip(bounds, bounds[1:], strict=False))]
    pieces = _merge_short(pieces, min_len, max_len, frames(settings.max_inner_pause_seconds))
    cuts = []
    for i, piece in enumerate(pieces):
        speech_start, speech_end = piece.start * FRAME_S, piece.end * FRAME_S
        before = pieces[i - 1].end * FRAME_S if i else None
        after = pieces[i + 1].start * FRAME_S if i + 1 < len(pieces) else None
        start = speech_start if piece.forced_start else _edge(speech_start, -settings.margin_seconds, before, 0.0)
        end = speech_end if piece.forced_end else _edge(speech_end, settings.margin_seconds, after, seconds)
        cuts.append(Cut(round(start, 3), round(end, 3), round(speech_start, 3), round(speech_end, 3),
                        piece.forced_start, piece.forced_end))  # fmt: skip
    return cuts


def _edge(speech_edge: float, margin: float, neighbour: float | None, limit: float) -> float:
    """``speech_edge + margin``, but not past the middle of the pause to the neighbouring clip nor the file's edge."""
    edge = speech_edge + margin
    if neighbour is not None:
        middle = (speech_edge + neighbour) / 2
        edge = max(edge, middle) if margin < 0 else min(edge, middle)
    return max(edge, limit) if margin < 0 else min(edge, limit)
