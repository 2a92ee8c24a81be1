"""The progress bar of one epoch's evaluation: cells x sentences, once per step (synthesis, ASR, speaker, VAD,
naturalness), on stderr. Disabled, it costs nothing and prints nothing. On anything but a terminal (a log file) it is a
line per finished step instead: tqdm's redraws there are carriage returns and, below Lightning's bars, ``ESC[A``
cursor moves."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm.auto import tqdm

STEPS = ("synthesis", "ASR", "speaker", "VAD", "naturalness")  # naturalness: only with a naturalness judge


class EvalProgress:
    """A tqdm bar over the clips of one evaluated epoch; :meth:`step` starts the next step at 0."""

    def __init__(self, epoch: int, cells: int, sentences: int, enabled: bool = True, file: TextIO | None = None):
        """epoch: the epoch evaluated. cells: (epoch, scale) cells spoken. sentences: held-out sentences per cell.
        enabled: False draws nothing. file: where the bar goes (default stderr)."""
        self.epoch, self.clips, self.file = epoch, cells * sentences, file or sys.stderr
        isatty = getattr(self.file, "isatty", None)
        self.plain = enabled and not (isatty is not None and isatty())
        self.what = f"{cells} cells x {sentences} sentences"
        self._step, self._done, self._started = None, 0, time.monotonic()
        self.bar = tqdm(total=self.clips, unit="clip", file=self.file, disable=not enabled or self.plain, leave=False,
                        dynamic_ncols=True, postfix=self.what)  # fmt: skip

    def step(self, name: str) -> None:
        """Start ``name`` (one of :data:`STEPS`) at 0 of the epoch's clips."""
        self._finish_line()
        self._step, self._done, self._started = name, 0, time.monotonic()
        self.bar.reset(total=self.clips)
        self.bar.set_description(f"evaluating epoch {self.epoch}: {name}")

    def advance(self, clips: int) -> None:
        """``clips`` more clips done in the current step."""
        self._done += clips
        self.bar.update(clips)

    def close(self) -> None:
        self._finish_line()
        self.bar.close()

    def _finish_line(self) -> None:
        """Plain mode: the step that just ended, as one line."""
        if self.plain and self._step is not None:
            seconds = time.monotonic() - self._started
            print(f"evaluating epoch {self.epoch}: {self._step} {self._done}/{self.clips} clips ({self.what}) "
                  f"[{seconds:.0f} s]", file=self.file, flush=True)  # fmt: skip
            self._step = None

    def __enter__(self) -> EvalProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
