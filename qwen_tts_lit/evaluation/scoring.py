"""Synthesize held-out sentences and score them against their real recordings (torch only, no Lightning).

One evaluation *cell* is (epoch, lora_scale): every held-out sentence is spoken once with its own fixed seed, and
every metric runs on that same audio. Each utterance becomes one evaluation row (``runs.records``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from qwen_tts_lit.evaluation.heldout import HeldOut, RealRecordings
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.files import write_wav
from qwen_tts_lit.metrics import (
    EmbeddingSimilarity,
    cosine_similarity,
    error_rate,
    language_code,
    rate_ratio,
    uses_cer,
    words_per_second,
)
from qwen_tts_lit.model.lora import evaluable_scales
from qwen_tts_lit.runs.folder import cell_dir
from qwen_tts_lit.synthesis.presets import FRAME_RATE, SAMPLE_RATE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Utterance


def score_utterance(
    item: HeldOut,
    utterance: Utterance,
    judges: Judges,
    real: RealRecordings,
    model_similarity: Callable[[np.ndarray], float] | None = None,
) -> dict:
    """Every metric for one synthesized utterance (the metric fields of a row)."""
    language = language_code(item.language) if item.language != "auto" else (judges.settings.asr_language or "en")
    hypothesis = judges.asr.transcribe(utterance.wav, SAMPLE_RATE)
    speech_s = judges.vad.speech_seconds(utterance.wav, SAMPLE_RATE)
    real_speech_s = real.speech_seconds[item.utt_id]
    errors = error_rate(item.text, hypothesis, language)  # CER where the language is scored by characters, else WER
    by_characters = uses_cer(language)
    return {
        "hypothesis": hypothesis,
        "wer": None if by_characters else errors,
        "cer": errors if by_characters else None,
        "error_rate": errors,
        "spk_sim": judges.speaker.similarity(utterance.wav, SAMPLE_RATE, real.voice),
        "spk_sim_model": None if model_similarity is None else model_similarity(utterance.wav),
        "rate_ratio": rate_ratio(speech_s, real_speech_s),
        "words_per_second": words_per_second(item.text, speech_s, language),
        "speech_seconds": speech_s,
        "real_speech_seconds": real_speech_s,
        "frames": utterance.frames,
        "real_frames": math.ceil(real.seconds[item.utt_id] * FRAME_RATE),
        "max_new_tokens": utterance.max_new_tokens,
        "hit_max_tokens": utterance.hit_max_tokens,
    }


def model_similarity_fn(synthesizer: Synthesizer, xvector) -> Callable[[np.ndarray], float]:
    """Cosine of a clip's x-vector (the model's own speaker encoder) with the training x-vector."""
    encoder = EmbeddingSimilarity(synthesizer.model.extract_speaker_embedding, SAMPLE_RATE)
    reference = np.asarray(xvector.detach().float().cpu() if hasattr(xvector, "detach") else xvector)
    return lambda wav: cosine_similarity(encoder.embed(wav, SAMPLE_RATE), reference)


def evaluate_cell(
    synthesizer: Synthesizer,
    judges: Judges,
    real: RealRecordings,
    run_dir: Path,
    epoch: int,
    scale: float,
    seed: int = 0,
    max_new_tokens: int | None = None,
    model_similarity: Callable[[np.ndarray], float] | None = None,
) -> list[dict]:
    """Speak every held-out sentence at ``scale`` (sentence i with seed ``seed + i``), write the wavs under
    ``cell_dir(epoch, scale)`` and return one scored row per sentence."""
    items = real.items
    utterances = synthesizer.synthesize(
        [item.text for item in items], seeds=[seed + i for i in range(len(items))], lora_scale=scale,
        max_new_tokens=max_new_tokens,
    )  # fmt: skip
    folder = run_dir / cell_dir(epoch, scale)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for item, utterance in zip(items, utterances, strict=True):
        wav_path = folder / f"{item.utt_id}.wav"
        write_wav(wav_path, utterance.wav, SAMPLE_RATE)
        row = {"epoch": epoch, "lora_scale": float(scale), "utt_id": item.utt_id, "text": item.text,
               "language": item.language, "seed": utterance.seed, "wav": str(wav_path.relative_to(run_dir)),
               "real_wav": real.copies.get(item.utt_id), "seconds": utterance.wall_seconds}  # fmt: skip
        rows.append(row | score_utterance(item, utterance, judges, real, model_similarity))
    return rows


def evaluate_epoch(
    synthesizer: Synthesizer,
    judges: Judges,
    real: RealRecordings,
    run_dir: Path,
    epoch: int,
    scales: Sequence[float],
    seed: int,
    max_new_tokens: int | None,
    xvector,
    on_cell: Callable[[float], None] | None = None,
) -> list[dict]:
    """Every cell of one epoch's weights (:func:`evaluate_cell` per scale the model can run at); ``xvector`` is the
    training x-vector that ``spk_sim_model`` compares against; ``on_cell(scale)`` runs before each cell."""
    similarity = model_similarity_fn(synthesizer, xvector) if judges.settings.model_speaker_sim else None
    rows = []
    for scale in evaluable_scales(synthesizer.model, scales):
        if on_cell is not None:
            on_cell(scale)
        rows += evaluate_cell(synthesizer, judges, real, run_dir, epoch, scale, seed, max_new_tokens, similarity)
    return rows


