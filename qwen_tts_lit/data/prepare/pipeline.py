"""``prepare``: raw clips + transcripts -> a checked, cleaned, codec-coded dataset, in one pass before any training.

Two phases. :func:`check_input` reads and measures every row and collects every problem; it writes nothing, and
raises :class:`~qwen_tts_lit.errors.UserError` (exit code 2) listing them all when any is an error. Only then does
:func:`write_dataset` load the model and write DIR, laid out as :mod:`~qwen_tts_lit.data.prepare.outputs` says. The
speaker file holds the x-vector (speaker_file: tensor ``xvector``, (D,) float32) + metadata ``source``; with several
speakers one x-vector per speaker (``xvectors`` (S, D), names in order).

The phases live in :mod:`~.plan` (the check phase), :mod:`~.write` (each clip cleaned, encoded and written) and
:mod:`~.speakers` (the x-vectors); this module is their order. An input whose rows name several speakers is checked
and split per speaker, and its manifest rows carry their ``speaker``; an input of one speaker is written exactly as
before.

Every file is written under a temporary name and renamed. ``train.jsonl`` is removed first and written last, so
DIR holds a finished dataset exactly when ``train.jsonl`` exists.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from qwen_tts_lit.data.prepare import codec
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.outputs import (
    CONFIG,
    FORMAT,
    REPORT_JSON,
    REPORT_TXT,
    SPEAKER_FILE,
    TRAIN_MANIFEST,
    VAL_MANIFEST,
    audio_path,
    codes_path,
)
from qwen_tts_lit.data.prepare.plan import Plan, check_input
from qwen_tts_lit.data.prepare.report import build_report, report_bytes, summary_text
from qwen_tts_lit.data.prepare.speakers import build_speaker_file
from qwen_tts_lit.data.prepare.write import encode_clips, jsonl_bytes, prepare_dirs, remove_strays
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.upstream.loading import resolve_device, resolve_model_source
from qwen_tts_lit.upstream.pairings import speaker_encoder_source


def prepare(options: PrepareOptions) -> Path:
    """Check everything, then write the prepared dataset into ``options.output``; return its path.

    Raises ``UserError`` listing every problem (file, line, field, reason) when the input is not usable; DIR is
    then left untouched. Usable from a notebook: ``prepare(PrepareOptions(input=..., output=..., model=...))``.
    """
    options = replace(options, model=resolve_model_source(options.model))  # "tiny": the cached tiny checkpoint
    plan = check_input(options)
    device = resolve_device(options.device)
    model = codec.load_model(options.model, device)
    rate = model.model.speech_tokenizer.get_input_sample_rate()
    if rate != options.sample_rate:
        raise UserError(f"--sample_rate {options.sample_rate}: the speech tokenizer of {options.model} reads {rate} Hz")
    source = speaker_encoder_source(options.model, model.model.config, options.speaker_encoder_model)
    encoder = model if source == options.model else codec.load_model(resolve_model_source(source), device)
    # Recorded in prepare_config.json's options: which speaker encoder the x-vectors are from.
    options = replace(options, speaker_encoder_model=None if encoder is model else source)
    return write_dataset(plan, model, options, encoder)


def write_dataset(plan: Plan, model, options: PrepareOptions, encoder=None) -> Path:
    """The write phase (after :func:`check_input`): audio, codes, x-vector, manifests, report. Returns DIR.
    ``model`` gives the codes, ``encoder`` (default: ``model``) the x-vectors: a CustomVoice checkpoint's paired
    Base (``upstream.pairings``)."""
    output = options.output
    encoder = model if encoder is None else encoder
    if encoder.model.speaker_encoder is None:
        raise UserError(f"{options.speaker_encoder_model or options.model}: has no speaker encoder; name a Base "
                        "checkpoint with --speaker_encoder_model")  # fmt: skip
    dirs = prepare_dirs(output)
    fingerprint = codec.tokenizer_fingerprint(model.model.speech_tokenizer)
    entries, train_xvectors = encode_clips(plan, model, options, dirs, fingerprint, encoder)
    speaker_file, speaker_info, per_speaker = build_speaker_file(plan, encoder, options, train_xvectors)
    splits = {
        "train": [entries[key] for key in sorted(entries) if key not in plan.val_ids],
        "val": [entries[key] for key in sorted(entries) if key in plan.val_ids],
    }
    speech_s = {clip.id: clip.speech_s for clip in plan.clips}
    report = build_report(
        input_path=str(options.input), input_format=plan.input_format, rows=plan.rows, entries=splits,
        speech_s=speech_s, words={clip.id: clip.words for clip in plan.clips},
        speaker=speaker_info, warnings=plan.warnings, dropped=plan.dropped, speakers=per_speaker,
    )  # fmt: skip
    config = {
        "format": FORMAT,
        "model": options.model,
        "codec_fingerprint": fingerprint,
        "sample_rate": options.sample_rate,
        "frame_samples": FRAME_SAMPLES,
        "speaker_dim": speaker_info["dim"],
        **({"speakers": list(per_speaker)} if per_speaker else {}),
        # Not where DIR is nor whether bars were drawn: a copied or moved DIR keeps a matching config.
        "options": {k: v for k, v in options.to_json().items() if k not in ("output", "progress")},
    }
    remove_strays(dirs[0], {audio_path(output, entry).name for entry in entries.values()})
    remove_strays(dirs[1], {codes_path(output, entry).name for entry in entries.values()})
    files = {
        SPEAKER_FILE: speaker_file,
        REPORT_JSON: report_bytes(report),
        REPORT_TXT: summary_text(report).encode(),
        VAL_MANIFEST: jsonl_bytes(splits["val"]),
        CONFIG: (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode(),
        TRAIN_MANIFEST: jsonl_bytes(splits["train"]),  # last: its presence means DIR is complete
    }
    for name, data in files.items():
        write_atomic(output / name, data)
    return output
