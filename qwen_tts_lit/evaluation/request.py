"""``evaluate``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class EvaluateRequest:
    """re-score a finished run's saved epochs (e.g. with a stronger ASR model) and choose again

    Synthesize the held-out sentences for each saved epoch x lora_scale, score them, replace those cells' rows in
    the run's evaluation records and rebuild the chosen cell and the report (with --baselines alone, only the
    zero-shot rows are scored and added). Every default not given here (scales,
    sentences, seed, rule, judges) is the one the run's EvalSuite used, read from the run's saved config.
    """

    run: Path
    """Run folder (runs/NAME/version_N)."""
    epochs: tuple[int, ...] | None = None
    """Epochs to score (default: every saved epoch; with --baselines: none, their rows are kept)."""
    scales: tuple[float, ...] | None = None
    """LoRA strengths (default: the run's EvalSuite scales)."""
    heldout: Path | None = None
    """JSONL of held-out sentences (default: those the run evaluated)."""
    num_utterances: int | None = None
    """First N held-out sentences (default: all of them)."""
    seed: int | None = None
    """Sentence i uses seed + i (default: the run's)."""
    batch_size: int | None = None
    """Generations per generate call (default: the run's; that value reproduces its audio byte for byte)."""
    decoding: str | None = None
    """Key/value cache of generate: dynamic, static or cuda_graphs (default: the run's; all give the same codes)."""
    baselines: bool = False
    """Score the base model zero-shot (x-vector only, and cloning in context from the first training clip) and add
    those rows alone: the epochs' rows are kept as they are unless --epochs names some to score again."""
    no_asr: bool = False
    """Score without ASR: no WER/CER (null in the rows); the rule ranks on the other metrics and says so."""
    asr_model: str | None = None
    """faster-whisper model name or folder, e.g. large-v3 (default: the run's judge)."""
    asr_device: str | None = None
    """cpu, cuda or auto (default: the run's)."""
    asr_compute_type: str | None = None
    """int8 on CPU, float16 on GPU (default: the run's)."""
    asr_beam_size: int | None = None
    """ASR beam width (default: the run's)."""
    asr_language: str | None = None
    """Spoken language for ASR (default: the run's)."""
    model_speaker_sim: bool | None = None
    """Also score spk_sim_model with the model's own speaker encoder (default: the run's)."""
    primary: str | None = None
    """Rule: the metric to optimise (error_rate, wer, cer, spk_sim, ...; default: the run's)."""
    rate_tolerance: float | None = None
    """Rule: the largest |rate_ratio - 1| (default: the run's)."""
    max_eos_fail: float | None = None
    """Rule: the largest share of runaway generations (default: the run's)."""
    speaker_aggregate: Literal["mean", "worst"] | None = None
    """Rule, several speakers: a cell's figure is the mean over speakers or the worst speaker's (default: the run's)."""
    device: str = field(default="cpu", metadata={"metavar": "DEVICE"})
    """Device for the TTS model: cpu, cuda, cuda:N or auto."""

    def epochs_to_score(self, saved: list[int]) -> list[int]:
        """The epochs this request scores: those given, else none when it adds the baselines (a full re-evaluation of
        a real run takes hours; the baselines alone, minutes), else every saved one."""
        if self.epochs:
            return list(self.epochs)
        return [] if self.baselines else list(saved)

    def judge_overrides(self) -> dict:
        names = ("asr_model", "asr_device", "asr_compute_type", "asr_beam_size", "asr_language", "model_speaker_sim")
        overrides = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return overrides | ({"asr": False} if self.no_asr else {})

    def rule_overrides(self) -> dict:
        names = ("primary", "rate_tolerance", "max_eos_fail", "speaker_aggregate")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}
