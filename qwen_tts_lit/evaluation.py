"""Synthesize held-out sentences and score them against their real recordings (torch only, no Lightning).

Shared by the ``EvalSuite`` callback (during ``fit``), ``python -m qwen_tts_lit evaluate`` (after it) and notebooks.
One evaluation *cell* is (epoch, lora_scale): every held-out sentence is spoken once with its own fixed seed, and
every metric runs on that same audio. Each utterance becomes one row of ``eval/rows.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic, write_wav
from qwen_tts_lit.metrics import (
    ASR,
    EmbeddingSimilarity,
    SelectionRule,
    SpeakerSimilarity,
    SpeechDetector,
    cosine_similarity,
    error_rate,
    language_code,
    mean_embedding,
    rate_ratio,
    select_best,
    uses_cer,
    words_per_second,
)
from qwen_tts_lit.synthesis import FRAME_RATE, SAMPLE_RATE, Synthesizer, Utterance, has_lora

EVAL_DIR = "eval"
ROWS_FILE = "rows.jsonl"
BEST_FILE = "best.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class HeldOut:
    """One held-out sentence and its real recording."""

    utt_id: str
    text: str
    audio: Path
    language: str = "auto"


def read_heldout(manifest: str | os.PathLike, limit: int | None = None) -> list[HeldOut]:
    """Rows of a JSONL manifest with ``text`` and ``audio`` (relative to the manifest's folder), optional ``id`` and
    ``language``: a prepared ``val.jsonl`` or a list like ``data/demo/heldout.jsonl``. First ``limit`` rows."""
    path = Path(manifest)
    if not path.is_file():
        raise UserError(f"{path}: held-out manifest not found")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio = path.parent / row["audio"]
            text = row["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise UserError(f"{path}, line {line_no}: needs JSON with 'text' and 'audio' ({error})") from error
        if not audio.is_file():
            raise UserError(f"{path}, line {line_no}, field audio: {audio} not found")
        items.append(HeldOut(str(row.get("id", audio.stem)), text, audio, row.get("language", "auto")))
    if not items:
        raise UserError(f"{path}: no held-out rows")
    return items[:limit] if limit else items


@dataclass
class JudgeSettings:
    """Which judge models score the audio (each loads once per run)."""

    asr_model: str | None = None
    """faster-whisper model: None = the bundled tiny.en (offline demo and tests); "large-v3" for real runs."""
    asr_device: str = "cpu"
    """Device for ASR ("cpu", "cuda", "auto")."""
    asr_compute_type: str = "int8"
    """CTranslate2 precision: int8 on CPU, float16 on GPU."""
    asr_beam_size: int = 5
    """ASR beam width."""
    asr_language: str | None = "en"
    """Spoken language for ASR (None = detect; tiny.en knows only English)."""
    model_speaker_sim: bool = True
    """Also score speaker similarity with the model's own speaker encoder (spk_sim_model)."""


class Judges:
    """ASR, resemblyzer and silero-vad, built once and reused for every cell of a run."""

    def __init__(self, settings: JudgeSettings | None = None) -> None:
        settings = settings or JudgeSettings()
        self.settings = settings
        self.asr = ASR(settings.asr_model, settings.asr_device, settings.asr_compute_type, settings.asr_beam_size,
                       settings.asr_language)  # fmt: skip
        self.speaker = SpeakerSimilarity()
        self.vad = SpeechDetector()


@dataclass
class RealRecordings:
    """What the real recordings give once per run: speech seconds, frames and the reference voice."""

    items: list[HeldOut]
    speech_seconds: dict[str, float]
    seconds: dict[str, float]
    voice: np.ndarray  # mean resemblyzer embedding of the real recordings
    copies: dict[str, str] = field(default_factory=dict)  # utt_id -> path of its copy, relative to the run folder


def measure_real(items: Sequence[HeldOut], judges: Judges, run_dir: Path | None = None) -> RealRecordings:
    """Measure every real recording once; a recording without detectable speech is bad evaluation data. With
    ``run_dir``, the recordings are also copied into it, so the listening report is self-contained."""
    speech, seconds, embeddings = {}, {}, []
    for item in items:
        wav, rate = sf.read(str(item.audio), dtype="float32", always_2d=True)
        wav = wav.mean(axis=1)
        speech[item.utt_id] = judges.vad.speech_seconds(wav, rate)
        seconds[item.utt_id] = len(wav) / rate
        if speech[item.utt_id] <= 0:
            raise UserError(f"{item.audio}: held-out recording '{item.utt_id}' has no detectable speech")
        embeddings.append(judges.speaker.embed(wav, rate))
    real = RealRecordings(list(items), speech, seconds, mean_embedding(embeddings))
    if run_dir is not None:
        _copy_into_run(real, run_dir)
    return real


def _copy_into_run(real: RealRecordings, run_dir: Path) -> None:
    """Copy the real recordings into the run folder (once) and note where each copy is."""
    target = run_dir / EVAL_DIR / "real"
    target.mkdir(parents=True, exist_ok=True)
    for item in real.items:
        destination = target / f"{item.utt_id}{item.audio.suffix}"
        if not destination.exists():
            shutil.copyfile(item.audio, destination)
        real.copies[item.utt_id] = str(destination.relative_to(run_dir))


def heldout_from_rows(rows: list[dict], run_dir: Path) -> list[HeldOut]:
    """The held-out sentences an earlier evaluation used, from its rows and the recordings copied into the run."""
    items: dict[str, HeldOut] = {}
    for row in rows:
        if row["utt_id"] not in items and row.get("real_wav"):
            audio = run_dir / row["real_wav"]
            if not audio.is_file():
                raise UserError(f"{audio}: real recording of '{row['utt_id']}' missing from the run folder")
            items[row["utt_id"]] = HeldOut(row["utt_id"], row["text"], audio, row.get("language", "auto"))
    return sorted(items.values(), key=lambda item: item.utt_id)


def cell_dir(epoch: int, scale: float) -> str:
    """``eval/epoch=NNN/scale=S`` (relative to the run folder)."""
    return f"{EVAL_DIR}/epoch={epoch:03d}/scale={scale:g}"


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


def read_rows(run_dir: Path) -> list[dict]:
    """All rows of ``eval/rows.jsonl`` (empty when there are none yet)."""
    path = run_dir / EVAL_DIR / ROWS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Old rows minus the (epoch, scale) cells that ``new`` re-scores, plus ``new``; sorted by epoch, scale, utt."""
    replaced = {(r["epoch"], r["lora_scale"]) for r in new}
    kept = [r for r in old if (r["epoch"], r["lora_scale"]) not in replaced]
    return sorted(kept + new, key=lambda r: (r["epoch"], r["lora_scale"], r["utt_id"]))


def scales_for(model, scales: Sequence[float]) -> list[float]:
    """The LoRA strengths a model can be evaluated at: all of them, or only 1.0 without adapters (full fine-tuning)."""
    return list(scales) if has_lora(model) else [1.0]


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
    """Every cell of one epoch's weights (:func:`evaluate_cell` per scale of :func:`scales_for`); ``xvector`` is the
    training x-vector that ``spk_sim_model`` compares against; ``on_cell(scale)`` runs before each cell."""
    similarity = model_similarity_fn(synthesizer, xvector) if judges.settings.model_speaker_sim else None
    rows = []
    for scale in scales_for(synthesizer.model, scales):
        if on_cell is not None:
            on_cell(scale)
        rows += evaluate_cell(synthesizer, judges, real, run_dir, epoch, scale, seed, max_new_tokens, similarity)
    return rows


def publish(run_dir: Path, new_rows: list[dict], rule: SelectionRule) -> dict:
    """Merge ``new_rows`` into ``eval/rows.jsonl`` (re-scored cells replaced), then write it, ``best.json`` (the
    rule's choice over all rows) and ``report.html``; return best."""
    from qwen_tts_lit.report import render_report

    rows = merge_rows(read_rows(run_dir), new_rows)
    title = f"Evaluation: {run_dir}"
    best = select_best(rows, rule)
    write_atomic(run_dir / EVAL_DIR / ROWS_FILE, "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))
    write_atomic(run_dir / BEST_FILE, json.dumps(best, indent=2, allow_nan=False) + "\n")
    write_atomic(run_dir / REPORT_FILE, render_report(rows, best, title))
    return best


__all__ = [
    "HeldOut",
    "JudgeSettings",
    "Judges",
    "RealRecordings",
    "cell_dir",
    "evaluate_cell",
    "evaluate_epoch",
    "heldout_from_rows",
    "measure_real",
    "merge_rows",
    "model_similarity_fn",
    "read_heldout",
    "publish",
    "read_rows",
    "scales_for",
    "score_utterance",
]
