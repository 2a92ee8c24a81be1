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

from qwen_tts_lit.errors import RunFailed
from qwen_tts_lit.runs.folder import CHECKPOINT_DIR, LAST_CHECKPOINT


class RequeueOnSignal(L.Callback):
    """On ``signal_name`` (e.g. "USR1"): at the next optimizer step's end, ``RUN/checkpoints/last.ckpt``, then stop."""

    def __init__(self, signal_name: str) -> None:
        self.signum = getattr(signal, f"SIG{signal_name.upper().removeprefix('SIG')}")
        self.requested = False
        self.previous = None
        self.step_before = 0

    def request(self, signum: int, frame: object) -> None:
        self.requested = True  # only a flag: the save happens at a step boundary, never inside the handler

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.previous = signal.signal(self.signum, self.request)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)
            self.previous = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.step_before = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Inside an accumulation window the gradients so far are in no checkpoint: wait for the optimizer step.
        if not self.requested or trainer.global_step == self.step_before:
            return
        path = Path(trainer.log_dir or trainer.default_root_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT
        trainer.save_checkpoint(path)
        raise RunFailed(
            f"stopped by SIG{signal.Signals(self.signum).name.removeprefix('SIG')} (the scheduler's requeue signal) "
            f"after step {trainer.global_step}: saved {path}"
        )
