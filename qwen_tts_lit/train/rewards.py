"""Rewards of RL rollouts from the judges, each component weighted in the config (docs/reinforcement_learning.md).

Every component is a number per utterance where higher is better; the reward is their weighted sum. Components
with weight 0 are not computed (their judge never loads). Each component's batch mean is logged per step as
``rl/reward/<name>``.

- ``error_rate``: minus the ASR error rate (WER, or CER for languages scored by characters) against the text as
  spoken, capped at 1 (a hallucinating transcript cannot outweigh every other component).
- ``speaker_similarity``: resemblyzer cosine of the clip to the target voice's embedding (the mean embedding of
  the voice's real recordings, given as ``reference_embedding``).
- ``naturalness``: DNSMOS P.835 overall (1..5) mapped to 0..1.
- ``rate``: minus |log(words per second / the real recordings' words per second)|: a clip twice too fast or too
  slow costs log 2 either way.
- ``runaway``: -1 for a generation that reached its cap without EOS.
- ``length``: minus |frames - target_frames| / target_frames: a reward the tiny random model can move (tests, demo).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.metrics.error_rates import error_rate
from qwen_tts_lit.metrics.speech_rate import words_per_second
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE
from qwen_tts_lit.synthesis.synthesizer import Utterance

DNSMOS_RANGE = (1.0, 5.0)  # P.835 OVRL's scale


@dataclass(frozen=True)
class RewardWeights:
    """The weight of each reward component (0 switches it off and never loads its judge)."""

    error_rate: float = 1.0
    """Minus the ASR error rate (capped at 1)."""
    speaker_similarity: float = 0.0
    """Speaker similarity to the target voice (needs its reference embedding)."""
    naturalness: float = 0.0
    """DNSMOS overall, mapped from 1..5 to 0..1."""
    rate: float = 0.0
    """Minus |log(speaking rate / the real recordings' rate)| (needs ``real_words_per_second``)."""
    runaway: float = 1.0
    """-1 when the generation reached its cap without EOS."""
    length: float = 0.0
    """Minus |frames - target_frames| / target_frames (a cheap reward for the tiny model)."""
    target_frames: int = 10
    """The frame count the ``length`` component aims at."""
    real_words_per_second: float | None = None
    """The real recordings' speaking rate, for the ``rate`` component."""

    def problems(self) -> list[str]:
        weights = {k: v for k, v in asdict(self).items() if k not in ("target_frames", "real_words_per_second")}
        bad = [f"rewards.{name} {value}: must be finite" for name, value in weights.items() if not math.isfinite(value)]
        if self.target_frames < 1:
            bad.append(f"rewards.target_frames {self.target_frames}: must be >= 1")
        if self.rate and not (self.real_words_per_second or 0) > 0:
            bad.append("rewards.rate needs rewards.real_words_per_second > 0 (the real recordings' rate)")
        return bad

    @property
    def reads_audio(self) -> bool:
        """Whether any active component listens to the audio (else rollouts skip the decoder)."""
        return bool(self.error_rate or self.speaker_similarity or self.naturalness or self.rate)

    def active(self) -> list[str]:
        """The components with a non-zero weight, in the order above."""
        names = ("error_rate", "speaker_similarity", "naturalness", "rate", "runaway", "length")
        return [name for name in names if getattr(self, name)]


def length_reward(frames: int, target: int) -> float:
    return -abs(frames - target) / target


def runaway_reward(hit_cap: bool) -> float:
    return -1.0 if hit_cap else 0.0


def error_rate_reward(reference: str, transcript: str, language: str | None = "en") -> float:
    return -min(error_rate(reference, transcript, language), 1.0)


def naturalness_reward(ovrl: float) -> float:
    low, high = DNSMOS_RANGE
    return (min(max(ovrl, low), high) - low) / (high - low)


def rate_reward(words_per_s: float, real_words_per_s: float) -> float:
    """Minus the absolute log ratio of the rates; a silent clip (rate 0) gets the worst of a 10x mismatch."""
    if words_per_s <= 0:
        return -math.log(10.0)
    return -abs(math.log(words_per_s / real_words_per_s))


class Rewards:
    """Scores rollouts with the weighted components; judges load on first use and are kept."""

    def __init__(
        self, weights: RewardWeights, language: str = "en", reference_embedding=None, judge_settings=None
    ) -> None:
        if weights.problems():
            raise UserError("; ".join(weights.problems()))
        self.weights, self.language, self.reference_embedding = weights, language, reference_embedding
        self.judge_settings = judge_settings  # evaluation.settings.JudgeSettings; None: the evaluation defaults
        self._judges = self._dnsmos = None

    def components(self, utterances: Sequence[Utterance]) -> dict[str, torch.Tensor]:
        """Each active component, (N,) float32, one value per utterance."""
        w, wavs = self.weights, [u.wav for u in utterances]
        out: dict[str, list[float]] = {}
        if w.error_rate:
            heard = self.asr.transcribe_batch(wavs, SAMPLE_RATE)
            pairs = zip(utterances, heard, strict=True)
            out["error_rate"] = [error_rate_reward(u.text, h, self.language) for u, h in pairs]
        if w.speaker_similarity:
            if self.reference_embedding is None:
                raise UserError("rewards.speaker_similarity needs the target voice's recordings (a prepared dataset)")
            out["speaker_similarity"] = self.speaker.similarities(wavs, SAMPLE_RATE, self.reference_embedding)
        if w.naturalness:
            scores = self.dnsmos.score_batch(wavs, SAMPLE_RATE)
            out["naturalness"] = [naturalness_reward(s["dnsmos_ovrl"]) for s in scores]
        if w.rate:
            speech = self.vad.speech_seconds_batch(wavs, SAMPLE_RATE)
            rates = [words_per_second(u.text, s, self.language) for u, s in zip(utterances, speech, strict=True)]
            out["rate"] = [rate_reward(r, w.real_words_per_second) for r in rates]
        if w.runaway:
            out["runaway"] = [runaway_reward(u.hit_max_tokens) for u in utterances]
        if w.length:
            out["length"] = [length_reward(u.frames, w.target_frames) for u in utterances]
        return {name: torch.tensor(np.asarray(values, dtype=np.float32)) for name, values in out.items()}

    def total(self, components: dict[str, torch.Tensor], count: int) -> torch.Tensor:
        """The weighted sum, (N,); zeros when no component is active (the zero-advantage control)."""
        total = torch.zeros(count)
        for name, values in components.items():
            total = total + getattr(self.weights, name) * values
        return total

    @property
    def judges(self):
        """The evaluation's judges (evaluation/judges.py), built on first use from the module's JudgeSettings: each
        loads its model on its first call, so only the active components' models ever load."""
        if self._judges is None:
            from qwen_tts_lit.evaluation.judges import Judges

            self._judges = Judges(self.judge_settings)
        return self._judges

    @property
    def asr(self):
        if self.judges.asr is None:
            raise UserError("rewards.error_rate needs the ASR judge: set model.judges.asr true")
        return self.judges.asr

    @property
    def speaker(self):
        return self.judges.speaker

    @property
    def dnsmos(self):
        """The judges' DNSMOS, or one of its own when the evaluation's naturalness judges leave it out."""
        if self._dnsmos is None:
            from qwen_tts_lit.metrics.dnsmos import DNSMOS

            found = [judge for judge in self.judges.naturalness if isinstance(judge, DNSMOS)]
            self._dnsmos = found[0] if found else DNSMOS()
        return self._dnsmos

    @property
    def vad(self):
        return self.judges.vad
