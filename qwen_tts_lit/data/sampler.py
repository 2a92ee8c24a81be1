"""Length-bucketed micro-batches grouped into optimizer steps, planned identically on every rank.

Each yielded micro-batch carries the frame and utterance counts of the whole optimizer step it belongs to (all
accumulated micro-batches on all ranks), so the step normalises its losses per token of the step: gradient
accumulation and data parallelism then give the gradient of one big batch. The plan depends only on
(lengths, speakers, batch_size, accumulate, world_size, seed, epoch), so every rank computes it without
communication.

With several speakers, ``balanced`` sampling first draws the epoch's items so that every speaker has an equal share
(:func:`balanced_pool`: a small speaker's clips repeat, a large one's are sub-sampled, a new draw each epoch); the
same bucketing and per-step totals then apply to that draw (a repeated clip counts in the totals as often as it is
in the step), so the gradient is still exactly that of one big batch. ``natural`` keeps every clip once.

The epoch reaches the plan through Lightning's own call: its fit and evaluation loops call ``set_epoch`` on
``dataloader.sampler`` and ``dataloader.batch_sampler.sampler`` only, so the batch sampler's ``sampler`` attribute
is what forwards it (docs/sampling.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch


class ItemRef(NamedTuple):
    """One dataset index, plus the totals of the optimizer step its micro-batch belongs to."""

    index: int
    step_frames: int
    step_utterances: int
    epoch: int = 0  # draws per-epoch choices (mixed language tags) identically on every rank and after a resume


def plan_micro_batches(lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int) -> list[list[int]]:
    """Sort by length (random tie order), cut into micro-batches of similar length, shuffle their order."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(lengths), generator=generator).tolist() if shuffle else list(range(len(lengths)))
    order.sort(key=lambda i: lengths[i])  # stable: ties keep the random order
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def balanced_pool(speakers: Sequence[str], seed: int) -> list[int]:
    """One epoch's dataset indices, as many as there are items, with every speaker's share equal (n // S each, one
    more for n % S speakers picked at random): a speaker with fewer clips repeats all of them as many whole times as
    fit and draws the rest without repetition; one with more draws its share without repetition. Seeded."""
    generator = torch.Generator().manual_seed(seed)
    groups: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(index)
    names = sorted(groups)
    extra = set(torch.randperm(len(names), generator=generator)[: len(speakers) % len(names)].tolist())
    pool = []
    for rank, name in enumerate(names):
        items = groups[name]
        whole, rest = divmod(len(speakers) // len(names) + (rank in extra), len(items))
        drawn = torch.randperm(len(items), generator=generator)[:rest].tolist()
        pool += items * whole + [items[i] for i in sorted(drawn)]
    return pool


def plan_steps(
    lengths: Sequence[int], batch_size: int, accumulate: int, world_size: int, shuffle: bool, seed: int
) -> list[list[list[int]]]:
    """Optimizer steps, each a list of ``accumulate * world_size`` micro-batches (the last may hold fewer, but always
    a multiple of ``world_size``: micro-batches are repeated from the start so every rank gets the same count)."""
    batches = plan_micro_batches(lengths, batch_size, shuffle, seed)
    missing = (-len(batches)) % world_size
    batches += batches[:missing]
    per_step = accumulate * world_size
    return [batches[i : i + per_step] for i in range(0, len(batches), per_step)]


class StepPlanBatchSampler:
    """Batch sampler for one rank. Pass ``use_distributed_sampler=False`` to the Trainer: this already shards."""

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        accumulate: int = 1,
        world_size: int = 1,
        rank: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        speakers: Sequence[str | None] | None = None,
        balanced: bool = False,
    ) -> None:
        """``speakers``: each item's speaker (None: one speaker); ``balanced``: equal shares per speaker each epoch
        (:func:`balanced_pool`) instead of every item once."""
        if batch_size < 1 or accumulate < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"bad sampler setup: batch_size={batch_size} accumulate={accumulate} rank={rank}/{world_size}"
            )
        self.lengths = list(lengths)
        self.batch_size, self.accumulate = batch_size, accumulate
        self.world_size, self.rank = world_size, rank
        self.shuffle, self.seed = shuffle, seed
        self.speakers = list(speakers) if speakers is not None else None
        self.balanced = balanced and self.speakers is not None and len(set(self.speakers)) > 1
        self.epoch = 0
        # Lightning never calls the batch sampler's own set_epoch: only `batch_sampler.sampler`'s (module docstring).
        self.sampler = EpochForward(self)

    def set_epoch(self, epoch: int) -> None:
        """The plan of epoch ``epoch``: a new shuffle, balanced draw and language-tag draw, the same on every rank.
        Lightning calls it (through ``sampler``) before each epoch with the epoch it runs, the restored one on
        resume, and before each validation run with the training epoch (an unshuffled plan stays the same, and the
        validation split keeps one language-tag draw)."""
        self.epoch = epoch

    def epoch_items(self) -> list[int]:
        """The dataset indices this epoch draws (positions in this list are what the plan buckets)."""
        if self.balanced:
            return balanced_pool(self.speakers, self.seed + self.epoch)
        return list(range(len(self.lengths)))

    def __iter__(self) -> Iterator[list[ItemRef]]:
        items = self.epoch_items()
        lengths = [self.lengths[i] for i in items]
        steps = plan_steps(
            lengths, self.batch_size, self.accumulate, self.world_size, self.shuffle, self.seed + self.epoch
        )
        for step in steps:
            frames = sum(lengths[i] for batch in step for i in batch)
            utterances = sum(len(batch) for batch in step)
            for batch in step[self.rank :: self.world_size]:
                yield [ItemRef(items[i], frames, utterances, self.epoch) for i in batch]

    def __len__(self) -> int:
        return math.ceil(math.ceil(len(self.lengths) / self.batch_size) / self.world_size)


class EpochForward:
    """``StepPlanBatchSampler.sampler``: where Lightning's ``_set_sampler_epoch`` looks for ``set_epoch``
    (``dataloader.batch_sampler.sampler``). Not an index sampler: it only forwards the epoch to the plan."""

    def __init__(self, plan: StepPlanBatchSampler) -> None:
        self.plan = plan

    def set_epoch(self, epoch: int) -> None:
        self.plan.set_epoch(epoch)
