"""The DataLoader the datamodule hands Lightning: a torch DataLoader whose workers start at the first batch.

Lightning 2.6 creates the training iterator in ``FitLoop.setup_data`` (``configure_optimizers`` reaching for
``trainer.estimated_stepping_batches`` is enough), before it calls ``set_epoch`` for the first epoch it runs, and a
resumed fit trains that epoch from this iterator. With ``num_workers > 0`` torch's iterator asks the batch sampler
for its first batches as soon as it is created (``prefetch_factor`` per worker), so they, and the whole plan drawn
with them, would be epoch 0's: a fit resumed at epoch 1 would retrain epoch 0's plan. Started at the first ``next``
instead, the iterator reads the epoch Lightning has set by then (without workers the batch sampler is lazy anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


class _StartedOnFirstNext:
    """An iterator that makes the real one (``start()``) when the first item is asked for."""

    def __init__(self, start: Callable[[], Iterator]) -> None:
        self.start, self.iterator = start, None

    def __iter__(self) -> _StartedOnFirstNext:
        return self

    def __next__(self):
        if self.iterator is None:
            self.iterator = self.start()
        return next(self.iterator)


class PlanLoader(torch.utils.data.DataLoader):
    """``torch.utils.data.DataLoader`` (same arguments) whose iteration, and so its workers' first batches, starts
    at the first ``next``, not at ``iter``."""

    def __iter__(self) -> Iterator:
        return _StartedOnFirstNext(super().__iter__)
