"""Read a finished run folder and load one epoch's weights (torch only, no Lightning).

A run folder (``runs/NAME/version_N``) holds ``checkpoints/epoch=NNN.ckpt`` (only the trained tensors, keys
``tts.<name>``, plus ``hyper_parameters``, ``qwen_tts_lit`` and ``xvector``), ``speaker.safetensors``, ``config.yaml``
and, once the EvalSuite has run, ``best.json``. Loading = the base checkpoint + the same LoRA injection as training
+ the saved tensors, so generation matches what the run's evaluation heard.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qwen_tts_lit.errors import UserError

EPOCH_FILE = re.compile(r"^epoch=(\d+)\.ckpt$")
MAX_LORA_SCALE = 2.0  # beyond twice the trained strength the adapters only extrapolate


@dataclass(frozen=True)
class Choice:
    """The epoch and LoRA scale to use, and where each came from (printed for the user)."""

    epoch: int
    lora_scale: float
    notes: tuple[str, ...] = ()


def saved_epochs(run_dir: Path) -> dict[int, Path]:
    """Epoch number -> checkpoint file, from ``checkpoints/epoch=NNN.ckpt`` names."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return {}
    found = {int(m.group(1)): p for p in folder.iterdir() if (m := EPOCH_FILE.match(p.name))}
    return dict(sorted(found.items()))


def check_run_dir(run_dir: str | Path) -> Path:
    """The run folder as a Path; UserError when it is missing or holds no epoch checkpoint."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise UserError(f"{path}: run folder not found (expected runs/NAME/version_N from `fit`)")
    if not saved_epochs(path):
        raise UserError(f"{path / 'checkpoints'}: no epoch=NNN.ckpt checkpoints; is this a finished run folder?")
    return path


def read_best(run_dir: Path) -> dict | None:
    """``best.json`` (written by the EvalSuite) or None when the run has none."""
    path = run_dir / "best.json"
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text())
        int(best["epoch"]), float(best["lora_scale"])
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: unreadable ({error}); expected {{'epoch': int, 'lora_scale': float, ...}}") from error
    return best


def check_lora_scale(scale: float, name: str = "--lora-scale") -> float:
    """0 < scale <= MAX_LORA_SCALE (0 is the base model: nothing to export or compare)."""
    if not (0.0 < scale <= MAX_LORA_SCALE):
        raise UserError(f"{name} {scale}: must be in (0, {MAX_LORA_SCALE:g}] (1 = as trained)")
    return float(scale)


def choose(best: dict | None, epoch: int | None, lora_scale: float | None, run_dir: Path) -> Choice:
    """Explicit values win; else best.json; the epoch is required when there is no best.json, the scale is not (1.0)."""
    notes = []
    if epoch is None:
        if best is None:
            epochs = ", ".join(str(e) for e in saved_epochs(run_dir)) or "none"
            raise UserError(
                f"{run_dir / 'best.json'}: not found (the evaluation writes it), so pick a checkpoint yourself: "
                f"--epoch N (saved epochs: {epochs}) and optionally --lora-scale S"
            )
        epoch = int(best["epoch"])
        notes.append(f"epoch {epoch} from best.json")
    if lora_scale is None:
        if best is not None:
            lora_scale = float(best["lora_scale"])
            notes.append(f"lora_scale {lora_scale:g} from best.json (chosen for epoch {int(best['epoch'])})")
        else:
            lora_scale = 1.0
            notes.append("lora_scale 1.0 (as trained): no best.json and no --lora-scale")
    return Choice(int(epoch), check_lora_scale(lora_scale), tuple(notes))


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    """``checkpoints/epoch=NNN.ckpt``; UserError listing the saved epochs when that one is not there."""
    epochs = saved_epochs(run_dir)
    if epoch not in epochs:
        listed = ", ".join(str(e) for e in epochs) or "none"
        raise UserError(f"{run_dir}: epoch {epoch} was not saved (saved epochs: {listed})")
    return epochs[epoch]


def read_config(run_dir: Path) -> dict:
    """LightningCLI's saved ``config.yaml`` as a dict ({} when absent)."""
    import yaml

    path = run_dir / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


