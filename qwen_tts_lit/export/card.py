"""What an export says about itself: the metadata file (provenance, scale, metrics, the exact command) and the model
card rendered from it."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

from qwen_tts_lit.data.prepare.outputs import REPORT_JSON
from qwen_tts_lit.export.custom_voice import base_presets, speaker_rows
from qwen_tts_lit.export.request import MERGED_FORMATS, ExportRequest
from qwen_tts_lit.metrics.selection import aggregate
from qwen_tts_lit.model.layout import TAGGED, UNTAGGED, trained_prefixes
from qwen_tts_lit.runs.choice import Choice
from qwen_tts_lit.runs.folder import BEST_FILE, ROWS_FILE
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.runs.weights import LoadedRun
from qwen_tts_lit.speaker_file import SPEAKER_FILE
from qwen_tts_lit.synthesis.presets import GenerationPreset
from qwen_tts_lit.upstream.pairings import instruct_problem


def export_metadata(
    request: ExportRequest,
    run: Run,
    loaded: LoadedRun,
    choice: Choice,
    preset: GenerationPreset,
    minutes: dict | None,
) -> dict:
    """Everything the model card and ``synthesize`` need: provenance, scale, metrics, the exact command.
    ``minutes``: the prepared dataset's train/val minutes (:func:`data_minutes`), None when unknown."""
    best = run.best
    metrics, source = metrics_for(run, choice)
    config = loaded.tts.model.config
    presets, _ = base_presets(config)
    rows = _speaker_index(list(loaded.voices) or [request.speaker_name], request.format, config, presets)
    return {
        "format": request.format,
        "base_model": loaded.base_model,
        "base_model_type": config.tts_model_type,  # custom_voice: the adapter needs that CustomVoice base
        **(
            {"speaker_encoder_model": run.data["speaker_encoder_model"]}
            if run.data.get("speaker_encoder_model")
            else {}
        ),
        "finetune": loaded.finetune,
        "speaker_name": request.speaker_name,
        "speaker_row": rows[request.speaker_name] if request.format in MERGED_FORMATS and not loaded.voices else None,
        **({"speakers": rows} if loaded.voices else {}),
        "presets": sorted(presets),  # the base's preset speakers, kept in a merged export
        "follows_instructions": config.tts_model_type == "custom_voice" and instruct_problem(config) is None,
        "epoch": choice.epoch,
        "lora_scale": choice.lora_scale,
        "lora_scale_merged": request.format in MERGED_FORMATS,
        "language_tag": run.language_tag,
        "trained_prefixes": list(trained_prefixes(run.language_tag)),
        "metrics": metrics,
        "metrics_source": source,
        "selection": (best or {}).get("reason") if source == BEST_FILE else None,
        "data_minutes": minutes,
        "run": str(loaded.run_dir),
        "generation": asdict(preset),
        "command": export_command(request, choice),
    }


def _speaker_index(names: list, fmt: str, config, presets: dict) -> dict:
    """Each new voice's codec-embedding row (custom_voice: ``custom_voice.speaker_rows``, beside the presets) or
    row of the x-vector file (adapter)."""
    if fmt in MERGED_FORMATS:
        return speaker_rows(names, config.talker_config.vocab_size, presets)
    return {name: i for i, name in enumerate(names)}


def export_command(request: ExportRequest, choice: Choice) -> str:
    """The command that reproduces this export, with the epoch and scale spelled out."""
    args = ["python", "-m", "qwen_tts_lit", "export", "--run", str(request.run), "--epoch", str(choice.epoch)]
    args += ["--lora_scale", f"{choice.lora_scale:g}", "--output", str(request.output)]
    args += ["--speaker_name", request.speaker_name] if request.speaker_name else []
    args += ["--format", request.format]
    if request.keep_speaker_encoder:
        args += ["--keep_speaker_encoder", "true"]
    if request.base_model:
        args += ["--base_model", request.base_model]
    return shlex.join(args)


def metrics_for(run: Run, choice: Choice) -> tuple[dict, str | None]:
    """(metrics, their source): the chosen cell's when the run chose this cell, else this cell's aggregate of the
    evaluation rows (the same rule code; read only then); ({}, None) when the cell was never evaluated."""
    best = run.best
    if best is not None and int(best["epoch"]) == choice.epoch and float(best["lora_scale"]) == choice.lora_scale:
        return dict(best.get("metrics") or {}), BEST_FILE
    for cell in aggregate(run.rows):
        if cell["epoch"] == choice.epoch and cell["lora_scale"] == choice.lora_scale:
            metrics = {k: v for k, v in cell.items() if k not in ("epoch", "lora_scale")}
            return metrics, f"{ROWS_FILE} ({cell['n']} utterances)"
    return {}, None


