"""What an export says about itself: the metadata file (provenance, scale, metrics, the exact command) and the model
card rendered from it."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

from qwen_tts_lit.data.dataset import prepared_cache_dir
from qwen_tts_lit.export.custom_voice import SPEAKER_ROW
from qwen_tts_lit.export.request import ExportRequest
from qwen_tts_lit.metrics.selection import aggregate
from qwen_tts_lit.runs.choice import Choice
from qwen_tts_lit.runs.config import data_args, model_args, read_config
from qwen_tts_lit.runs.folder import ROWS_FILE
from qwen_tts_lit.runs.records import best_path, read_rows
from qwen_tts_lit.runs.speaker import SPEAKER_FILE
from qwen_tts_lit.runs.weights import LoadedRun
from qwen_tts_lit.synthesis.presets import GenerationPreset


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
        "speaker_row": SPEAKER_ROW if request.format == "custom_voice" and not loaded.voices else None,
        **({"speakers": _speaker_index(list(loaded.voices), request.format)} if loaded.voices else {}),
        "epoch": choice.epoch,
        "lora_scale": choice.lora_scale,
        "lora_scale_merged": request.format == "custom_voice",
        "language_tag": bool(data_args(config).get("use_language_tag", False)),
        "metrics": metrics,
        "metrics_source": source,
        "selection": (best or {}).get("reason") if source == best_path(loaded.run_dir).name else None,
        "data_minutes": data_minutes(config),
        "run": str(loaded.run_dir),
        "generation": asdict(preset),
        "command": export_command(request, choice),
    }


def _speaker_index(names: list[str], fmt: str) -> dict[str, int]:
    """Several speakers: each one's codec-embedding row (custom_voice) or row of the x-vector file (adapter)."""
    first = SPEAKER_ROW if fmt == "custom_voice" else 0
    return {name: first + i for i, name in enumerate(names)}


def export_command(request: ExportRequest, choice: Choice) -> str:
    """The command that reproduces this export, with the epoch and scale spelled out."""
    args = ["python", "-m", "qwen_tts_lit", "export", "--run", str(request.run), "--epoch", str(choice.epoch)]
    args += ["--lora-scale", f"{choice.lora_scale:g}", "--output", str(request.output)]
    args += ["--speaker-name", request.speaker_name] if request.speaker_name else []
    args += ["--format", request.format]
    if request.keep_speaker_encoder:
        args.append("--keep-speaker-encoder")
    if request.base_model:
        args += ["--base-model", request.base_model]
    return shlex.join(args)


def metrics_for(run_dir: Path, best: dict | None, choice: Choice) -> tuple[dict, str | None]:
    """(metrics, their source): the chosen cell's when the run chose this cell, else this cell's aggregate of the
    evaluation rows (the same rule code); ({}, None) when the cell was never evaluated."""
    if best is not None and int(best["epoch"]) == choice.epoch and float(best["lora_scale"]) == choice.lora_scale:
        return dict(best.get("metrics") or {}), best_path(run_dir).name
    for cell in aggregate(read_rows(run_dir)):
        if cell["epoch"] == choice.epoch and cell["lora_scale"] == choice.lora_scale:
            metrics = {k: v for k, v in cell.items() if k not in ("epoch", "lora_scale")}
            return metrics, f"{ROWS_FILE} ({cell['n']} utterances)"
    return {}, None


def data_minutes(config: dict) -> dict | None:
    """Train/val minutes from the prepared dataset's report.json, when it can still be found."""
    data, model = data_args(config), model_args(config).get("model")
    candidates = []
    if data.get("prepared_dir"):
        candidates.append(Path(data["prepared_dir"]).expanduser())
    if data.get("raw") and model:
        candidates.append(prepared_cache_dir(data["raw"], model))
    for folder in candidates:
        report = folder / "report.json"
        if report.is_file():
            return dict(json.loads(report.read_text()).get("minutes") or {}) or None
    return None


def model_card(meta: dict) -> str:
    """The export folder's model card (Markdown)."""
    fmt = meta["format"]
    name = meta["speaker_name"] or ", ".join(meta.get("speakers") or {})
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
    speakers = list(meta.get("speakers") or {})
    if fmt == "custom_voice":
        which = f'"{speakers[0]}"  # or any of {", ".join(speakers)}' if speakers else f'"{name}"'
        return f"""```python
from qwen_tts import Qwen3TTSModel
tts = Qwen3TTSModel.from_pretrained("THIS_FOLDER")
wavs, sr = tts.generate_custom_voice(text="Hello there.", speaker={which})
```"""
    if speakers:
        tensor = f'["xvectors"]  # (S, D): row i is speaker i of the metadata "speakers": {", ".join(speakers)}'
    else:
        tensor = '["xvector"]'

    return f"""```python
from peft import PeftModel
from peft.helpers import rescale_adapter_scale
from qwen_tts import Qwen3TTSModel
from safetensors.torch import load_file
tts = Qwen3TTSModel.from_pretrained("{meta["base_model"]}")  # the base checkpoint
model = PeftModel.from_pretrained(tts.model, "THIS_FOLDER")  # adapters injected into tts.model in place
xvector = load_file("THIS_FOLDER/{SPEAKER_FILE}"){tensor}
# generate with an x-vector-only voice clone prompt, inside rescale_adapter_scale(model, {meta["lora_scale"]:g})
```"""
