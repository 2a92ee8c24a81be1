"""qwen_tts_lit: correct, measured fine-tuning of Qwen3-TTS (12 Hz) on one target voice."""

__version__ = "0.1.0"
