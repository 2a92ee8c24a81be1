"""``estimate-memory``'s options; importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.data.prepare.options import LONG_CLIP_S, MAX_FILE_SECONDS
from qwen_tts_lit.errors import UserError

DEFAULT_CLIP_SECONDS = 20.0


@dataclass(frozen=True)
class EstimateMemoryRequest:
    """peak GPU memory of a fit config's training step, by category, computed on the CPU (about a minute)

    Runs the config's real training step (its model architecture, LoRA or full fine-tuning, dtypes, precision,
    gradient checkpointing, optimizer, gradient accumulation and clipping) on fake tensors, which carry shapes but
    no memory, and adds up every live tensor by kind at the peak: exact for tensors. Then adds what is not a
    tensor of the step (the allocator's margin, the CUDA context) and the other models the run puts on the card.
    """

    fit_config: tuple[Path, ...] = field(metadata={"metavar": "CFG", "repeatable": True})
    """The fit config files, in order (composed exactly as `fit --config A --config B` composes them); given
    several times, the files add up: --fit_config A --fit_config B."""
    clip_seconds: float | None = None
    """Longest clip in seconds: every row of a micro-batch is padded to it (default: the longest clip of the
    config's prepared training data when it is here, else 20); at most 300, the longest file prepare accepts."""
    text_tokens: int | None = None
    """Text tokens of that clip (default: 4 per second of audio)."""
    batch_size: int | None = None
    """Clips per micro-batch (default: the config's data.batch_size)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fit_config", tuple(Path(p) for p in self.fit_config))
        if self.clip_seconds is not None and not self.clip_seconds > 0:
            raise UserError(f"--clip_seconds {self.clip_seconds}: must be > 0")
        if self.clip_seconds is not None and not self.clip_seconds <= MAX_FILE_SECONDS:  # inf too
            raise UserError(
                f"--clip_seconds {self.clip_seconds}: no training clip can be that long: prepare refuses files over "
                f"{MAX_FILE_SECONDS:g} s (and warns past {LONG_CLIP_S:g} s, where the 12 Hz decoder drops samples); "
                f"give at most {MAX_FILE_SECONDS:g}"
            )
        for name in ("text_tokens", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name} {getattr(self, name)}: must be >= 1")
