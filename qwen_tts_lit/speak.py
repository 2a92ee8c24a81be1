"""The ``synthesize`` subcommand's work: open a voice (run, adapter export or custom_voice export), speak a long text
chunk by chunk, retry runaway chunks, write one 24 kHz wav atomically.

Runaway policy: a chunk that reaches the frame cap (no EOS) is regenerated with seed+1, seed+2, ... up to
``retries`` more times and reported. If every attempt runs away, nothing is written and :class:`RunawayError` is
raised (the CLI exits 1), unless ``keep_runaway`` is set: then the last attempt is kept, truncated at the cap, and
reported as kept. A runaway is never kept silently.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qwen_tts_lit.chunking import DEFAULT_CHUNK_CHARS, PAUSE_SECONDS, join_with_pauses, split_text
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_wav
from qwen_tts_lit.synthesis import SAMPLE_RATE, Synthesizer, Utterance, Voice

DEFAULT_RETRIES = 2


class RunawayError(RuntimeError):
    """Every attempt at a chunk reached the frame cap without EOS."""


@dataclass
class OpenedVoice:
    """A model ready to speak, its voice, and the LoRA scale to use unless the user gives one."""

    tts: object
    voice: Voice
    default_scale: float
    scalable: bool  # False for a merged custom_voice export: its scale is baked in
    language_tag: bool = False  # trained with the language in the codec prefix: speak with an explicit language
    notes: list[str] = field(default_factory=list)


def open_voice(
    model: str, epoch: int | None = None, device: str = "cpu", base_model: str | None = None, speaker: str | None = None
) -> OpenedVoice:
    """A run folder (best.json or --epoch), an adapter export or a custom_voice export, by what the folder holds."""
    path = Path(model).expanduser()
    if not path.is_dir():
        raise UserError(f"--model {model}: folder not found (give a run folder or an export folder)")
    if (path / "checkpoints").is_dir():
        return _open_run(path, epoch, device, base_model)
    if epoch is not None:
        raise UserError(f"--epoch: only for a run folder; {path} is an export")
    meta_path = path / "qwen_tts_lit.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if (path / "adapter_config.json").is_file():
        return _open_adapter(path, meta, device, base_model)
    if (path / "config.json").is_file():
        return _open_custom_voice(path, meta, device, speaker)
    raise UserError(f"--model {path}: neither a run folder (checkpoints/) nor an export (config.json, adapter)")


def _open_run(path: Path, epoch: int | None, device: str, base_model: str | None) -> OpenedVoice:
    from qwen_tts_lit.model.run_checkpoint import (
        check_run_dir,
        choose,
        load_run,
        read_best,
        read_config,
    )

    run = check_run_dir(path)
    choice = choose(read_best(run), epoch, None, run)  # the scale is the caller's (or best.json's) choice
    loaded = load_run(run, choice.epoch, device=device, base_model=base_model)
    language_tag = bool((read_config(run).get("data") or {}).get("use_language_tag"))
    voice = Voice(xvector=loaded.xvector)
    return OpenedVoice(
        loaded.tts, voice, choice.lora_scale, loaded.peft_model is not None, language_tag, list(choice.notes)
    )


def _open_adapter(path: Path, meta: dict, device: str, base_model: str | None) -> OpenedVoice:
    from peft import PeftModel
    from safetensors.torch import load_file

    from qwen_tts_lit.model.load import load_qwen3_tts

    base = (
        base_model
        or meta.get("base_model")
        or json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    )
    if not base:
        raise UserError(f"{path}: names no base model; pass --base-model")
    speaker_file = path / "speaker.safetensors"
    if not speaker_file.is_file():
        raise UserError(f"{speaker_file}: missing; an adapter export keeps the speaker x-vector there")
    tts = load_qwen3_tts(base, "float32", "sdpa", device)
    PeftModel.from_pretrained(tts.model, str(path)).eval()  # injects the adapters into tts.model in place
    xvector = load_file(str(speaker_file))["xvector"].float()
    scale = float(meta.get("lora_scale", 1.0))
    return OpenedVoice(tts, Voice(xvector=xvector), scale, True, bool(meta.get("language_tag")))


def _open_custom_voice(path: Path, meta: dict, device: str, speaker: str | None) -> OpenedVoice:
    from qwen_tts_lit.model.load import load_qwen3_tts

    config = json.loads((path / "config.json").read_text())
    if config.get("tts_model_type") != "custom_voice":
        raise UserError(
            f"{path}: a {config.get('tts_model_type')!r} checkpoint has no fine-tuned voice; give a run folder, "
            "an adapter export or a custom_voice export"
        )
    speakers = sorted((config.get("talker_config") or {}).get("spk_id") or {})
    if speaker is None:
        if len(speakers) != 1:
            raise UserError(f"{path}: has speakers {speakers}; pick one with --speaker")
        speaker = speakers[0]
    tts = load_qwen3_tts(str(path), "float32", "sdpa", device)
    notes = [f"lora_scale {meta['lora_scale']:g} is merged into this export"] if "lora_scale" in meta else []
    return OpenedVoice(tts, Voice(speaker=speaker), 1.0, False, bool(meta.get("language_tag")), notes)


@dataclass
class ChunkResult:
    """One chunk: every attempt (seed, frames, hit the cap) and the utterance kept."""

    index: int
    text: str
    attempts: list[tuple[int, int, bool]]
    kept: Utterance

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


def speak_chunks(
    synthesizer: Synthesizer,
    chunks: Sequence[str],
    seed: int = 42,
    lora_scale: float = 1.0,
    max_new_tokens: int | None = None,
    retries: int = DEFAULT_RETRIES,
    keep_runaway: bool = False,
    progress: Callable[[Sequence[str]], Sequence[str]] = lambda chunks: chunks,
) -> list[ChunkResult]:
    """Each chunk with the same ``seed`` and voice; a runaway chunk retried with seed+1, seed+2, ..."""
    results, failed = [], []
    for index, text in enumerate(progress(chunks)):
        attempts = []
        for attempt in range(retries + 1):
            (utterance,) = synthesizer.synthesize([text], [seed + attempt], lora_scale, max_new_tokens)
            attempts.append((utterance.seed, utterance.frames, utterance.hit_max_tokens))
            if not utterance.hit_max_tokens:
                break
        if utterance.hit_max_tokens:
            failed.append((index, text, [s for s, _, _ in attempts], utterance.max_new_tokens))
        results.append(ChunkResult(index, text, attempts, utterance))
    if failed and not keep_runaway:
        lines = [f"chunk {i + 1} ({t[:60]!r}): seeds {seeds} all reached {cap} frames" for i, t, seeds, cap in failed]
        raise RunawayError(
            "no EOS within the frame cap, nothing written:\n  " + "\n  ".join(lines) + "\nraise --max-new-tokens, "
            "add --retries, or pass --keep-runaway to keep the capped audio"
        )
    return results


def join_chunks(results: Sequence[ChunkResult], pause_seconds: float = PAUSE_SECONDS) -> np.ndarray:
    """One waveform: the kept chunks with a pause between them."""
    return join_with_pauses([r.kept.wav for r in results], round(pause_seconds * SAMPLE_RATE))


def report_lines(results: Sequence[ChunkResult], wall_seconds: float, audio_seconds: float) -> list[str]:
    """Human summary: retried and kept-runaway chunks by name, then totals."""
    lines = []
    for r in results:
        if r.retried or r.kept.hit_max_tokens:
            tried = ", ".join(f"seed {s}: {f} frames{' (cap)' if hit else ''}" for s, f, hit in r.attempts)
            verdict = "KEPT AT THE CAP (runaway)" if r.kept.hit_max_tokens else f"kept seed {r.kept.seed}"
            lines.append(f"chunk {r.index + 1}: {tried} -> {verdict}")
    rtf = wall_seconds / audio_seconds if audio_seconds else float("inf")
    lines.append(
        f"{len(results)} chunks, {audio_seconds:.2f} s audio in {wall_seconds:.1f} s (real-time factor {rtf:.2f})"
    )
    return lines


@dataclass(frozen=True)
class SynthesizeRequest:
    """The ``synthesize`` subcommand's arguments."""

    model: str
    text: str
    output: Path
    lora_scale: float | None = None
    seed: int = 42
    max_new_tokens: int | None = None
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    epoch: int | None = None
    language: str | None = None
    speaker: str | None = None
    base_model: str | None = None
    retries: int = DEFAULT_RETRIES
    keep_runaway: bool = False
    pause_seconds: float = PAUSE_SECONDS
    device: str = "cpu"


