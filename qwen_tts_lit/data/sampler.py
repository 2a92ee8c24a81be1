"""Length-bucketed micro-batches grouped into optimizer steps, planned identically on every rank.

Each yielded micro-batch carries the frame and utterance counts of the whole optimizer step it belongs to (all
accumulated micro-batches on all ranks), so the step normalises its losses per token of the step: gradient
accumulation and data parallelism then give the gradient of one big batch. The plan depends only on
(lengths, speakers, batch_size, accumulate, world_size, seed, epoch), so every rank computes it without
communication.

With several speakers, ``balanced`` sampling first draws the epoch's items so that every speaker has an equal share
(:func:`balanced_pool`): a small speaker's clips repeat, a large one's are sub-sampled, and across epochs each
speaker's draw goes to the clips it has trained fewest times, then longest ago, so over a run every clip is
trained (a speaker with n clips and a share of k < n per epoch trains all of them in any ceil(n / k) consecutive
epochs). The same bucketing and per-step totals then apply to that draw (a repeated clip counts in the totals as
often as it is in the step), so the gradient is still exactly that of one big batch. ``natural`` keeps every clip
once.

The epoch reaches the plan through Lightning's own call: its fit and evaluation loops call ``set_epoch`` on
``dataloader.sampler`` and ``dataloader.batch_sampler.sampler`` only, so the batch sampler's ``sampler`` attribute
is what forwards it (docs/sampling.md).
"""

from __future__ import annotations

import itertools
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


def next_in_turn(draws: torch.Tensor, last: torch.Tensor, k: int, generator: torch.Generator) -> list[int]:
    """The ``k`` positions next in turn: drawn fewest times (``draws``), then longest ago (``last``: the epoch of the
    last draw, -1 never), ties in a seeded random order. Each draw takes from the front of this queue."""
    order = torch.randperm(len(draws), generator=generator)
    key = draws * (int(last.max()) + 2) + last + 1  # draws first, then last (from -1): one integer sort key
    return order[torch.argsort(key[order], stable=True)][:k].tolist()


def balanced_pool(speakers: Sequence[str], seed: int, epoch: int = 0) -> list[int]:
    """Epoch ``epoch``'s dataset indices, as many as there are items, with every speaker's share equal: n // S each,
    and one more for n % S speakers. A speaker with fewer clips than its share repeats all of them as many whole
    times as fit; the rest of its share (all of it for a speaker with more clips) is drawn without repetition.

    Across epochs nothing is left to chance: each epoch's draw goes to the clips (and the extra shares to the
    speakers) drawn fewest times so far, then longest ago, ties in a seeded random order (in effect a seeded
    permutation per speaker taken a chunk per epoch). So a speaker's clips are drawn equally often up to one after
    every epoch, and a speaker with n clips and a share of k < n trains every clip in any ceil(n / k) consecutive
    epochs, the first ones included. Epoch e replays the draws of epochs 0..e-1 to know them: a pure function of
    (speakers, seed, epoch), so every rank and a resumed run compute the same pool."""
    generator = torch.Generator().manual_seed(seed)
    groups: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(index)
    names = sorted(groups)
    share, extra = divmod(len(speakers), len(names))
    speaker_draws, speaker_last = torch.zeros(len(names), dtype=torch.long), torch.full((len(names),), -1)
    draws = {name: torch.zeros(len(groups[name]), dtype=torch.long) for name in names}
    last = {name: torch.full((len(groups[name]),), -1) for name in names}
    for current in range(epoch + 1):
        lucky = next_in_turn(speaker_draws, speaker_last, extra, generator)
        speaker_draws[lucky] += 1
        speaker_last[lucky] = current
        pool = []
        for rank, name in enumerate(names):
            items = groups[name]
            whole, rest = divmod(share + (rank in lucky), len(items))
            chosen = next_in_turn(draws[name], last[name], rest, generator)
            draws[name][chosen] += 1
            last[name][chosen] = current
            pool += items * whole + [items[i] for i in sorted(chosen)]
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
        self.start = 0  # micro-batches of this rank's plan the next iteration skips (a fit resumed mid-epoch)
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
            return balanced_pool(self.speakers, self.seed, self.epoch)
        return list(range(len(self.lengths)))

    def __iter__(self) -> Iterator[list[ItemRef]]:
        start, self.start = self.start, 0  # only the iteration it was set for
        return itertools.islice(self._plan(), start, None)

    def _plan(self) -> Iterator[list[ItemRef]]:
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
