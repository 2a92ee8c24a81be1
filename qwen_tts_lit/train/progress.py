"""What ``fit`` and ``validate`` print while they run: progress that reads as progress, nothing that looks like failure.

- The progress bar (:func:`progress_bar`): Lightning's tqdm bars on a terminal; on anything else (a SLURM log, a
  CI log, ``> out.txt``) :class:`PlainProgressBar`, which writes whole lines: tqdm's redraws (carriage returns and
  ``ESC[A`` cursor moves for its stacked bars) are unreadable in a file. Neither shows ``v_num``: Lightning's
  version number of the logger, which in our run folders is a name (``on_0`` of ``version_0``), not a metric.
- :func:`quiet_lightning`: Lightning's advertisement for its cloud logger and a deprecation warning torch raises
  inside Lightning's own code (neither is about the user's run, and neither can be acted on by them).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from typing import TextIO

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

HIDDEN_METRICS = ("v_num",)  # the logger's version: the run folder's name, already printed by fit
LIGHTNING_TIP = "Tip: For seamless cloud logging"  # logger_connector.py, on every Trainer without a LitLogger
# torch 2.13 deprecated LeafSpec; lightning 2.6.6's utilities/_pytree.py still builds one on every batch transfer.
TORCH_DEPRECATION = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


class _DropTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return LIGHTNING_TIP not in record.getMessage()


def quiet_lightning() -> None:
    """Silence Lightning's litlogger tip and torch's LeafSpec deprecation (idempotent; everything else stays)."""
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # rank_zero_info logs on this logger
    if not any(isinstance(f, _DropTip) for f in rank_zero.filters):
        rank_zero.addFilter(_DropTip())
    warnings.filterwarnings("ignore", message=TORCH_DEPRECATION, category=FutureWarning)


def bar_metrics(metrics: dict) -> dict:
    """The progress-bar items without the hidden ones."""
    return {key: value for key, value in metrics.items() if key not in HIDDEN_METRICS}


class TerminalProgressBar(TQDMProgressBar):
    """Lightning's tqdm bars, without ``v_num``."""

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return bar_metrics(super().get_metrics(trainer, pl_module))


class PlainProgressBar(ProgressBar):
    """Whole lines for a log file: about ``lines_per_epoch`` lines during an epoch (every n-th batch), one at its end
    and one when validation ends; no carriage returns, no cursor moves."""

    def __init__(self, lines_per_epoch: int = 10, file: TextIO | None = None) -> None:
        """lines_per_epoch: lines written during an epoch besides its last. file: where (default stdout)."""
        super().__init__()
        self.lines_per_epoch, self.file, self.enabled = lines_per_epoch, file, True
        self._started, self._steps = time.monotonic(), 0

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def print(self, *args, **kwargs) -> None:
        print(*args, **kwargs, file=self.file or sys.stdout, flush=True)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
        return bar_metrics(super().get_metrics(trainer, pl_module))

    def _line(self, trainer: L.Trainer, pl_module: L.LightningModule, what: str) -> None:
        if not self.enabled:
            return
        items = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.get_metrics(trainer, pl_module).items())  # fmt: skip
        elapsed = time.monotonic() - self._started
        self.print(f"{what} [{elapsed:.0f} s]" + (f" {items}" if items else ""))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started, self._steps = time.monotonic(), 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, index) -> None:
        total = self.total_train_batches
        every = max(1, int(total) // self.lines_per_epoch) if total not in (None, float("inf")) else 50
        done = self._steps = index + 1
        if done % every == 0 and done != total:
            shown = int(total) if total not in (None, float("inf")) else "?"
            self._line(trainer, pl_module, f"epoch {trainer.current_epoch}: batch {done}/{shown}")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._line(trainer, pl_module, f"epoch {trainer.current_epoch}: done, {self._steps} batches")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._line(trainer, pl_module, f"epoch {trainer.current_epoch}: validated")


def progress_bar(stream: TextIO | None = None) -> ProgressBar:
    """The bar for ``stream`` (default stdout, where Lightning draws): tqdm on a terminal, lines elsewhere."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return TerminalProgressBar() if isatty is not None and isatty() else PlainProgressBar()


def use_our_progress_bar(trainer: L.Trainer) -> None:
    """Replace the bar Lightning adds by default with :func:`progress_bar`'s (a bar the config brings is kept)."""
    for index, callback in enumerate(trainer.callbacks):
        if type(callback) is TQDMProgressBar:
            trainer.callbacks[index] = progress_bar()
