"""Real recordings standing in for syntheses, so the judges' scoring can be tested on speech with known text."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import soundfile as sf
import torch

from qwen_tts_lit.audio import resample
from qwen_tts_lit.evaluation.heldout import HeldOut
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE, SAMPLES_PER_FRAME
from qwen_tts_lit.synthesis.synthesizer import Utterance


def recordings_as_utterances(items: Sequence[HeldOut]) -> list[Utterance]:
    """Each held-out item's own recording as if the model had spoken it: resampled to the synthesis rate (espeak-ng
    speaks at 22.05 kHz), with the frame count a synthesis of that length has."""
    utterances = []
    for item in items:
        wav, rate = sf.read(str(item.audio), dtype="float32")
        wav = resample(wav, rate, SAMPLE_RATE)
        frames = int(np.ceil(len(wav) / SAMPLES_PER_FRAME))
        utterances.append(Utterance(item.text, 0, wav, torch.zeros(frames, 16), frames, 100, False, 0.0))
    return utterances
