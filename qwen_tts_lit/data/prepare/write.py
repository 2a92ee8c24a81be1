"""``prepare``'s write phase, clip by clip: clean each clip again from its file, encode it (codes cached by a hash of
audio and tokenizer), and write its audio and codes where :mod:`~qwen_tts_lit.data.prepare.outputs` says; also the
folder's set-up and the removal of clips an earlier run left. Every file is written under a temporary name and
renamed; a file already holding the same bytes is left alone, so a re-run touches nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from qwen_tts_lit.audio import decoder_quiet
from qwen_tts_lit.data.prepare import codec
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, CleanAudio, clean_audio, pcm16_to_float
from qwen_tts_lit.data.prepare.checks import Clip
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.outputs import (
    AUDIO_DIR,
    CACHE_DIR,
    CODES_DIR,
    INSTRUCT_FIELD,
    OUTPUT_FILES,
    audio_path,
    clip_files,
    codes_path,
)
from qwen_tts_lit.data.prepare.plan import Plan, log, progress_bar
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import remove_temporaries, wav_bytes, write_atomic


def write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds these bytes (a re-run touches nothing)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    write_atomic(path, data)


def read_clean(path: Path, options: PrepareOptions, trailing_silence_s: float, frame: int) -> CleanAudio:
    import soundfile as sf

    with decoder_quiet():  # libmpg123's own lines about mp3 frames it decodes anyway
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    cleaned = clean_audio(
        data, rate, target_rate=options.sample_rate, threshold_db=options.trim_threshold_db,
        margin_s=options.trim_margin_s, trailing_silence_s=trailing_silence_s, frame=frame,
    )  # fmt: skip
    if cleaned is None:  # the check phase found speech in this very file
        raise UserError(f"{path}: changed while prepare was running (it is silent now)")
    return cleaned


def prepare_dirs(output: Path) -> tuple[Path, Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    (output / CACHE_DIR).mkdir(exist_ok=True)  # marks DIR as a prepare output before anything else is written
    for name in OUTPUT_FILES:
        (output / name).unlink(missing_ok=True)
    dirs = output / AUDIO_DIR, output / CODES_DIR, output / CACHE_DIR / CODES_DIR
    for directory in (output, *dirs):
        directory.mkdir(exist_ok=True)
        remove_temporaries(directory)  # from a killed run
    return dirs


def remove_strays(directory: Path, keep: set[str]) -> None:
    """Files of clips that an earlier run of a different input wrote, so DIR holds exactly the listed clips."""
    for path in directory.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()


def _entry(clip: Clip, pcm: np.ndarray, speech_samples: int, rate: int, several: bool) -> dict:
    speaker = {"speaker": clip.speaker} if several else {}  # one speaker: rows as they always were
    return {
        "id": clip.id,
        "text": clip.text,
        "language": clip.language,
        **speaker,
        **({INSTRUCT_FIELD: clip.instruct} if clip.instruct else {}),  # plain rows as they always were
        **clip_files(clip.id),
        "num_frames": len(pcm) // FRAME_SAMPLES,
        "duration_s": len(pcm) / rate,
        "speech_samples": speech_samples,  # the recording as recorded, before the appended silence
        "source_audio": clip.source_audio,
        "source_line": clip.source_line,
    }


def encode_clips(
    plan: Plan, model, options: PrepareOptions, dirs: tuple, fingerprint: str, encoder=None
) -> tuple[dict, dict]:
    """Clean, write and encode every clip in length-sorted batches; return (manifest entries, train x-vectors).
    Codes come from ``model``'s speech tokenizer, x-vectors from ``encoder``'s speaker encoder (default ``model``)."""
    encoder = model if encoder is None else encoder
    cache_dir = dirs[2]
    speech_tokenizer, rate = model.model.speech_tokenizer, options.sample_rate
    cache = codec.CodeCache(cache_dir, fingerprint)
    if plan.speaker_references is None:
        need_xvector = {clip.id: not plan.references for clip in plan.clips}
    else:  # a speaker without a reference recording gets the mean of its train clips
        need_xvector = {clip.id: not plan.speaker_references.get(clip.speaker) for clip in plan.clips}
    entries, xvectors, encoded = {}, {}, 0
    order = sorted(plan.clips, key=lambda clip: (clip.speech_s, clip.id))
    with progress_bar(options, len(order), "encoding") as bar:
        for start in range(0, len(order), options.batch_size):
            batch = order[start : start + options.batch_size]
            cleaned = [
                read_clean(clip.audio_path, options, options.trailing_silence_s, FRAME_SAMPLES) for clip in batch
            ]
            keys = [cache.key(item.pcm) for item in cleaned]
            codes = [cache.get(key) for key in keys]
            missing = [i for i, found in enumerate(codes) if found is None]
            if missing:
                for i, new in zip(
                    missing, codec.encode(speech_tokenizer, [cleaned[i].pcm for i in missing], rate), strict=True
                ):
                    cache.put(keys[i], new)
                    codes[i] = new
                encoded += len(missing)
            for clip, item, clip_codes in zip(batch, cleaned, codes, strict=True):
                entry = _entry(clip, item.pcm, item.speech_samples, rate, plan.speaker_references is not None)
                if clip_codes.shape[0] != entry["num_frames"]:
                    raise RuntimeError(f"{clip.id}: {clip_codes.shape[0]} frames for {entry['num_frames']} of audio")
                write_if_changed(audio_path(options.output, entry), wav_bytes(item.pcm, rate))
                write_if_changed(codes_path(options.output, entry), codec.npy_bytes(clip_codes))
                entries[clip.id] = entry
                if need_xvector[clip.id] and clip.id not in plan.val_ids:
                    speech = pcm16_to_float(item.pcm[: item.speech_samples])
                    xvectors[clip.id] = codec.speaker_embedding(encoder, speech, rate)
            bar.update(len(batch))
    log(options, f"codes: {len(order) - encoded} clip(s) reused from {cache_dir}, {encoded} encoded")
    return entries, xvectors


def jsonl_bytes(entries: list[dict]) -> bytes:
    return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()
