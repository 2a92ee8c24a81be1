"""Long-form speech, the ``synthesize`` command's work: open a voice (:mod:`~qwen_tts_lit.synthesis.voices`), speak
a long text chunk by chunk (:mod:`~qwen_tts_lit.synthesis.chunking`), retry runaway chunks, write one 24 kHz wav
atomically.

Runaway policy: a chunk that reaches the frame cap (no EOS) is regenerated with seed+1, seed+2, ... up to
``retries`` more times and reported. If every attempt runs away, nothing is written and :class:`RunawayError` is
raised (the CLI exits 1), unless ``keep_runaway`` is set: then the last attempt is kept, truncated at the cap, and
reported as kept. A runaway is never kept silently.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwen_tts_lit.errors import RunFailed, UserError
from qwen_tts_lit.files import unwritable, write_wav
from qwen_tts_lit.languages import has_speakable
from qwen_tts_lit.model.lora import UNSCALED, check_lora_scale
from qwen_tts_lit.synthesis.chunking import PAUSE_SECONDS, join_with_pauses, split_text
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE
from qwen_tts_lit.synthesis.request import DEFAULT_RETRIES, DEFAULT_SEED, SynthesizeRequest
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Utterance
from qwen_tts_lit.synthesis.voices import open_voice


class RunawayError(RunFailed):
    """Every attempt at a chunk reached the frame cap without EOS."""


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
    seed: int = DEFAULT_SEED,
    lora_scale: float = UNSCALED,
    max_new_tokens: int | None = None,
    retries: int = DEFAULT_RETRIES,
    keep_runaway: bool = False,
    progress: Callable[[Sequence[str]], Sequence[str]] = lambda chunks: chunks,
    instruct: str | None = None,
) -> list[ChunkResult]:
    """Each chunk with the same ``seed``, voice and ``instruct``; a runaway chunk retried with seed+1, seed+2, ..."""
    results, failed = [], []
    for index, text in enumerate(progress(chunks)):
        attempts = []
        for attempt in range(retries + 1):
            (utterance,) = synthesizer.synthesize(
                [text], [seed + attempt], lora_scale, max_new_tokens, instructs=[instruct]
            )
            attempts.append((utterance.seed, utterance.frames, utterance.hit_max_tokens))
            if not utterance.hit_max_tokens:
                break
        if utterance.hit_max_tokens:
            failed.append((index, text, [s for s, _, _ in attempts], utterance.max_new_tokens))
        results.append(ChunkResult(index, text, attempts, utterance))
    if failed and not keep_runaway:
        lines = [f"chunk {i + 1} ({t[:60]!r}): seeds {seeds} all reached {cap} frames" for i, t, seeds, cap in failed]
        raise RunawayError(
            "no EOS within the frame cap, nothing written:\n  " + "\n  ".join(lines) + "\nraise --max_new_tokens, "
            "add --retries, or pass --keep_runaway true to keep the capped audio"
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


def speakable_chunks(chunks: Sequence[str]) -> tuple[list[str], list[str]]:
    """(chunks with words, warnings for those without): "?!..." alone has nothing to say; spoken, it is a second
    of whatever the model makes of punctuation."""
    kept = [chunk for chunk in chunks if has_speakable(chunk)]
    dropped = [f"chunk {i + 1} ({chunk[:40]!r}) has no words: skipped" for i, chunk in enumerate(chunks)
               if not has_speakable(chunk)]  # fmt: skip
    return kept, dropped


def check_request(request: SynthesizeRequest) -> list[str]:
    """Every cheap check before any model loads; returns the chunks with words (warning about the others)."""
    if request.output.suffix.lower() != ".wav":
        raise UserError(f"--output {request.output}: give a .wav path")
    if request.output.is_dir():
        raise UserError(f"--output {request.output}: is a folder; give a .wav path")
    problem = unwritable(request.output.parent)  # before any model loads, as prepare checks its output
    if problem:
        raise UserError(f"--output {request.output}: {problem}")
    if request.lora_scale is not None:
        check_lora_scale(request.lora_scale, "--lora_scale")
    for name, value in (("--max_new_tokens", request.max_new_tokens), ("--chunk_chars", request.chunk_chars)):
        if value is not None and value < 1:
            raise UserError(f"{name} {value}: must be >= 1")
    if request.retries < 0 or request.pause_seconds < 0:
        raise UserError("--retries and --pause_seconds must be >= 0")
    # Chunks are cut from what the Synthesizer will speak (its cleaning, per paragraph: blank lines still end chunks).
    cleaned = [Synthesizer.spoken_text(part) for part in re.split(r"\n\s*\n", request.spoken_text())]
    tags = [tag for part in cleaned for tag in part.tags]
    if tags:
        print(f"synthesize: removed non-speech tags {tags} (as prepare does)", file=sys.stderr)
    text = "\n\n".join(part.text for part in cleaned)
    chunks, dropped = speakable_chunks(split_text(text, request.chunk_chars))
    if not chunks:
        what = f"{text.strip()[:40]!r} has no words" if text.strip() else "the text is empty"
        raise UserError(f"{what} (no letter or digit): nothing to say")
    for warning in dropped:
        print(f"synthesize: warning: {warning}", file=sys.stderr)
    return chunks


def synthesize_to_wav(request: SynthesizeRequest, progress=None) -> tuple[Path, list[ChunkResult]]:
    """Check, open the voice, speak every chunk (retrying runaways), write the wav; returns it and the chunk results."""
    chunks = check_request(request)
    opened = open_voice(request.model, request.epoch, request.device, request.base_model, request.speaker)
    scale = opened.default_scale if request.lora_scale is None else request.lora_scale
    if request.lora_scale is not None and not opened.scalable and request.lora_scale != UNSCALED:
        raise UserError(f"--lora_scale: {request.model} has its scale merged in; export again with --lora_scale")
    problem = opened.untrained_layout(request.language)
    if problem and request.strict:
        raise UserError(f"{request.model}: {problem} (--strict refuses it)")
    if problem:
        print(f"synthesize: warning: {problem}", file=sys.stderr)
    for note in opened.notes:
        print(f"synthesize: {note}", file=sys.stderr)
    synthesizer = Synthesizer(opened.tts, opened.voice, language=request.language or "auto")
    start = time.perf_counter()
    results = speak_chunks(
        synthesizer, chunks, request.seed, scale, request.max_new_tokens, request.retries, request.keep_runaway,
        progress or (lambda items: items), request.instruct,
    )  # fmt: skip
    wav = join_chunks(results, request.pause_seconds)
    write_wav(request.output, wav, SAMPLE_RATE)
    for line in report_lines(results, time.perf_counter() - start, len(wav) / SAMPLE_RATE):
        print(f"synthesize: {line}", file=sys.stderr)
    return request.output, results
