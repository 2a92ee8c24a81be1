"""Long text -> chunks the model speaks reliably, and chunk waveforms -> one waveform (pure functions).

Chunks end at sentence boundaries where they can: sentences are packed greedily up to ``max_chars``; a sentence
longer than that is cut at clause marks, then at spaces, then (a run of unbroken text) every ``max_chars``.
Paragraphs (blank lines) always end a chunk. Whitespace is normalised; no other character is added or lost.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

DEFAULT_CHUNK_CHARS = 200  # ~12-15 s of English: far from the decoder's 300-frame chunking and the token cap
PAUSE_SECONDS = 0.3  # silence between chunks, about a sentence pause

_CLOSERS = re.escape("\"'”’)]}»」』）")  # closing quotes and brackets stay with their sentence
SENTENCE = re.compile(rf"[.!?…]+[{_CLOSERS}]*\s+|[。！？；]+[{_CLOSERS}]*\s*")
CLAUSE = re.compile(rf"[,;:—–]+[{_CLOSERS}]*\s+|[，、；：]+\s*")
SPACE = re.compile(r"\s+")
LEVELS = (SENTENCE, CLAUSE, SPACE)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with whitespace runs collapsed to one space."""
    return [p for p in (" ".join(block.split()) for block in re.split(r"\n\s*\n", text)) if p]


def split_text(text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """Chunks of at most ``max_chars`` characters, cut at the strongest boundary available."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    return [chunk for paragraph in paragraphs(text) for chunk in _split(paragraph, max_chars, 0)]


def _pieces(text: str, boundary: re.Pattern) -> list[str]:
    """``text`` cut after each boundary match; the pieces concatenate back to ``text``."""
    ends = [m.end() for m in boundary.finditer(text) if 0 < m.end() < len(text)]
    starts = [0, *ends]
    return [text[a:b] for a, b in zip(starts, [*ends, len(text)], strict=True)]


def _split(text: str, max_chars: int, level: int) -> list[str]:
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    if level == len(LEVELS):
        return [c for c in (text[i : i + max_chars].strip() for i in range(0, len(text), max_chars)) if c]
    chunks, current = [], ""
    for piece in _pieces(text, LEVELS[level]):
        if len(piece.strip()) > max_chars:
            chunks += [current.strip()] if current.strip() else []
            chunks += _split(piece, max_chars, level + 1)
            current = ""
        elif len((current + piece).strip()) <= max_chars:
            current += piece
        else:
            chunks += [current.strip()] if current.strip() else []
            current = piece
    chunks += [current.strip()] if current.strip() else []
    return chunks


def join_with_pauses(wavs: Sequence[np.ndarray], pause_samples: int) -> np.ndarray:
    """Concatenate waveforms with ``pause_samples`` of silence between consecutive ones (none at the ends)."""
    if not wavs:
        return np.zeros(0, dtype=np.float32)
    pause = np.zeros(pause_samples, dtype=np.float32)
    parts = [wavs[0]]
    for wav in wavs[1:]:
        parts += [pause, wav]
    return np.concatenate(parts).astype(np.float32, copy=False)
