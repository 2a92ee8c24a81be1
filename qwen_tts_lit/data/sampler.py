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


def balanced_pool(speakers: Sequence[str], seed: int, epoch: int = 0) -> list[int]:
    """Epoch ``epoch``'s dataset indices, as many as there are items, with every speaker's share equal (n // S each,
    one more for n % S speakers picked at random each epoch): a speaker with fewer clips repeats all of them as many
    whole times as fit and draws the rest without repetition; one with more draws its share without repetition.

    The draws beyond whole repeats walk through a seeded permutation of each speaker's clips, epoch after epoch
    (:func:`rotation_draw`), rather than a fresh random sub-sample each epoch: every clip of a sub-sampled speaker is
    trained within ``ceil(clips / share) + 1`` epochs, where independent draws would leave some clips out for many.
    Depends only on (speakers, seed, epoch), so every rank and a resumed run draw the same."""
    groups: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(index)
    names = sorted(groups)
    # the speakers that take one more clip, per epoch up to this one (the rotation needs every earlier epoch's size)
    extras = []
    for past in range(epoch + 1):
        generator = torch.Generator().manual_seed(seed + past)
        extras.append(set(torch.randperm(len(names), generator=generator)[: len(speakers) % len(names)].tolist()))
    pool = []
    for rank, name in enumerate(names):
        items = groups[name]
        shares = [divmod(len(speakers) // len(names) + (rank in extra), len(items)) for extra in extras]
        whole, _ = shares[-1]
        drawn = rotation_draw(len(items), [rest for _, rest in shares], seed * 1_000_003 + rank)
        pool += items * whole + [items[i] for i in sorted(drawn)]
    return pool


def rotation_draw(count: int, sizes: Sequence[int], seed: int) -> list[int]:
    """The positions (of ``count``) drawn in the last of ``len(sizes)`` epochs that draw ``sizes[e]`` each without
    repetition, taken in turn from a seeded permutation: a new permutation starts (after what is left of the old
    one, and without those) only when the old one runs out, so each clip is drawn once per pass through them all."""
    generator = torch.Generator().manual_seed(seed)
    queue: list[int] = []
    chunk: list[int] = []
    for size in sizes:
        if len(queue) < size:
            left = set(queue)
            queue += [i for i in torch.randperm(count, generator=generator).tolist() if i not in left]
        chunk, queue = queue[:size], queue[size:]
    return chunk


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
        # Lightning sets the epoch on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler`` only, never on
        # the batch sampler itself: this attribute is how its own call (every epoch, and the restored epoch on a
        # resume) reaches the plan. Without it every epoch replayed epoch 0's plan.
        self.sampler = EpochForwarder(self)

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose plan ``__iter__`` yields: a new shuffle, tag draw and speaker draw per epoch, the same on
        every rank. Lightning calls it through :attr:`sampler`."""
        self.epoch = epoch

    def epoch_items(self) -> list[int]:
        """The dataset indices this epoch draws (positions in this list are what the plan buckets)."""
        if self.balanced:
            return balanced_pool(self.speakers, self.seed, self.epoch)
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


class EpochForwarder:
    """What Lightning sees as the batch sampler's ``sampler``: it only forwards ``set_epoch`` to the plan."""

    def __init__(self, plan: StepPlanBatchSampler) -> None:
        self.plan = plan

    def set_epoch(self, epoch: int) -> None:
        self.plan.set_epoch(epoch)
