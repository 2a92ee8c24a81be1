"""Load one epoch of a run: the base checkpoint + the same LoRA injection as training + the saved tensors.

A checkpoint (``checkpoints/epoch=NNN.ckpt``) holds only the trained tensors (keys ``tts.<name>``), the optimizer
state, ``hyper_parameters``, ``qwen_tts_lit`` (base model, fine-tuning mode) and ``xvector`` (one speaker) or
``voices`` (several: name -> x-vector); loading rebuilds the
model exactly as the run's evaluation heard it. Torch only, no Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import LoraSpec, inject_lora
from qwen_tts_lit.runs.checkpoints import read_checkpoint
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.speaker_file import pick_voice
from qwen_tts_lit.upstream.loading import load_qwen3_tts


@dataclass
class LoadedRun:
    """One epoch of a run, ready to generate: the official wrapper with the trained weights in place."""

    tts: object  # qwen_tts.Qwen3TTSModel; LoRA injected in place in LoRA mode
    peft_model: object | None  # the PeftModel around tts.model (LoRA mode), else None
    xvector: torch.Tensor | None  # (D,) of a one-speaker run, else None
    epoch: int
    run_dir: Path
    hyper_parameters: dict = field(default_factory=dict)
    base_model: str = ""
    finetune: str = "lora"
    voices: dict[str, torch.Tensor] = field(default_factory=dict)  # several speakers: name -> (D,)
    run: Run | None = None  # the opened run folder (another epoch is swapped in without listing it again)

    def voice(self, speaker: str | None) -> torch.Tensor:
        """The x-vector to speak with: the run's one voice, or the named speaker of a several-speaker run."""
        return pick_voice(self.xvector, self.voices, speaker, self.run_dir)


def load_run(
    run_dir: Run | str | Path,
    epoch: int,
    device: str = "cpu",
    dtype: str | None = None,
    base_model: str | None = None,
) -> LoadedRun:
    """Base checkpoint + the trained tensors of ``epoch`` + the speaker x-vector.

    ``run_dir``: an opened run (the verbs pass the one they opened) or its folder. ``base_model`` overrides the
    checkpoint's own base model source (a run trained elsewhere); ``dtype`` overrides the training dtype.
    """
    run = run_dir if isinstance(run_dir, Run) else Run.open(run_dir)
    path = run.checkpoint(epoch)
    checkpoint = read_checkpoint(path)
    hp = dict(checkpoint.get("hyper_parameters", {}))
    info = checkpoint.get("qwen_tts_lit", {})
    base = base_model or info.get("base_model") or hp.get("model")
    finetune = info.get("finetune") or hp.get("finetune", "lora")
    if not base:
        raise UserError(f"{path}: names no base model; pass the base checkpoint explicitly (--base_model)")
    tts = load_qwen3_tts(base, dtype or hp.get("dtype", "float32"), hp.get("attn_implementation", "sdpa"), device)
    peft_model = inject_lora(tts.model, LoraSpec.from_hparams(hp)) if finetune == "lora" else None
    _load_trained(peft_model if peft_model is not None else tts.model, checkpoint, path)
    xvector, voices = _voices(checkpoint, run)
    return LoadedRun(tts, peft_model, xvector, epoch, run.path, hp, base, finetune, voices, run)


def load_epoch(loaded: LoadedRun, epoch: int) -> None:
    """Swap another epoch of the same run into ``loaded`` in place (the base weights stay in memory)."""
    run = loaded.run if loaded.run is not None else Run.open(loaded.run_dir)
    path = run.checkpoint(epoch)
    checkpoint = read_checkpoint(path)
    _load_trained(loaded.peft_model if loaded.peft_model is not None else loaded.tts.model, checkpoint, path)
    (loaded.xvector, loaded.voices), loaded.epoch = _voices(checkpoint, run), epoch


def load_trained(model: torch.nn.Module, path: Path) -> None:
    """Load the trained tensors of the checkpoint at ``path`` into ``model`` (a live model built with the run's base
    and LoRA settings), checked as :func:`load_run` checks them, in eval mode: what RL starts from when it starts
    from an SFT epoch, and the chosen epoch's weights the presets speak with."""
    checkpoint = read_checkpoint(path)
    if not checkpoint.get("state_dict"):
        raise UserError(f"{path}: holds no trained tensors")
    _load_trained(model, checkpoint, path)


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
            f"(e.g. {shown}); was the run trained on another base model? (--base_model)"
        )
    model.eval()


def _voices(checkpoint: dict, run: Run) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
    """The checkpoint's own voices; the run folder's x-vector file only for a checkpoint that holds none."""
    if "xvector" in checkpoint:
        return checkpoint["xvector"].float(), {}
    if "voices" in checkpoint:
        return None, {name: vector.float() for name, vector in checkpoint["voices"].items()}
    return run.voices
