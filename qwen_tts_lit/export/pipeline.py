"""``export``: open the run, choose its cell, validate everything cheap first, load the epoch, write the chosen
format and its card, atomically."""

from __future__ import annotations

import sys
from pathlib import Path

from qwen_tts_lit.data.dataset import prepared_dir_of
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export.adapter import write_adapter
from qwen_tts_lit.export.card import data_minutes, export_metadata, model_card
from qwen_tts_lit.export.custom_voice import write_custom_voice
from qwen_tts_lit.export.gguf import write_gguf_export
from qwen_tts_lit.export.request import ExportRequest
from qwen_tts_lit.export.staging import check_output
from qwen_tts_lit.export_folder import EXPORT_CARD_FILE, write_metadata
from qwen_tts_lit.files import StorageError, staged_folder, storage_error, write_atomic
from qwen_tts_lit.runs.folder import BEST_FILE
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.runs.weights import load_run
from qwen_tts_lit.synthesis.presets import GenerationPreset
from qwen_tts_lit.upstream.loading import resolve_device


def export(request: ExportRequest, preset: GenerationPreset | None = None) -> Path:
    """Validate everything cheap first, load the run's epoch, write the chosen format into ``request.output``."""
    preset = preset or GenerationPreset()
    request.check()
    run = Run.open(request.run, absolute=True)
    choice = run.choose(request.epoch, request.lora_scale)
    run.checkpoint(choice.epoch)  # fail on a missing epoch before loading anything
    output = check_output(request.output, request.force, [run.path])
    for note in choice.notes:
        print(f"export: {note}", file=sys.stderr)
    best = run.best
    if best is not None and best.get("passed_filters") is False and request.epoch is None:
        print(f"export: warning: {run.path / BEST_FILE} says no cell passed its filters ({best.get('reason')})",
              file=sys.stderr)  # fmt: skip
    request.check_speakers(run.speakers)  # before the weights load
    loaded = load_run(run, choice.epoch, resolve_device(request.device), "float32", request.base_model)
    request.check_speakers(list(loaded.voices))  # what the epoch itself holds
    if request.format == "adapter" and loaded.peft_model is None:
        raise UserError(f"{run.path}: a full fine-tuning run has no adapter; use --format custom_voice")
    minutes = data_minutes(prepared_dir_of(run.data, run.model_source))
    metadata = export_metadata(request, run, loaded, choice, preset, minutes)
    try:
        with staged_folder(output) as staging:
            if request.format == "custom_voice":
                write_custom_voice(loaded, choice.lora_scale, request.speaker_name, staging,
                                   request.keep_speaker_encoder, preset)  # fmt: skip
            elif request.format == "gguf":
                write_gguf_export(loaded, choice.lora_scale, request.speaker_name, staging, preset)
            else:
                write_adapter(loaded, staging)
            write_metadata(staging, metadata)  # marks it ours
            write_atomic(staging / EXPORT_CARD_FILE, model_card(metadata))
    except Exception as error:  # the model files are written by torch / safetensors: name OUT, not their temporary
        failure = storage_error(error, output)
        if failure is None:
            raise
        raise StorageError(f"{failure}; {output} is unchanged") from error
    print(output)
    return output
