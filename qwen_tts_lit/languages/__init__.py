"""Languages, the one owner of their rules (docs/languages.md): names and codes, the ten languages Qwen3-TTS speaks,
the model's own list and its dialects, script ranges, quotes, which error metric (WER or CER) a language is scored
by, how "auto" is resolved (:func:`resolve_language`), text normalisation for scoring and word counting. Pure
functions of strings; the lowest layer, so that ``upstream``, ``metrics``, ``data`` and ``evaluation`` all read it.
"""

from qwen_tts_lit.languages.rules import (
    AUTO,
    CER_LANGUAGES,
    DEFAULT_LANGUAGE,
    QWEN_LANGUAGES,
    SpokenLanguage,
    error_metric,
    is_auto,
    is_dialect,
    language_code,
    language_name,
    model_languages,
    resolve_language,
    uses_cer,
)
from qwen_tts_lit.languages.text import count_words, has_speakable, normalize_text, spell_integer

__all__ = [
    "AUTO",
    "CER_LANGUAGES",
    "DEFAULT_LANGUAGE",
    "QWEN_LANGUAGES",
    "SpokenLanguage",
    "count_words",
    "error_metric",
    "has_speakable",
    "is_auto",
    "is_dialect",
    "language_code",
    "language_name",
    "model_languages",
    "normalize_text",
    "resolve_language",
    "spell_integer",
    "uses_cer",
]