def data_minutes(folder: Path | None) -> dict | None:
    """Train/val minutes from a prepared dataset's report.json (``folder``: the run's, None when it is not here)."""
    report = folder / REPORT_JSON if folder is not None else None
    if report is not None and report.is_file():
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
| language tag in training | {language_tag_line(meta)} |
{_base_rows(meta)}
{metrics}
## Use

{_usage(fmt, name, meta)}

{_sampling(fmt, meta["generation"])}

## Reproduce

```
{meta["command"]}
```
Source run: `{meta["run"]}`.
"""


INSTRUCT_EXAMPLE = "Speak slowly and sadly."


def _base_rows(meta: dict) -> str:
    """The card's rows on a CustomVoice base: its presets (kept in a merged export) and which base an adapter needs."""
    if meta.get("base_model_type") != "custom_voice":
        return ""
    presets = ", ".join(meta.get("presets") or []) or "none"
    kept = "kept in this checkpoint" if meta["lora_scale_merged"] else "in the base checkpoint"
    rows = f"| preset speakers | {presets} ({kept}) |\n"
    rows += f"| instructions | {'followed (instruct=...)' if meta.get('follows_instructions') else 'ignored'} |\n"
    if meta.get("speaker_encoder_model"):
        rows += f"| x-vectors from | `{meta['speaker_encoder_model']}` (its speaker encoder) |\n"
    return rows


def _sampling(fmt: str, generation: dict) -> str:
    presets = (f"Sampling presets (seed guide): temperature {generation['temperature']}, top_p {generation['top_p']},\n"
               f"top_k {generation['top_k']}, repetition_penalty {generation['repetition_penalty']}.")  # fmt: skip
    if fmt == "gguf":  # synthesize speaks with the official classes, which read no GGUF
        return presets
    return f"""{presets} Long texts: use
`python -m qwen_tts_lit synthesize --model THIS_FOLDER --text_file F --output out.wav` (sentence chunks, one seed
and one speaker embedding for all, runaway chunks retried)."""


