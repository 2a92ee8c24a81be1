"""Which (epoch, lora_scale) of a run to use: what the user asked for, else what the evaluation chose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import UNSCALED, check_lora_scale
from qwen_tts_lit.runs.folder import saved_epochs
from qwen_tts_lit.runs.records import best_path


@dataclass(frozen=True)
class Choice:
    """The epoch and LoRA scale to use, and where each came from (printed for the user)."""

    epoch: int
    lora_scale: float
    notes: tuple[str, ...] = ()


def choose(
    best: dict | None, epoch: int | None, lora_scale: float | None, run_dir: Path, saved: list[int] | None = None
) -> Choice:
    """Explicit values win; else the run's chosen cell; the epoch is required when the run has none, the scale is
    not (it is then the trained strength). ``saved``: the run's saved epochs when the caller has listed them."""
    source = best_path(run_dir).name
    notes = []
    if epoch is None:
        if best is None:
            epochs = ", ".join(str(e) for e in (saved_epochs(run_dir) if saved is None else saved)) or "none"
            raise UserError(
                f"{best_path(run_dir)}: not found (the evaluation writes it), so pick a checkpoint yourself: "
                f"--epoch N (saved epochs: {epochs}) and optionally --lora_scale S"
            )
        epoch = int(best["epoch"])
        notes.append(f"epoch {epoch} from {source}")
    if lora_scale is None:
        if best is not None:
            lora_scale = float(best["lora_scale"])
            notes.append(f"lora_scale {lora_scale:g} from {source} (chosen for epoch {int(best['epoch'])})")
        else:
            lora_scale = UNSCALED
            notes.append(f"lora_scale {UNSCALED:g} (as trained): no {source} and no --lora_scale")
    return Choice(int(epoch), check_lora_scale(lora_scale, "--lora_scale"), tuple(notes))
