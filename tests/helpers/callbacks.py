"""Callbacks the end-to-end tests add from the command line (``--trainer.callbacks+=helpers.callbacks.X``)."""

import os
import signal

import lightning as L
import torch


class KillAtStep(L.Callback):
    """SIGKILL the process (no cleanup, like a crash or a pre-empted node) once ``step`` optimizer steps are done.
    Only in a run that started from scratch: it stays in the saved config, and the resumed run must not die too."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.ckpt_path is None and trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class CtrlCAtEpoch(L.Callback):
    """Send the process SIGINT (what Ctrl-C sends) when epoch ``epoch`` starts, i.e. right after the previous epoch's
    checkpoint was written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            # As in a terminal: a suite started in the background (`cmd &` in a script) hands its processes SIGINT
            # ignored, and Python then never installs its handler, so the signal would vanish.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)


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


class PauseAfterBatch(L.Callback):
    """After each training batch of a run that started from scratch, write the batch's index to RUN/trained_batch
    and wait ``seconds``: a window in which a test signals the run mid-epoch (as SLURM's time-limit warning does).
    The resumed run does not wait. Waiting changes no number the run computes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        import time
        from pathlib import Path

        if trainer.ckpt_path is None:
            (Path(trainer.log_dir) / "trained_batch").write_text(str(batch_idx))
            time.sleep(self.seconds)


class SaveRLStart(L.Callback):
    """Write the RL module's adapters as training starts, and its reference adapters, to RUN/rl_start.pt: what a test
    compares with the SFT cell the run was told to start from."""

    def on_fit_start(self, trainer, pl_module) -> None:
        from qwen_tts_lit.model.lora import trainable_state_dict

        start = {k: v.detach().clone() for k, v in trainable_state_dict(pl_module.tts).items()}
        torch.save({"start": start, "reference": pl_module.reference}, os.path.join(trainer.log_dir, "rl_start.pt"))
