"""The judge models (ASR, resemblyzer, silero-vad), built once and reused for every cell of a run."""

from __future__ import annotations

from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics import ASR, SpeakerSimilarity, SpeechDetector


class Judges:
    """ASR, resemblyzer and silero-vad, built once and reused for every cell of a run."""

    def __init__(self, settings: JudgeSettings | None = None) -> None:
        settings = settings or JudgeSettings()
        self.settings = settings
        self.asr = ASR(settings.asr_model, settings.asr_device, settings.asr_compute_type, settings.asr_beam_size,
                       settings.asr_language)  # fmt: skip
        self.speaker = SpeakerSimilarity()
        self.vad = SpeechDetector()