def check_request(request: SynthesizeRequest) -> list[str]:
    """Every cheap check before any model loads; returns the chunks."""
    from qwen_tts_lit.model.run_checkpoint import check_lora_scale

    if request.output.suffix.lower() != ".wav":
        raise UserError(f"--output {request.output}: give a .wav path")
    if request.lora_scale is not None:
        check_lora_scale(request.lora_scale)
    for name, value in (("--max-new-tokens", request.max_new_tokens), ("--chunk-chars", request.chunk_chars)):
        if value is not None and value < 1:
            raise UserError(f"{name} {value}: must be >= 1")
    if request.retries < 0 or request.pause_seconds < 0:
        raise UserError("--retries and --pause-seconds must be >= 0")
    chunks = split_text(request.text, request.chunk_chars)
    if not chunks:
        raise UserError("the text is empty (nothing to say)")
    return chunks


def synthesize_to_wav(request: SynthesizeRequest, progress=None) -> tuple[Path, list[ChunkResult]]:
    """Check, open the voice, speak every chunk (retrying runaways), write the wav; returns it and the chunk results."""
    chunks = check_request(request)
    opened = open_voice(request.model, request.epoch, request.device, request.base_model, request.speaker)
    scale = opened.default_scale if request.lora_scale is None else request.lora_scale
    if request.lora_scale is not None and not opened.scalable and request.lora_scale != 1.0:
        raise UserError(f"--lora-scale: {request.model} has its scale merged in; export again with --lora-scale")
    if opened.language_tag and request.language is None:
        raise UserError(f"{request.model}: trained with language tags; pass --language (e.g. english)")
    for note in opened.notes:
        print(f"synthesize: {note}", file=sys.stderr)
    synthesizer = Synthesizer(opened.tts, opened.voice, language=request.language or "auto")
    start = time.perf_counter()
    results = speak_chunks(
        synthesizer, chunks, request.seed, scale, request.max_new_tokens, request.retries, request.keep_runaway,
        progress or (lambda items: items),
    )  # fmt: skip
    wav = join_chunks(results, request.pause_seconds)
    write_wav(request.output, wav, SAMPLE_RATE)
    for line in report_lines(results, time.perf_counter() - start, len(wav) / SAMPLE_RATE):
        print(f"synthesize: {line}", file=sys.stderr)
    return request.output, results
