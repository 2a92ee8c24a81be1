"""Everything that touches ``qwen_tts`` internals: packaging workarounds (compat), checkpoint loading (the model
source ``"tiny"`` is resolved here and nowhere else) and the tiny random checkpoint in the official layout."""
