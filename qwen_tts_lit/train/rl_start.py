"""Where the RL stage starts: an SFT run's chosen cell, one of its epochs at a scale, a checkpoint file, or the base.

``model.init_from`` names a run folder (``runs/NAME/version_N``: its chosen cell gives the epoch and lora_scale,
read through ``Run.open`` / ``Run.choose`` as every verb reads a run) or one checkpoint file. ``model.init_epoch`` and
``model.init_scale`` override the run's choice. Resolved when the module is built, so a wrong folder, a run
that chose no cell or an epoch not saved is a one-line error before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import UNSCALED, check_lora_scale
from qwen_tts_lit.runs.records import best_path
from qwen_tts_lit.runs.run import Run


@dataclass(frozen=True)
class RLStart:
    """The SFT adapters RL starts from: their checkpoint, the scale they run at, and (from a run) the epoch."""

    checkpoint: Path
    scale: float
    epoch: int | None = None
    run: Path | None = None

    @property
    def label(self) -> str:
        """How reports and the chosen cell's record name the start."""
        where = f"{self.run} epoch {self.epoch}" if self.run is not None else str(self.checkpoint)
        return f"{where} at lora_scale {self.scale:g}"


def resolve_start(init_from: str | None, init_epoch: int | None, init_scale: float | None) -> RLStart | None:
    """The start ``model.init_from`` names (None: fresh adapters on the base model)."""
    if not init_from:
        if init_epoch is not None:
            raise UserError("model.init_epoch: needs model.init_from (an SFT run folder)")
        return None
    path = Path(init_from).expanduser()
    scale = None if init_scale is None else check_lora_scale(init_scale, "model.init_scale")
    if path.is_file():
        if init_epoch is not None:
            raise UserError(f"model.init_epoch: {path} is one checkpoint; init_epoch picks an epoch of a run folder")
        return RLStart(path, UNSCALED if scale is None else scale)
    if not path.is_dir():
        raise UserError(f"model.init_from {path}: neither an SFT run folder nor a checkpoint file")
    run = Run.open(path)
    if init_epoch is None and run.best is None:
        raise UserError(
            f"{best_path(path)}: not found, so the run has no chosen cell to start from: give model.init_epoch "
            f"(saved epochs: {', '.join(str(e) for e in run.saved_epochs)}) and optionally model.init_scale"
        )
    choice = run.choose(init_epoch, scale)
    return RLStart(run.checkpoint(choice.epoch), choice.lora_scale, choice.epoch, run.path)
