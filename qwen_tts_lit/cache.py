"""The per-user cache for what is built on first use (the tiny checkpoint, prepared copies of raw inputs)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$QWEN_TTS_LIT_CACHE``, else ``$XDG_CACHE_HOME/qwen_tts_lit``, else ``~/.cache/qwen_tts_lit``."""
    if os.environ.get("QWEN_TTS_LIT_CACHE"):
        return Path(os.environ["QWEN_TTS_LIT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "qwen_tts_lit"
