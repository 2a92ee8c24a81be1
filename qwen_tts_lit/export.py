"""Export one (epoch, lora_scale) of a run in a format people already load.

- ``custom_voice``: a complete checkpoint in the official layout, as upstream's own fine-tuning writes it: LoRA merged
  at the chosen scale, ``tts_model_type="custom_voice"``, ``talker_config.spk_id={name: 3000}``, the x-vector in
  ``talker.model.codec_embedding.weight[3000]`` (``generate`` looks the speaker up through
  ``talker.get_input_embeddings()``, which is that table), our sampling presets in ``generation_config.json``.
  Loads with ``Qwen3TTSModel.from_pretrained(OUT)`` and speaks with ``generate_custom_voice(text=..., speaker=NAME)``.
- ``adapter``: the PEFT folder (``adapter_config.json``, ``adapter_model.safetensors``) at its trained strength, the
  x-vector (``speaker.safetensors``) and ``qwen_tts_lit.json`` (base model, recommended scale, metrics).

Both get a model card (README.md) and ``qwen_tts_lit.json``. Everything is written into a temporary sibling folder
and renamed into place at the end, so an interrupted export never leaves a half-written OUT.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from qwen_tts_lit.data.dataset import prepared_cache_dir
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.run_checkpoint import (
    Choice,
    LoadedRun,
    check_run_dir,
    checkpoint_path,
    choose,
    load_run,
    read_best,
    read_config,
)
from qwen_tts_lit.synthesis import GenerationPreset

FORMATS = ("custom_voice", "adapter")
SPEAKER_ROW = 3000  # upstream's fine-tuning puts the speaker in codec row 3000 (above the 2048 audio codes)
SPEAKER_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")  # upstream lower-cases names before looking them up
METADATA_FILE = "qwen_tts_lit.json"
SPEAKER_FILE = "speaker.safetensors"


@dataclass(frozen=True)
class ExportRequest:
    """What to export and where (the ``export`` subcommand's arguments)."""

    run: Path
    output: Path
    speaker_name: str
    format: str = "custom_voice"
    epoch: int | None = None
    lora_scale: float | None = None
    keep_speaker_encoder: bool = False
    force: bool = False
    base_model: str | None = None
    device: str = "cpu"


def check_speaker_name(name: str) -> str:
    """Lower-case letters, digits, '_' and '-' (the name is a dict key upstream lower-cases on lookup)."""
    if not SPEAKER_NAME.match(name or ""):
        raise UserError(f"--speaker-name {name!r}: use lower-case letters, digits, '_' or '-', starting alphanumeric")
    return name


def check_output(output: Path, force: bool, protected: list[Path]) -> Path:
    """OUT may not exist, or be empty, or (with force) be replaced; it may never hold the run or the base model."""
    output = output.expanduser().resolve()
    for path in protected:
        if path == output or output in path.parents:
            raise UserError(f"--output {output}: contains {path}; choose a folder of its own")
    if output.is_file():
        raise UserError(f"--output {output}: is a file; give a folder")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise UserError(f"--output {output}: exists and is not empty; pass --force to replace it")
    return output


@contextmanager
def staged_folder(output: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``output``; on success it replaces ``output`` (renames), else it is removed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; an export is meant to be shared
    try:
        yield staging
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            os.replace(output, old / output.name)  # keep the old one until the new one is in place
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export(request: ExportRequest, preset: GenerationPreset | None = None) -> Path:
    """Validate everything cheap first, load the run's epoch, write the chosen format into ``request.output``."""
    preset = preset or GenerationPreset()
    if request.format not in FORMATS:
        raise UserError(f"--format {request.format!r}: choose one of {', '.join(FORMATS)}")
    if request.keep_speaker_encoder and request.format != "custom_voice":
        raise UserError("--keep-speaker-encoder: only for --format custom_voice (an adapter never holds base weights)")
    check_speaker_name(request.speaker_name)
    run = check_run_dir(request.run).resolve()
    best = read_best(run)
    choice = choose(best, request.epoch, request.lora_scale, run)
    checkpoint_path(run, choice.epoch)  # fail on a missing epoch before loading anything
    output = check_output(request.output, request.force, [run])
    for note in choice.notes:
        print(f"export: {note}", file=sys.stderr)
    if best is not None and best.get("passed_filters") is False and request.epoch is None:
        print(f"export: warning: best.json says no cell passed its filters ({best.get('reason')})", file=sys.stderr)
    loaded = load_run(run, choice.epoch, device=request.device, dtype="float32", base_model=request.base_model)
    if request.format == "adapter" and loaded.peft_model is None:
        raise UserError(f"{run}: a full fine-tuning run has no adapter; use --format custom_voice")
    metadata = export_metadata(request, loaded, choice, preset, best)
    with staged_folder(output) as staging:
        if request.format == "custom_voice":
            write_custom_voice(loaded, choice.lora_scale, request.speaker_name, staging, request, preset)
        else:
            write_adapter(loaded, staging)
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        (staging / "README.md").write_text(model_card(metadata))
    print(output)
    return output


# ---------------------------------------------------------------------------------------------- custom_voice


def merge_at_scale(loaded: LoadedRun, scale: float) -> torch.nn.Module:
    """The plain ``Qwen3TTSForConditionalGeneration`` with adapters merged at ``scale`` x trained strength."""
    if loaded.peft_model is None:
        if scale != 1.0:
            raise UserError(f"--lora-scale {scale}: a full fine-tuning run has no adapter strength to scale")
        return loaded.tts.model
    from peft.tuners.lora import LoraLayer

    for module in loaded.peft_model.modules():
        if isinstance(module, LoraLayer):
            module.scale_layer(scale)  # scaling *= scale, exactly what lora_scale() does at inference
    return loaded.peft_model.merge_and_unload()


def write_custom_voice(
    loaded: LoadedRun, scale: float, name: str, out: Path, request: ExportRequest, preset: GenerationPreset
) -> None:
    """The official custom_voice layout (FACTS.md section 1), loadable by ``Qwen3TTSModel.from_pretrained``.

    Like upstream's fine-tuning script: the base folder's files (tokenizer, speech tokenizer, ...) are copied, and
    config.json (edited from the base's own), model.safetensors and generation_config.json are written.
    """
    from safetensors.torch import save_file

    from qwen_tts_lit.compat import clean_saved_config

    base = BaseFiles(loaded.base_model)
    model = merge_at_scale(loaded, scale)
    with torch.no_grad():
        model.talker.get_input_embeddings().weight[SPEAKER_ROW] = loaded.xvector.to(model.dtype)
    dtype = base.dtype()  # merged in float32, saved in the dtype the base ships in
    state = {
        key: (tensor.to(dtype) if tensor.is_floating_point() else tensor).detach().cpu().contiguous()
        for key, tensor in model.state_dict().items()
        if request.keep_speaker_encoder or not key.startswith("speaker_encoder.")
    }
    base.copy_support_files(out)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads(base.file("config.json").read_text())
    config["tts_model_type"] = "custom_voice"
    config["talker_config"]["spk_id"] = {name: SPEAKER_ROW}
    config["talker_config"]["spk_is_dialect"] = {name: False}  # generate reads it for language "auto"/"chinese"
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    clean_saved_config(out)
    (out / "generation_config.json").write_text(json.dumps(preset.generation_config(), indent=2) + "\n")


class BaseFiles:
    """Files of the base checkpoint (a local folder, or a hub id already in the HF cache)."""

    WRITTEN = ("config.json", "generation_config.json", "README.md", "qwen_tts_lit_tiny.json")  # ours, or not ours
    WEIGHTS = ("*.safetensors", "*.bin", "*.index.json")

    def __init__(self, base_model: str) -> None:
        from qwen_tts_lit.model.load import resolve_model_source

        self.source = resolve_model_source(base_model)

    def file(self, name: str) -> Path:
        local = Path(self.source).expanduser() / name
        if local.is_file():
            return local
        from transformers.utils import cached_file

        found = cached_file(self.source, name)
        if found is None:
            raise UserError(f"{self.source}: has no {name}")
        return Path(found)

    def dtype(self) -> torch.dtype:
        """The dtype the base checkpoint ships in (float32 for tiny, bfloat16 for the released models)."""
        config = json.loads(self.file("config.json").read_text())
        return getattr(torch, config.get("dtype") or config.get("torch_dtype") or "float32")

    def copy_support_files(self, target: Path) -> None:
        """Every file of the base folder except its weights and the files an export writes itself."""
        folder = self.file("config.json").parent
        for path in sorted(folder.iterdir()):
            if path.name in self.WRITTEN or path.name.startswith("."):
                continue
            if path.is_dir():
                shutil.copytree(path, target / path.name)  # speech_tokenizer/: not fine-tuned, copied byte for byte
            elif not any(path.match(pattern) for pattern in self.WEIGHTS):
                shutil.copy2(path, target / path.name)


# ---------------------------------------------------------------------------------------------- adapter


def write_adapter(loaded: LoadedRun, out: Path) -> None:
    """PEFT adapter at its trained strength + the x-vector; scale it at load time (``qwen_tts_lit.json``)."""
    from safetensors.torch import save_file

    loaded.peft_model.save_pretrained(out)
    config_path = out / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = loaded.base_model  # the run's source ("tiny", a hub id), not a cache path
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({"xvector": loaded.xvector.contiguous()}, str(out / SPEAKER_FILE))


# ---------------------------------------------------------------------------------------------- metadata


def export_metadata(
    request: ExportRequest, loaded: LoadedRun, choice: Choice, preset: GenerationPreset, best: dict | None
) -> dict:
    """Everything the model card and ``synthesize`` need: provenance, scale, metrics, the exact command."""
    metrics, source = metrics_for(loaded.run_dir, best, choice)
    config = read_config(loaded.run_dir)
    return {
        "format": request.format,
        "base_model": loaded.base_model,
        "finetune": loaded.finetune,
        "speaker_name": request.speaker_name,
        "speaker_row": SPEAKER_ROW if request.format == "custom_voice" else None,
        "epoch": choice.epoch,
        "lora_scale": choice.lora_scale,
        "lora_scale_merged": request.format == "custom_voice",
        "language_tag": bool((config.get("data") or {}).get("use_language_tag", False)),
        "metrics": metrics,
        "metrics_source": source,
        "selection": (best or {}).get("reason") if source == "best.json" else None,
        "data_minutes": data_minutes(config),
        "run": str(loaded.run_dir),
        "generation": asdict(preset),
        "command": export_command(request, choice),
    }


def export_command(request: ExportRequest, choice: Choice) -> str:
    """The command that reproduces this export, with the epoch and scale spelled out."""
    args = ["python", "-m", "qwen_tts_lit", "export", "--run", str(request.run), "--epoch", str(choice.epoch)]
    args += ["--lora-scale", f"{choice.lora_scale:g}", "--output", str(request.output)]
    args += ["--speaker-name", request.speaker_name, "--format", request.format]
    if request.keep_speaker_encoder:
        args.append("--keep-speaker-encoder")
    if request.base_model:
        args += ["--base-model", request.base_model]
    return shlex.join(args)


def metrics_for(run_dir: Path, best: dict | None, choice: Choice) -> tuple[dict, str | None]:
    """best.json's metrics when it chose this cell, else this cell's aggregate of eval/rows.jsonl (same rule code)."""
    if best is not None and int(best["epoch"]) == choice.epoch and float(best["lora_scale"]) == choice.lora_scale:
        return dict(best.get("metrics") or {}), "best.json"
    from qwen_tts_lit.evaluation import read_rows
    from qwen_tts_lit.metrics.selection import aggregate

    for cell in aggregate(read_rows(run_dir)):
        if cell["epoch"] == choice.epoch and cell["lora_scale"] == choice.lora_scale:
            metrics = {k: v for k, v in cell.items() if k not in ("epoch", "lora_scale")}
            return metrics, f"eval/rows.jsonl ({cell['n']} utterances)"
    return {}, None


def data_minutes(config: dict) -> dict | None:
    """Train/val minutes from the prepared dataset's report.json, when it can still be found."""
    data = config.get("data") or {}
    model = (config.get("model") or {}).get("init_args", config.get("model") or {}).get("model", "tiny")
    candidates = []
    if data.get("prepared_dir"):
        candidates.append(Path(data["prepared_dir"]).expanduser())
    if data.get("raw"):
        candidates.append(prepared_cache_dir(data["raw"], model))
    for folder in candidates:
        report = folder / "report.json"
        if report.is_file():
            return dict(json.loads(report.read_text()).get("minutes") or {}) or None
    return None


def model_card(meta: dict) -> str:
    """README.md for the export folder."""
    name, fmt = meta["speaker_name"], meta["format"]
    minutes = meta["data_minutes"]
    data = ", ".join(f"{v:.1f} min {k}" for k, v in minutes.items() if k in ("train", "val")) if minutes else "unknown"
    if meta["metrics"]:
        rows = "\n".join(f"| {k} | {_number(v)} |" for k, v in meta["metrics"].items())
        source = meta["metrics_source"]
        metrics = f"Measured by the run's evaluation ({source}):\n\n| metric | value |\n|---|---|\n{rows}\n"
        if meta.get("selection"):
            metrics += f"\nSelection: {meta['selection']}.\n"
    else:
        metrics = "No evaluation metrics were recorded for this epoch and scale.\n"
    how = "merged into the weights" if meta["lora_scale_merged"] else "apply at load time"
    scale = f"{meta['lora_scale']:g} ({how})"
    return f"""# {name}: Qwen3-TTS fine-tuned voice ({fmt})

| | |
|---|---|
| base model | `{meta["base_model"]}` |
| fine-tuning | {meta["finetune"]} |
| training data | {data} |
| epoch | {meta["epoch"]} |
| LoRA scale | {scale} |
| language tag in training | {meta["language_tag"]} |

{metrics}
## Use

{_usage(fmt, name, meta)}

Sampling presets (seed guide): temperature {meta["generation"]["temperature"]}, top_p {meta["generation"]["top_p"]},
top_k {meta["generation"]["top_k"]}, repetition_penalty {meta["generation"]["repetition_penalty"]}. Long texts: use
`python -m qwen_tts_lit synthesize --model THIS_FOLDER --text-file F --output out.wav` (sentence chunks, one seed
and one speaker embedding for all, runaway chunks retried).

## Reproduce

```
{meta["command"]}
```
Source run: `{meta["run"]}`.
"""


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a" if value is None else str(value)


def _usage(fmt: str, name: str, meta: dict) -> str:
    if fmt == "custom_voice":
        return f"""```python
from qwen_tts import Qwen3TTSModel
tts = Qwen3TTSModel.from_pretrained("THIS_FOLDER")
wavs, sr = tts.generate_custom_voice(text="Hello there.", speaker="{name}")
```"""
    return f"""```python
from peft import PeftModel
from peft.helpers import rescale_adapter_scale
from qwen_tts import Qwen3TTSModel
from safetensors.torch import load_file
tts = Qwen3TTSModel.from_pretrained("{meta["base_model"]}")  # the base checkpoint
model = PeftModel.from_pretrained(tts.model, "THIS_FOLDER")  # adapters injected into tts.model in place
xvector = load_file("THIS_FOLDER/{SPEAKER_FILE}")["xvector"]
# generate with an x-vector-only voice clone prompt, inside rescale_adapter_scale(model, {meta["lora_scale"]:g})
```"""
