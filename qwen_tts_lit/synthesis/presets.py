"""Sampling presets, the audio constants of the 12 Hz codec, and the frame cap every generation gets.

Talker sampling values are the seed guide's (temperature 0.8, top_p 0.85, top_k 30, repetition_penalty 1.05); the
sub-talker keeps upstream's released defaults. No generation is ever uncapped: the cap comes from the text's
length (:func:`text_frame_cap`) under a ceiling of :data:`MAX_NEW_TOKENS` frames.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

SAMPLE_RATE = 24_000
FRAME_RATE = 12.5  # codec frames per second (12 Hz tokenizer)
SAMPLES_PER_FRAME = 1920  # SAMPLE_RATE / FRAME_RATE
WARMUP_SECONDS = 0.25  # upstream #219: the decoder's first frames are distorted; decode silence first
MAX_NEW_TOKENS = 2048  # the seed guide's ceiling (164 s of audio): no generation is ever uncapped

# Text-derived cap (eval and `synthesize`): frames a slow speaker needs per character, doubled, plus a floor.
CAP_FLOOR_FRAMES = 25  # 2 s, so "Yes." still has room for breath and silence
CAP_FRAMES_PER_CHAR = 1.0  # Latin script at ~12.5 chars/s (slow English is 14-18 chars/s)
CAP_FRAMES_PER_WIDE_CHAR = 3.0  # CJK characters (~4 per second) and digits (one digit reads as a word or more)
CAP_MARGIN = 2.0


@dataclass(frozen=True)
class GenerationPreset:
    """Sampling settings. Talker values are the seed guide's; the sub-talker keeps upstream's released defaults."""

    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.85
    top_k: int = 30
    repetition_penalty: float = 1.05
    subtalker_do_sample: bool = True
    subtalker_temperature: float = 0.9
    subtalker_top_p: float = 1.0
    subtalker_top_k: int = 50
    max_new_tokens: int = MAX_NEW_TOKENS  # ceiling in audio frames; per-text caps never exceed it

    def generate_kwargs(self, max_frames: int) -> dict:
        """Keyword arguments for ``Qwen3TTSForConditionalGeneration.generate`` yielding at most ``max_frames``."""
        return dict(
            do_sample=self.do_sample,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            repetition_penalty=self.repetition_penalty,
            subtalker_dosample=self.subtalker_do_sample,
            subtalker_temperature=self.subtalker_temperature,
            subtalker_top_p=self.subtalker_top_p,
            subtalker_top_k=self.subtalker_top_k,
            max_new_tokens=max_frames + 2,  # +1: the last token never becomes a frame; +1: see past the cap
        )

    def generation_config(self) -> dict:
        """The same settings as an official ``generation_config.json`` (read by ``Qwen3TTSModel``)."""
        kwargs = self.generate_kwargs(self.max_new_tokens)
        kwargs["max_new_tokens"] = self.max_new_tokens  # upstream semantics there: tokens, as the seed guide used
        return kwargs


SEED_GUIDE = GenerationPreset()
GREEDY = GenerationPreset(do_sample=False, subtalker_do_sample=False, repetition_penalty=1.0)


def text_frame_cap(text: str, ceiling: int = MAX_NEW_TOKENS) -> int:
    """A generous frame cap for ``text``: twice what a slow speaker needs, at least 2 s, at most ``ceiling``."""
    weight = sum(CAP_FRAMES_PER_WIDE_CHAR if _is_wide(ch) else CAP_FRAMES_PER_CHAR for ch in text.strip())
    return max(1, min(ceiling, CAP_FLOOR_FRAMES + math.ceil(CAP_MARGIN * weight)))


def _is_wide(ch: str) -> bool:
    """CJK ideographs, kana, hangul and digits: characters read much slower than one Latin letter."""
    if ch.isdigit():
        return True
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))