@dataclass
class LoadedRun:
    """One epoch of a run, ready to generate: the official wrapper with the trained weights in place."""

    tts: object  # qwen_tts.Qwen3TTSModel; LoRA injected in place in LoRA mode
    peft_model: object | None  # the PeftModel around tts.model (LoRA mode), else None
    xvector: torch.Tensor  # (D,)
    epoch: int
    run_dir: Path
    hyper_parameters: dict = field(default_factory=dict)
    base_model: str = ""
    finetune: str = "lora"


def load_run(
    run_dir: str | Path,
    epoch: int,
    device: str = "cpu",
    dtype: str | None = None,
    base_model: str | None = None,
) -> LoadedRun:
    """Base checkpoint + the trained tensors of ``epoch`` + the speaker x-vector.

    ``base_model`` overrides the checkpoint's own base model source (a run trained elsewhere); ``dtype`` overrides
    the training dtype.
    """
    from qwen_tts_lit.model.load import load_qwen3_tts
    from qwen_tts_lit.model.lora import inject_lora

    run = check_run_dir(run_dir)
    path = checkpoint_path(run, epoch)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)  # our own file: hparams are plain objects
    hp = dict(checkpoint.get("hyper_parameters", {}))
    info = checkpoint.get("qwen_tts_lit", {})
    base = base_model or info.get("base_model") or hp.get("model")
    finetune = info.get("finetune") or hp.get("finetune", "lora")
    if not base:
        raise UserError(f"{path}: names no base model; pass the base checkpoint explicitly (--base-model)")
    tts = load_qwen3_tts(base, dtype or hp.get("dtype", "float32"), hp.get("attn_implementation", "sdpa"), device)
    peft_model = None
    target = tts.model
    if finetune == "lora":
        peft_model = inject_lora(
            tts.model,
            hp.get("lora_rank", 16),
            hp.get("lora_alpha", 32),
            hp.get("lora_dropout", 0.0),  # kept so an adapter export re-trains as configured; eval mode disables it
            hp.get("lora_code_predictor", False),
        )
        target = peft_model
    _load_trained(target, checkpoint, path)
    return LoadedRun(tts, peft_model, _xvector(checkpoint, run), epoch, run, hp, base, finetune)


def load_epoch(loaded: LoadedRun, epoch: int) -> None:
    """Swap another epoch of the same run into ``loaded`` in place (the base weights stay in memory)."""
    path = checkpoint_path(loaded.run_dir, epoch)
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    _load_trained(loaded.peft_model if loaded.peft_model is not None else loaded.tts.model, checkpoint, path)
    loaded.xvector, loaded.epoch = _xvector(checkpoint, loaded.run_dir), epoch


def _load_trained(model: torch.nn.Module, checkpoint: dict, path: Path) -> None:
    """Load the saved tensors in eval mode; every one must land (a key that matches nothing is a wrong base or LoRA
    config)."""
    state = {key.removeprefix("tts."): value for key, value in checkpoint["state_dict"].items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatch: another model size or LoRA rank
        raise UserError(f"{path}: saved tensors do not fit the base model ({str(error)[:300]})") from error
    if result.unexpected_keys:
        shown = ", ".join(result.unexpected_keys[:3])
        raise UserError(
            f"{path}: {len(result.unexpected_keys)} saved tensors do not fit the base model with this LoRA config "
            f"(e.g. {shown}); was the run trained on another base model? (--base-model)"
        )
    model.eval()


def _xvector(checkpoint: dict, run_dir: Path) -> torch.Tensor:
    if "xvector" in checkpoint:
        return checkpoint["xvector"].float()
    speaker = run_dir / "speaker.safetensors"
    if not speaker.is_file():
        raise UserError(f"{speaker}: missing, and the checkpoint holds no x-vector")
    from safetensors.torch import load_file

    return load_file(str(speaker))["xvector"].float()
