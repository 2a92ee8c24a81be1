"""Stopping a fit for the scheduler's requeue without losing anything: on the requeue signal, a checkpoint at the
next optimizer-step boundary into the run folder, then a clean stop; the requeued task runs ``fit --resume RUN``.

Why not Lightning's own SLURM requeue (``SLURMEnvironment(auto_requeue=True)``): its signal handler saves
``hpc_ckpt_N.ckpt`` from inside the handler, at whatever bytecode the signal interrupted (possibly between an
optimizer step and the loop's progress counters, or inside an accumulation window whose gradients a checkpoint does
not hold), into ``default_root_dir`` rather than the run's checkpoints folder, and restores it only through its
own ``ckpt_path="hpc"`` path, which bypasses the run folder's resume (metrics.csv trimmed to the checkpoint, the
folder's ModelCheckpoint state). So the launcher's fit runs with Lightning's auto-requeue off, and this callback
saves where ``fit --resume`` looks, at a step boundary (the state a mid-epoch ModelCheckpoint saves, which resumes
bit-identically with LoRA dropout 0: docs/sampling.md), and leaves the requeue to the launcher.
"""

from __future__ import annotations

import signal
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from qwen_tts_lit.errors import RunFailed
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, LAST_CHECKPOINT


class RequeueOnSignal(L.Callback):
    """On ``signal_name`` (e.g. "USR1"): at the end of the next batch that steps the optimizer,
    ``RUN/checkpoints/last.ckpt``; then stop before the batch after it."""

    def __init__(self, signal_name: str) -> None:
        self.signum = getattr(signal, f"SIG{signal_name.upper().removeprefix('SIG')}")
        self.requested = False
        self.previous = None
        self.step_before = 0
        self.saved: tuple[Path, int] | None = None

    def request(self, signum: int, frame: object) -> None:
        self.requested = True  # only a flag: the save happens at a step boundary, never inside the handler

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.previous = signal.signal(self.signum, self.request)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)
            self.previous = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.stop_if_saved()
        self.step_before = trainer.global_step

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stop_if_saved()  # saved at an epoch's last batch: that epoch ended (evaluated, saved) in the meantime

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Inside an accumulation window the gradients so far are in no checkpoint: wait for the optimizer step. Saved
        # here, where ModelCheckpoint saves mid-epoch (the position a resume continues from exactly); the stop waits
        # for the next batch's start, after Lightning has logged this batch's metrics (a stop here would lose its
        # row of metrics.csv, which the resumed run does not log again).
        if not self.requested or self.saved is not None or trainer.global_step == self.step_before:
            return
        path = Path(trainer.log_dir or trainer.default_root_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT
        for callback in trainer.checkpoint_callbacks:
            # As ModelCheckpoint records its own last.ckpt: the resumed run's then overwrites this file at its next
            # save instead of taking it for a stranger's and writing last-v1.ckpt beside it.
            if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath is not None:
                if Path(callback.dirpath).absolute() == path.parent.absolute():
                    callback.last_model_path = str(path)
        trainer.save_checkpoint(path)
        self.saved = (path, trainer.global_step)

    def stop_if_saved(self) -> None:
        if self.saved is not None:
            path, step = self.saved
            name = signal.Signals(self.signum).name
            raise RunFailed(f"stopped by {name} (the scheduler's requeue signal) after step {step}: saved {path}")
