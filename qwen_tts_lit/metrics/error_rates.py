"""Error rates of a transcript against the text that was spoken: pure functions of strings, no model.

WER counts words and CER characters (jiwer on :func:`~qwen_tts_lit.languages.normalize_text` output, so differences of
writing are not errors). Languages whose words are not separated by spaces (Chinese, Japanese, ...) are scored by
characters, as Seed-TTS-eval does; which language is scored how is ``languages.error_metric``'s rule
(``CER_LANGUAGES``). The transcripts come from the ASR judge (``metrics/asr.py``).
"""

from __future__ import annotations

from typing import Literal

import jiwer

from qwen_tts_lit.languages import normalize_text, uses_cer


def edit_counts(
    reference: str, hypothesis: str, unit: Literal["word", "char"], language: str | None = "en"
) -> tuple[int, int]:
    """(errors, reference length) after normalisation; errors = substitutions + deletions + insertions."""
    ref, hyp = normalize_text(reference, language), normalize_text(hypothesis, language)
    if unit == "char":  # spaces are not characters anyone says; ASR spacing of CJK text is arbitrary
        ref, hyp = "".join(ref.split()), "".join(hyp.split())
    ref_units = ref.split() if unit == "word" else list(ref)
    hyp_units = hyp.split() if unit == "word" else list(hyp)
    if not ref_units:  # jiwer refuses an empty reference: every hypothesised unit is an insertion
        return len(hyp_units), 0
    if not hyp_units:  # nothing heard: every reference unit is deleted
        return len(ref_units), len(ref_units)
    out = jiwer.process_words(ref, hyp) if unit == "word" else jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref_units)


def rate_from_counts(errors: float, length: float) -> float:
    """errors / length; for an empty reference 0.0 when nothing was heard, else 1.0 (a bounded "all wrong")."""
    if length == 0:
        return 0.0 if errors == 0 else 1.0
    return float(errors) / float(length)


def word_error_rate(reference: str, hypothesis: str, language: str | None = "en") -> float:
    """WER of one utterance on normalised text; 1.0 for an empty hypothesis; may exceed 1 with insertions."""
    return rate_from_counts(*edit_counts(reference, hypothesis, "word", language))


def char_error_rate(reference: str, hypothesis: str, language: str | None = "zh") -> float:
    """CER of one utterance on normalised text without spaces; 1.0 for an empty hypothesis."""
    return rate_from_counts(*edit_counts(reference, hypothesis, "char", language))


def error_rate(reference: str, hypothesis: str, language: str | None = "en") -> float:
    """The headline error rate for ``language``: CER where ``languages.uses_cer`` says so, WER otherwise."""
    return (char_error_rate if uses_cer(language) else word_error_rate)(reference, hypothesis, language)
