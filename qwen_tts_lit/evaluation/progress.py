"""The progress bar of one epoch's evaluation: cells x sentences, once per step (synthesis, ASR, speaker, VAD), on
stderr. Disabled, it costs nothing and prints nothing."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm.auto import tqdm

STEPS = ("synthesis", "ASR", "speaker", "VAD")


class EvalProgress:
    """A tqdm bar over the clips of one evaluated epoch; :meth:`step` starts the next step at 0."""

    def __init__(self, epoch: int, cells: int, sentences: int, enabled: bool = True, file: TextIO | None = None):
        """epoch: the epoch evaluated. cells: (epoch, scale) cells spoken. sentences: held-out sentences per cell.
        enabled: False draws nothing. file: where the bar goes (default stderr)."""
        self.epoch, self.clips = epoch, cells * sentences
        self.bar = tqdm(total=self.clips, unit="clip", file=file or sys.stderr, disable=not enabled, leave=False,
                        dynamic_ncols=True, postfix=f"{cells} cells x {sentences} sentences")  # fmt: skip

    def step(self, name: str) -> None:
        """Start ``name`` (one of :data:`STEPS`) at 0 of the epoch's clips."""
        self.bar.reset(total=self.clips)
        self.bar.set_description(f"evaluating epoch {self.epoch}: {name}")

    def advance(self, clips: int) -> None:
        """``clips`` more clips done in the current step."""
        self.bar.update(clips)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> EvalProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
