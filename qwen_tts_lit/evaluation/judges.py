"""The judge models (ASR, resemblyzer, silero-vad, the naturalness judges), built once per run and kept on their
devices for every epoch; each scores a whole epoch's clips per call."""

from __future__ import annotations

from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics import ASR, SpeakerSimilarity, SpeechDetector
from qwen_tts_lit.metrics.dnsmos import DNSMOS, DNSMOS_FIELDS, NaturalnessJudge
from qwen_tts_lit.upstream.loading import resolve_device


def naturalness_judges(settings: JudgeSettings, device: str) -> list[NaturalnessJudge]:
    """The naturalness judges of a run, in the order their fields appear in a row. A judge of your own (a local
    UTMOS, docs/evaluation.md) is registered here: switched by a ``JudgeSettings`` field of its own, its fields
    then in every row and, through ``metrics/selection.py``'s ``MEAN_FIELDS`` and ``DIRECTIONS``, in the rule."""
    return [DNSMOS(device=device)] if settings.dnsmos else []


class Judges:
    """ASR (None when switched off), resemblyzer, silero-vad and the naturalness judges, built once and reused for
    every cell of a run. silero-vad stays on the CPU: a 2 MB recurrent model stepping through 32 ms windows gains
    nothing from a GPU."""

    def __init__(self, settings: JudgeSettings | None = None) -> None:
        settings = settings or JudgeSettings()
        self.settings = settings
        self.asr = ASR(settings.asr_model, settings.asr_device, settings.asr_compute_type, settings.asr_beam_size,
                       settings.asr_language, batch_size=settings.asr_batch_size) if settings.asr else None  # fmt: skip
        device = resolve_device(settings.speaker_device or settings.asr_device)
        self.speaker = SpeakerSimilarity(device)
        self.vad = SpeechDetector()
        self.naturalness = naturalness_judges(settings, device)

    @property
    def naturalness_fields(self) -> tuple[str, ...]:
        """Every naturalness field a row carries: DNSMOS's always (null when it is off), then each judge's."""
        return tuple(dict.fromkeys((*DNSMOS_FIELDS, *(name for judge in self.naturalness for name in judge.fields))))
