"""Open a voice to speak with, by what a folder holds: a run folder (an epoch's weights), an adapter export (base
model + PEFT adapter + x-vector) or a custom_voice export (an official checkpoint with a named speaker)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export_folder import ADAPTER_CONFIG_FILE, MODEL_CONFIG_FILE, read_metadata
from qwen_tts_lit.model.layout import TAGGED, call_prefix, language_tag_mode, trained_prefixes
from qwen_tts_lit.model.lora import UNSCALED, has_lora
from qwen_tts_lit.runs.folder import is_run_dir
from qwen_tts_lit.synthesis.synthesizer import Voice


@dataclass
class OpenedVoice:
    """A model ready to speak, its voice, and the LoRA scale to use unless the user gives one."""

    tts: object
    voice: Voice
    default_scale: float
    language_tag: str = "off"  # the run's data.language_tag: which codec prefixes (calls) it was trained on
    notes: list[str] = field(default_factory=list)

    @property
    def scalable(self) -> bool:
        """Whether another LoRA scale can be asked for: the model has adapters (a run's LoRA epoch, an adapter
        export). A full fine-tune has none, a custom_voice export has its scale merged in. Read off the model, so
        it cannot disagree with what will speak."""
        return has_lora(self.tts.model)

    def untrained_layout(self, language: str | None) -> str | None:
        """Why speaking with ``language`` uses a codec prefix this model never trained on; None when it did."""
        trained = trained_prefixes(self.language_tag)
        if call_prefix(language) in trained:
            return None
        if TAGGED in trained:
            return (f"trained with data.language_tag {self.language_tag}: the language in the codec prefix; without "
                    "--language (auto) the prefix is one it never saw: pass --language (e.g. english)")  # fmt: skip
        return (f"--language {language}: trained with data.language_tag off (the language omitted, as "
                "generate_custom_voice(text, speaker) does); an explicit language builds a codec prefix it never "
                "saw: omit --language")  # fmt: skip


def preset_voice(tts, speaker: str | None, voices: dict | None) -> Voice | None:
    """A preset speaker of the (CustomVoice) checkpoint by name, when ``speaker`` names one and no trained voice has
    that name (a trained voice wins: it is what the run is for); else None."""
    if speaker is None or speaker.lower() in (voices or {}):
        return None
    presets = {str(name).lower() for name in tts.model.get_supported_speakers() or ()}
    return Voice(speaker=speaker.lower()) if speaker.lower() in presets else None


def open_voice(
    model: str, epoch: int | None = None, device: str = "cpu", base_model: str | None = None, speaker: str | None = None
) -> OpenedVoice:
    """A run folder (its chosen epoch, or ``epoch``), an adapter export or a custom_voice export."""
    path = Path(model).expanduser()
    if not path.is_dir():
        raise UserError(f"--model {model}: folder not found (give a run folder or an export folder)")
    if is_run_dir(path):
        return _open_run(path, epoch, device, base_model, speaker)
    if epoch is not None:
        raise UserError(f"--epoch: only for a run folder; {path} is an export")
    meta = read_metadata(path)
    if (path / ADAPTER_CONFIG_FILE).is_file():
        return _open_adapter(path, meta, device, base_model, speaker)
    if (path / MODEL_CONFIG_FILE).is_file():
        return _open_custom_voice(path, meta, device, speaker)
    if meta.get("format") == "gguf":
        raise UserError(f"--model {path}: a GGUF export is spoken by qwentts.cpp (its README.md, docs/serving.md); "
                        "synthesize takes a run folder, an adapter or a custom_voice export")  # fmt: skip
    raise UserError(f"--model {path}: neither a run folder nor an export (no {MODEL_CONFIG_FILE} or adapter)")


def _open_run(path: Path, epoch: int | None, device: str, base_model: str | None, speaker: str | None) -> OpenedVoice:
    from qwen_tts_lit.runs.run import Run
    from qwen_tts_lit.runs.weights import load_run

    run = Run.open(path)
    choice = run.choose(epoch)  # the scale is the caller's (or the run's chosen one)
    loaded = load_run(run, choice.epoch, device=device, base_model=base_model)
    voice = preset_voice(loaded.tts, speaker, loaded.voices) or Voice(xvector=loaded.voice(speaker))
    return OpenedVoice(loaded.tts, voice, choice.lora_scale, run.language_tag, list(choice.notes))


def _open_adapter(path: Path, meta: dict, device: str, base_model: str | None, speaker: str | None) -> OpenedVoice:
    from peft import PeftModel

    from qwen_tts_lit.speaker_file import pick_voice, read_voices
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    base = (
        base_model
        or meta.get("base_model")
        or json.loads((path / ADAPTER_CONFIG_FILE).read_text()).get("base_model_name_or_path")
    )
    if not base:
        raise UserError(f"{path}: names no base model; pass --base_model")
    xvector, voices = read_voices(path, "adapter export")
    tts = load_qwen3_tts(base, "float32", "sdpa", device)
    voice = preset_voice(tts, speaker, voices) or Voice(xvector=pick_voice(xvector, voices, speaker, path))
    PeftModel.from_pretrained(tts.model, str(path)).eval()  # injects the adapters into tts.model in place
    scale = float(meta.get("lora_scale", UNSCALED))
    return OpenedVoice(tts, voice, scale, language_tag_mode(meta.get("language_tag")))


def _open_custom_voice(path: Path, meta: dict, device: str, speaker: str | None) -> OpenedVoice:
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    config = json.loads((path / MODEL_CONFIG_FILE).read_text())
    if config.get("tts_model_type") != "custom_voice":
        raise UserError(
            f"{path}: a {config.get('tts_model_type')!r} checkpoint has no fine-tuned voice; give a run folder, "
            "an adapter export or a custom_voice export"
        )
    speakers = sorted((config.get("talker_config") or {}).get("spk_id") or {})
    # The voices fine-tuned into it (our metadata); the base's presets beside them are spoken only when named.
    trained = [meta["speaker_name"]] if meta.get("speaker_name") else list(meta.get("speakers") or {})
    if speaker is None:
        candidates = [name for name in trained if name in speakers] or speakers
        if len(candidates) != 1:
            raise UserError(f"{path}: has speakers {speakers}; pick one with --speaker")
        speaker = candidates[0]
    tts = load_qwen3_tts(str(path), "float32", "sdpa", device)
    notes = [f"lora_scale {meta['lora_scale']:g} is merged into this export"] if "lora_scale" in meta else []
    tag = language_tag_mode(meta.get("language_tag"))
    return OpenedVoice(tts, Voice(speaker=speaker), UNSCALED, tag, notes)
