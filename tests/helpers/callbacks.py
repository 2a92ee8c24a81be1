"""Callbacks the end-to-end tests add from the command line (``--trainer.callbacks+=helpers.callbacks.X``)."""

import os
import signal

import lightning as L
import torch


class KillAtStep(L.Callback):
    """SIGKILL the process (no cleanup, like a crash or a pre-empted node) once ``step`` optimizer steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonWeightsAtStep(L.Callback):
    """Fill the trainable weights with NaN once ``step`` optimizer steps are done, so the next loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            with torch.no_grad():
                for p in pl_module.parameters():
                    if p.requires_grad:
                        p.fill_(float("nan"))
