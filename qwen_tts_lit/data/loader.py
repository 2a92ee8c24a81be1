"""The DataLoader the datamodule hands Lightning: a torch DataLoader that starts at the first batch and knows where
in the epoch's plan it stands.

Lightning 2.6 creates the training iterator in ``FitLoop.setup_data`` (``configure_optimizers`` reaching for
``trainer.estimated_stepping_batches`` is enough), before it calls ``set_epoch`` for the first epoch it runs, and a
resumed fit trains that epoch from this iterator. With ``num_workers > 0`` torch's iterator asks the batch sampler
for its first batches as soon as it is created (``prefetch_factor`` per worker), so they, and the whole plan drawn
with them, would be epoch 0's: a fit resumed at epoch 1 would retrain epoch 0's plan. Started at the first ``next``
instead, the iterator reads the epoch Lightning has set by then (without workers the batch sampler is lazy anyway).

A fit resumed from a checkpoint written mid-epoch (``ModelCheckpoint(every_n_train_steps=...)``) continues from the
batch after the last one trained, which Lightning does only for a loader with ``state_dict``/``load_state_dict``;
without them it starts the epoch's plan again and trains its first batches twice. Lightning saves this loader's
position in every checkpoint, but does not load it back when the loader was made before the restore (as above), so
the datamodule carries it too (``QwenTTSDataModule.load_state_dict``).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class PlanLoader(torch.utils.data.DataLoader):
    """``torch.utils.data.DataLoader`` (same arguments, ``batch_sampler`` a ``StepPlanBatchSampler``) whose
    iteration, and so its workers' first batches, starts at the first ``next``, and which can start mid-plan."""

    resume_at: dict[str, int] | None = None  # {"epoch", "batches"}: where a fit resumed mid-epoch picks the plan up
    batches_taken = 0  # micro-batches this epoch's iteration has handed out, those skipped on resume included

    def __iter__(self) -> Iterator:
        return _StartedOnFirstNext(self)

    def start(self) -> Iterator:
        """The real iteration, from the resume position if it is this epoch's."""
        sampler, resume = self.batch_sampler, self.resume_at
        self.resume_at = None
        sampler.start = resume["batches"] if resume and resume["epoch"] == sampler.epoch else 0
        self.batches_taken = sampler.start
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        """The epoch and how many of its micro-batches were handed out (all of them at the epoch's end)."""
        return {"epoch": self.batch_sampler.epoch, "batches": self.batches_taken}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        """The next iteration continues epoch ``state_dict["epoch"]`` after its first ``batches`` micro-batches (if
        that is the epoch it runs: a checkpoint from an epoch's end resumes at the next epoch's start)."""
        self.resume_at = {"epoch": int(state_dict["epoch"]), "batches": int(state_dict["batches"])}


class _StartedOnFirstNext:
    """The iterator ``PlanLoader.__iter__`` returns: makes the real one at the first ``next`` and counts batches."""

    def __init__(self, loader: PlanLoader) -> None:
        self.loader, self.iterator = loader, None

    def __iter__(self) -> _StartedOnFirstNext:
        return self

    def __next__(self):
        if self.iterator is None:
            self.iterator = self.loader.start()
        batch = next(self.iterator)
        self.loader.batches_taken += 1
        return batch
