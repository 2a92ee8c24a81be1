"""Everything that touches ``qwen_tts`` internals: packaging workarounds (compat), checkpoint loading (the model
source ``"tiny"`` is resolved here and nowhere else), the tiny random checkpoint in the official layout, and
per-row sampling inside upstream's ``generate`` (sampling)."""
