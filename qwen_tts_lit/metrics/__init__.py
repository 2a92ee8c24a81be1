"""Objective evaluation of synthesized speech: plain Python and torch, no Lightning (usable from a notebook).

Judges (each loads its model once, on first use): :class:`ASR` (faster-whisper; :class:`Transcript` with word time
stamps and confidences), :class:`SpeakerSimilarity` (resemblyzer), :class:`EmbeddingSimilarity` (any speaker encoder,
e.g. the model's own), :class:`SpeechDetector` (silero-vad; :class:`VadStream` over recordings of any length),
:class:`DNSMOS` (naturalness; any other plugs in as a :class:`NaturalnessJudge`). Pure functions: WER/CER,
articulation rate and pace ratio (the VAD rate ratio as a cross-check), pitch (median F0 of voiced frames, YIN),
the active-speech level (gated RMS), the instruction-retention probe's effects, EOS failure rate and the selection
rule. The language rules they read (text normalisation, word counting, which error metric a language is scored by) are
``qwen_tts_lit.languages``'s.
"""

import importlib

# Each name from the module that owns it, imported on first use (PEP 562): the judges load torch, while the settings
# and the rule are read by the command line's parsers, whose --help stays instant.
_OWNERS = {
    "ASR": "qwen_tts_lit.metrics.asr",
    "DNSMOS": "qwen_tts_lit.metrics.dnsmos",
    "EmbeddingSimilarity": "qwen_tts_lit.metrics.speaker_sim",
    "NaturalnessJudge": "qwen_tts_lit.metrics.dnsmos",
    "PAUSE_S": "qwen_tts_lit.metrics.speech_rate",
    "SelectionRule": "qwen_tts_lit.metrics.selection",
    "SpeakerSimilarity": "qwen_tts_lit.metrics.speaker_sim",
    "SpeechDetector": "qwen_tts_lit.metrics.speech_rate",
    "Transcript": "qwen_tts_lit.metrics.asr",
    "VadStream": "qwen_tts_lit.metrics.speech_rate",
    "Word": "qwen_tts_lit.metrics.asr",
    "active_level_db": "qwen_tts_lit.metrics.level",
    "aggregate": "qwen_tts_lit.metrics.selection",
    "articulated_seconds": "qwen_tts_lit.metrics.speech_rate",
    "bridged": "qwen_tts_lit.metrics.speech_rate",
    "char_error_rate": "qwen_tts_lit.metrics.error_rates",
    "cosine_similarity": "qwen_tts_lit.metrics.speaker_sim",
    "english_only_asr": "qwen_tts_lit.metrics.asr",
    "eos_fail_rate": "qwen_tts_lit.metrics.eos",
    "error_rate": "qwen_tts_lit.metrics.error_rates",
    "filter_misses": "qwen_tts_lit.metrics.selection",
    "mean_embedding": "qwen_tts_lit.metrics.speaker_sim",
    "median_f0": "qwen_tts_lit.metrics.pitch",
    "pace_ratio": "qwen_tts_lit.metrics.speech_rate",
    "rank": "qwen_tts_lit.metrics.selection",
    "rate_ratio": "qwen_tts_lit.metrics.speech_rate",
    "score": "qwen_tts_lit.metrics.selection",
    "select_best": "qwen_tts_lit.metrics.selection",
    "span_seconds": "qwen_tts_lit.metrics.speech_rate",
    "units_per_second": "qwen_tts_lit.metrics.speech_rate",
    "word_error_rate": "qwen_tts_lit.metrics.error_rates",
    "words_per_second": "qwen_tts_lit.metrics.speech_rate",
}


def __getattr__(name: str):
    if name not in _OWNERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_OWNERS[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ASR",
    "DNSMOS",
    "PAUSE_S",
    "EmbeddingSimilarity",
    "NaturalnessJudge",
    "SelectionRule",
    "SpeakerSimilarity",
    "SpeechDetector",
    "Transcript",
    "VadStream",
    "Word",
    "active_level_db",
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
    "median_f0",
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
