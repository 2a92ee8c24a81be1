"""The official custom_voice layout, as upstream's own fine-tuning writes it (docs/upstream_layout.md): LoRA merged
at the chosen scale, ``tts_model_type="custom_voice"``, ``talker_config.spk_id={name: 3000}``, the x-vector in
``talker.model.codec_embedding.weight[3000]`` (``generate`` looks the speaker up through
``talker.get_input_embeddings()``, which is that table), our sampling presets in ``generation_config.json``. Loads
with ``Qwen3TTSModel.from_pretrained(OUT)`` and speaks with ``generate_custom_voice(text=..., speaker=NAME)``.

A run of several speakers exports every one of them: ``spk_id={name_i: 3000 + i}`` (names in the run's order) and
speaker i's x-vector in row 3000 + i, as the official CustomVoice checkpoints hold their speakers.

A run fine-tuned from a CustomVoice checkpoint keeps its presets: their ``spk_id`` rows and ``spk_is_dialect``
flags stay as the base has them, and the new voices take the free rows from 3000 up (a row a preset holds is
skipped; a new voice named like a preset is refused), so ``generate_custom_voice(speaker=PRESET, instruct=...)``
works on the export as on the base, and so does ``speaker=NEW_VOICE``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export_folder import EXPORT_CARD_FILE, EXPORT_METADATA_FILE, MODEL_CONFIG_FILE
from qwen_tts_lit.files import copy_file, copy_tree
from qwen_tts_lit.model.lora import UNSCALED, merge_at_scale
from qwen_tts_lit.runs.weights import LoadedRun
from qwen_tts_lit.synthesis.presets import GenerationPreset
from qwen_tts_lit.upstream.compat import clean_saved_config
from qwen_tts_lit.upstream.loading import checkpoint_dtype, checkpoint_file
from qwen_tts_lit.upstream.tiny import STAMP_FILE

SPEAKER_ROW = 3000  # upstream's fine-tuning puts the speaker in codec row 3000 (above the 2048 audio codes)
GENERATION_CONFIG_FILE = "generation_config.json"
# Base-folder files an export writes itself (or must not carry: the tiny build stamp).
WRITTEN = (MODEL_CONFIG_FILE, GENERATION_CONFIG_FILE, EXPORT_CARD_FILE, EXPORT_METADATA_FILE, STAMP_FILE)
WEIGHTS = ("*.safetensors", "*.bin", "*.index.json")


def merged_model(loaded: LoadedRun, scale: float) -> torch.nn.Module:
    """The plain ``Qwen3TTSForConditionalGeneration`` with the adapters merged at ``scale``."""
    if loaded.peft_model is None:
        if scale != UNSCALED:
            raise UserError(f"--lora_scale {scale}: a full fine-tuning run has no adapter strength to scale")
        return loaded.tts.model
    return merge_at_scale(loaded.peft_model, scale)


def speaker_rows(names: list[str], vocab_size: int, presets: Mapping[str, int] | None = None) -> dict[str, int]:
    """name -> its codec-embedding row: 3000, 3001, ..., skipping the rows the base's presets hold (rows past the
    vocabulary do not exist); a new voice may not take a preset's name."""
    presets = {str(name).lower(): int(row) for name, row in (presets or {}).items()}
    clash = sorted(set(names) & set(presets))
    if clash:
        raise UserError(f"speaker name(s) {', '.join(clash)}: the base checkpoint has preset speakers of that name "
                        f"({', '.join(presets)}); give the new voice another name (--speaker_name)")  # fmt: skip
    free = [row for row in range(SPEAKER_ROW, vocab_size) if row not in set(presets.values())]
    if len(names) > len(free):
        raise UserError(f"{len(names)} speakers: the codec vocabulary ({vocab_size}) has {len(free)} free rows "
                        f"from row {SPEAKER_ROW}")  # fmt: skip
    return dict(zip(names, free, strict=False))


def base_presets(config) -> tuple[dict[str, int], dict[str, str | bool]]:
    """The preset speakers of a base checkpoint's ``Qwen3TTSConfig`` (a CustomVoice one; {} for Base):
    (spk_id, spk_is_dialect)."""
    talker = config.talker_config
    return dict(talker.spk_id or {}), dict(talker.spk_is_dialect or {})


def install_speakers(
    model: torch.nn.Module, voices: dict[str, torch.Tensor], presets: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Write each x-vector into its codec-embedding row (the table ``generate`` reads speakers from), beside the
    presets' rows; the new voices' spk_id."""
    table = model.talker.get_input_embeddings().weight
    rows = speaker_rows(list(voices), table.shape[0], presets)
    with torch.no_grad():
        for name, row in rows.items():
            table[row] = voices[name].to(table.dtype)
    return rows


def write_custom_voice(
    loaded: LoadedRun, scale: float, name: str | None, out: Path, keep_speaker_encoder: bool, preset: GenerationPreset
) -> None:
    """The run's epoch merged at ``scale``, speaking as ``name`` (a one-voice run) or as each of its speakers."""
    voices = loaded.voices or {name: loaded.xvector}
    save_custom_voice(merged_model(loaded, scale), loaded.base_model, voices, out, keep_speaker_encoder, preset)


def save_custom_voice(
    model: torch.nn.Module,
    base_model: str,
    voices: dict[str, torch.Tensor],
    out: Path,
    keep_speaker_encoder: bool,
    preset: GenerationPreset,
) -> None:
    """Like upstream's fine-tuning script: the base folder's files (tokenizer, speech tokenizer, ...) are copied,
    and the config (edited from the base's own), the weights with the speakers' rows and the generation config are
    written."""
    from safetensors.torch import save_file

    presets, dialects = base_presets(model.config)
    rows = install_speakers(model, voices, presets)
    dtype = checkpoint_dtype(base_model)  # merged in float32, saved in the dtype the base ships in
    state = {
        key: (tensor.to(dtype) if tensor.is_floating_point() else tensor).detach().cpu().contiguous()
        for key, tensor in model.state_dict().items()
        if keep_speaker_encoder or not key.startswith("speaker_encoder.")
    }
    copy_support_files(base_model, out)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads(checkpoint_file(base_model, MODEL_CONFIG_FILE).read_text())
    config["tts_model_type"] = "custom_voice"
    config["talker_config"]["spk_id"] = presets | rows  # the presets kept as the base has them
    # generate reads spk_is_dialect for every speaker spoken "auto"/"chinese": the new voices have no dialect
    config["talker_config"]["spk_is_dialect"] = dialects | dict.fromkeys(rows, False)
    (out / MODEL_CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    clean_saved_config(out)
    (out / GENERATION_CONFIG_FILE).write_text(json.dumps(preset.generation_config(), indent=2) + "\n")


def copy_support_files(base_model: str, target: Path) -> None:
    """Every file of the base folder except its weights and the files an export writes itself."""
    folder = checkpoint_file(base_model, MODEL_CONFIG_FILE).parent
    for path in sorted(folder.iterdir()):
        if path.name in WRITTEN or path.name.startswith("."):
            continue
        if path.is_dir():
            copy_tree(path, target / path.name)  # speech_tokenizer/: not fine-tuned, copied byte for byte
        elif not any(path.match(pattern) for pattern in WEIGHTS):
            copy_file(path, target / path.name)