def _number(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a" if value is None else str(value)


# Where torchaudio cannot load beside torch (docs/install.md), qwen_tts needs a stand-in before its import.
_IMPORT = """from qwen_tts_lit.upstream.compat import ensure_qwen_tts_importable
ensure_qwen_tts_importable()  # a no-op where torchaudio loads (docs/install.md of qwen_tts_lit)"""
_LANGUAGE_CALLS = {
    UNTAGGED: ("", "language omitted (auto): the layout it was trained on"),
    TAGGED: (', language="English"', "an explicit language (the text's own): the layout it was trained on"),
}


def trained_calls(meta: dict) -> list[tuple[str, str]]:
    """(extra keyword arguments, comment) of each inference call this export was trained for."""
    prefixes = meta.get("trained_prefixes") or trained_prefixes(meta.get("language_tag"))
    return [_LANGUAGE_CALLS[prefix] for prefix in prefixes]


def language_tag_line(meta: dict) -> str:
    """The card's row on the language tag: which of the two calls users make the model was trained on."""
    calls = {UNTAGGED: "language omitted", TAGGED: "explicit language"}
    prefixes = meta.get("trained_prefixes") or trained_prefixes(meta.get("language_tag"))
    return f"{meta.get('language_tag')} (trained calls: {', '.join(calls[p] for p in prefixes)})"


def _usage(fmt: str, name: str, meta: dict) -> str:
    calls = trained_calls(meta)
    speakers = list(meta.get("speakers") or {})
    if fmt == "gguf":
        return _gguf_usage(speakers[0] if speakers else name, speakers, calls, meta["generation"])
    if fmt == "custom_voice":
        which = f'"{speakers[0]}"' if speakers else f'"{name}"'
        also = f" (or any of {', '.join(speakers)})" if len(speakers) > 1 else ""
        lines = "\n".join(
            f'wavs, sr = tts.generate_custom_voice(text="Hello there.", speaker={which}{extra})  # {why}{also}'
            for extra, why in calls
        )
        if meta.get("follows_instructions"):
            extra, _ = calls[0]
            lines += (f'\nwavs, sr = tts.generate_custom_voice(text="Hello there.", speaker={which}{extra}, '
                      f'instruct="{INSTRUCT_EXAMPLE}")  # with an instruction')  # fmt: skip
            for preset in (meta.get("presets") or [])[:1]:
                lines += (f'\nwavs, sr = tts.generate_custom_voice(text="Hello there.", speaker="{preset}"{extra}, '
                          f'instruct="{INSTRUCT_EXAMPLE}")  # a preset of the base, kept')  # fmt: skip
        return f"""```python
{_IMPORT}
import soundfile as sf
from qwen_tts import Qwen3TTSModel
tts = Qwen3TTSModel.from_pretrained("THIS_FOLDER")
{lines}
sf.write("out.wav", wavs[0], sr)
```
Do not pass a language the other way: that builds a codec prefix the model was not fine-tuned on."""
    if speakers:
        tensor = f'["xvectors"][0]  # (S, D): row i is speaker i of the metadata "speakers": {", ".join(speakers)}'
    else:
        tensor = '["xvector"]'
    if meta.get("base_model_type") == "custom_voice":
        return _custom_voice_adapter_usage(meta)
    lines = "\n".join(
        f'    wavs, sr = tts.generate_voice_clone(text="Hello there.", voice_clone_prompt=prompt, '
        f"non_streaming_mode=True{extra})  # {why}"
        for extra, why in calls
    )
    return f"""```python
{_IMPORT}
import soundfile as sf
from peft import PeftModel
from peft.helpers import rescale_adapter_scale
from qwen_tts import Qwen3TTSModel, VoiceClonePromptItem
from safetensors.torch import load_file
tts = Qwen3TTSModel.from_pretrained("{meta["base_model"]}")  # the base checkpoint
model = PeftModel.from_pretrained(tts.model, "THIS_FOLDER")  # adapters injected into tts.model in place
xvector = load_file("THIS_FOLDER/{SPEAKER_FILE}"){tensor}
prompt = [VoiceClonePromptItem(ref_code=None, ref_spk_embedding=xvector, x_vector_only_mode=True, icl_mode=False)]
with rescale_adapter_scale(model, {meta["lora_scale"]:g}):
{lines}
sf.write("out.wav", wavs[0], sr)
```
`non_streaming_mode=True` is required: `generate_voice_clone` defaults to False, which interleaves text and frames,
a layout the model was not fine-tuned on.

No serving runtime (vLLM-Omni, sglang-omni, faster-qwen3-tts, qwentts.cpp) loads a PEFT adapter: each needs the
adapter merged into the weights. Merge it at this scale into a complete checkpoint (then `--format gguf` for
qwentts.cpp):

```
{merge_command(meta["command"])}
```"""


def _custom_voice_adapter_usage(meta: dict) -> str:
    """An adapter on a CustomVoice base: upstream's clone call refuses that base, so it is spoken by ``synthesize``
    (which feeds the x-vector itself) or merged into a custom_voice checkpoint for ``generate_custom_voice``."""
    instruct = f' --instruct "{INSTRUCT_EXAMPLE}"' if meta.get("follows_instructions") else ""
    return f"""This adapter needs its base checkpoint `{meta["base_model"]}` (a CustomVoice checkpoint:
`generate_voice_clone` refuses it, it has no speaker encoder). Speak it with

```
python -m qwen_tts_lit synthesize --model THIS_FOLDER --text "Hello there." --output out.wav{instruct}
```
(`--speaker PRESET` speaks one of the base's presets with the adapters), or merge it at this scale into a
custom_voice checkpoint that keeps the presets and answers `generate_custom_voice(..., instruct=...)`:

```
{merge_command(meta["command"])}
```"""


def merge_command(command: str) -> str:
    """The export command of an adapter, re-targeted at a merged custom_voice checkpoint beside it."""
    args = shlex.split(command)
    args[args.index("--format") + 1] = "custom_voice"
    out = args.index("--output") + 1
    args[out] = f"{args[out].rstrip('/')}_merged"
    return shlex.join(args)


def _gguf_usage(which: str, speakers: list[str], calls: list[tuple[str, str]], generation: dict) -> str:
    """The card of a GGUF export: the voice spoken by name through qwentts.cpp's Python binding."""
    also = f" (or any of {', '.join(speakers)})" if len(speakers) > 1 else ""
    language = "auto" if calls[0][0] == "" else "english"
    sampling = ", ".join(f"{key}={generation[key]}" for key in ("temperature", "top_k", "top_p", "repetition_penalty"))
    return f"""qwentts.cpp on CPU (`pip install realtimetts-qwen-native-cpu==0.4.2`; docs/serving.md of qwen_tts_lit):

```python
import soundfile as sf
import qwentts_cpp_cpu
tts = qwentts_cpp_cpu.QwenTTS("THIS_FOLDER/talker.gguf", "THIS_FOLDER/codec.gguf")
# {calls[0][1]}{also}
audio, sr = tts.synthesize(text="Hello there.", speaker="{which}", lang="{language}", {sampling})
sf.write("out.wav", audio, sr)
```
`lang="auto"` builds the prefix `generate_custom_voice` builds with the language omitted; a language name adds it.
The sampling settings are the run's (the binding's own defaults differ and it ignores the file's)."""
