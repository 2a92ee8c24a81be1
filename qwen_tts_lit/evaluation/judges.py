"""The judge models (ASR, resemblyzer, silero-vad), built once per run and kept on their devices for every epoch;
each scores a whole epoch's clips per call."""

from __future__ import annotations

from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics import ASR, SpeakerSimilarity, SpeechDetector
from qwen_tts_lit.upstream.loading import resolve_device


class Judges:
    """ASR, resemblyzer and silero-vad, built once and reused for every cell of a run. silero-vad stays on the CPU:
    a 2 MB recurrent model stepping through 32 ms windows gains nothing from a GPU."""

    def __init__(self, settings: JudgeSettings | None = None) -> None:
        settings = settings or JudgeSettings()
        self.settings = settings
        self.asr = ASR(settings.asr_model, settings.asr_device, settings.asr_compute_type, settings.asr_beam_size,
                       settings.asr_language, batch_size=settings.asr_batch_size)  # fmt: skip
        self.speaker = SpeakerSimilarity(resolve_device(settings.speaker_device or settings.asr_device))
        self.vad = SpeechDetector()
