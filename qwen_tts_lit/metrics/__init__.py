"""Objective evaluation of synthesized speech: plain Python and torch, no Lightning (usable from a notebook).

Judges (each loads its model once, on first use): :class:`ASR` (faster-whisper; :class:`Transcript` with word time
stamps and confidences), :class:`SpeakerSimilarity` (resemblyzer), :class:`EmbeddingSimilarity` (any speaker encoder,
e.g. the model's own), :class:`SpeechDetector` (silero-vad; :class:`VadStream` over recordings of any length). Pure
functions: WER/CER, articulation rate and pace ratio (the VAD rate ratio as a cross-check), EOS failure rate and the
selection rule. The language rules they read (text normalisation, word counting, which error metric a language is
scored by) are ``qwen_tts_lit.languages``'s.
"""

from qwen_tts_lit.metrics.eos import eos_fail_rate
from qwen_tts_lit.metrics.selection import SelectionRule, aggregate, filter_misses, rank, score, select_best
from qwen_tts_lit.metrics.speaker_sim import (
    EmbeddingSimilarity,
    SpeakerSimilarity,
    cosine_similarity,
    mean_embedding,
)
from qwen_tts_lit.metrics.speech_rate import (
    PAUSE_S,
    SpeechDetector,
    VadStream,
    articulated_seconds,
    bridged,
    pace_ratio,
    rate_ratio,
    span_seconds,
    units_per_second,
    words_per_second,
)
from qwen_tts_lit.metrics.wer import (
    ASR,
    ErrorRate,
    Transcript,
    Word,
    char_error_rate,
    english_only_asr,
    error_rate,
    word_error_rate,
)

__all__ = [
    "ASR",
    "PAUSE_S",
    "EmbeddingSimilarity",
    "ErrorRate",
    "SelectionRule",
    "SpeakerSimilarity",
    "SpeechDetector",
    "Transcript",
    "VadStream",
    "Word",
    "aggregate",
    "articulated_seconds",
    "bridged",
    "char_error_rate",
    "cosine_similarity",
    "eos_fail_rate",
    "english_only_asr",
    "error_rate",
    "filter_misses",
    "mean_embedding",
    "pace_ratio",
    "rank",
    "rate_ratio",
    "span_seconds",
    "score",
    "select_best",
    "units_per_second",
    "word_error_rate",
    "words_per_second",
]
