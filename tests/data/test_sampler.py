from collections import Counter

import pytest
import torch

from qwen_tts_lit.data.sampler import StepPlanBatchSampler, plan_micro_batches, plan_steps

LENGTHS = [5, 50, 7, 48, 6, 51, 30, 29, 31, 8, 52]


class Refs(torch.utils.data.Dataset):
    """A dataset whose item is the index it is asked for (an ``ItemRef``): what the sampler planned."""

    def __getitem__(self, ref):
        return ref


def test_micro_batches_group_similar_lengths():
    batches = plan_micro_batches(LENGTHS, 3, shuffle=True, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    ranked = sorted(LENGTHS)
    for batch in batches:  # each micro-batch is a run of neighbours in length order: minimal padding
        lengths = sorted(LENGTHS[i] for i in batch)
        start = ranked.index(lengths[0])
        assert lengths == ranked[start : start + len(lengths)]


def test_steps_cover_every_item_and_are_whole_per_rank():
    steps = plan_steps(LENGTHS, 2, accumulate=2, world_size=2, shuffle=True, seed=1)
    assert all(len(step) % 2 == 0 for step in steps)
    assert set(i for step in steps for b in step for i in b) == set(range(len(LENGTHS)))


def test_ranks_split_the_same_plan_and_agree_on_step_totals():
    ranks = [list(StepPlanBatchSampler(LENGTHS, 2, 1, 2, r, seed=3)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(StepPlanBatchSampler(LENGTHS, 2, 1, 2, 0))
    for a, b in zip(*ranks, strict=True):  # the same step on both ranks: same totals
        assert (a[0].step_frames, a[0].step_utterances) == (b[0].step_frames, b[0].step_utterances)
        assert a[0].step_frames == sum(LENGTHS[r.index] for r in a + b)


def test_one_process_with_accumulation_plans_the_same_steps_as_two_ranks():
    single = list(StepPlanBatchSampler(LENGTHS, 2, accumulate=2, world_size=1, seed=4))
    two = [list(StepPlanBatchSampler(LENGTHS, 2, accumulate=1, world_size=2, rank=r, seed=4)) for r in range(2)]
    interleaved = [batch for pair in zip(*two, strict=True) for batch in pair]
    assert [[r.index for r in b] for b in single[: len(interleaved)]] == [[r.index for r in b] for b in interleaved][
        : len(single)
    ]


def test_epochs_reshuffle_deterministically():
    """The epoch set as Lightning sets it (its own helper, on a DataLoader): never by calling set_epoch by hand,
    which is how the tests once missed that Lightning's call never arrived."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    sampler = StepPlanBatchSampler(LENGTHS, 2, seed=0)
    loader = torch.utils.data.DataLoader(Refs(), batch_sampler=sampler, collate_fn=lambda refs: refs)

    def plan(epoch: int) -> list[tuple[int, ...]]:
        _set_sampler_epoch(loader, epoch)
        return [tuple(r.index for r in b) for b in loader]

    first, second = plan(0), plan(1)
    assert plan(0) == first != second
    assert Counter(i for b in second for i in b) == Counter(range(len(LENGTHS)))


def test_rejects_bad_setup():
    with pytest.raises(ValueError, match="rank"):
        StepPlanBatchSampler(LENGTHS, 2, world_size=2, rank=2)


SPEAKERS = ["a"] * 8 + ["b"] * 2 + ["c"]  # 11 items: a has most, c one


def test_balanced_pool_gives_every_speaker_an_equal_share():
    from qwen_tts_lit.data.sampler import balanced_pool

    for seed in range(5):
        pool = balanced_pool(SPEAKERS, seed)
        shares = Counter(SPEAKERS[i] for i in pool)
        assert len(pool) == len(SPEAKERS) and sorted(shares.values()) == [3, 4, 4]  # 11 = 3 + 4 + 4
        assert Counter(pool)[10] >= 3  # c's one clip repeats
        assert all(n == 1 for i, n in Counter(pool).items() if SPEAKERS[i] == "a")  # a is sub-sampled, never repeated
        assert set(i for i in pool if SPEAKERS[i] == "b") == {8, 9}  # b: both clips, one once more
    assert balanced_pool(SPEAKERS, 0) == balanced_pool(SPEAKERS, 0) and len({tuple(balanced_pool(SPEAKERS, s)) for
                                                                              s in range(5)}) > 1  # fmt: skip


def test_balanced_steps_keep_bucketing_and_exact_step_totals_on_every_rank():
    ranks = [
        list(StepPlanBatchSampler(LENGTHS, 2, 2, 2, r, seed=3, speakers=SPEAKERS, balanced=True)) for r in range(2)
    ]
    drawn = Counter(ref.index for rank in ranks for batch in rank for ref in batch)
    assert Counter(SPEAKERS[i] for i in drawn.elements())["c"] >= 3  # the draw is the balanced one (up to the padding
    # of the last step, which repeats micro-batches for whole ranks, as without speakers)
    for a, b in zip(*ranks, strict=True):
        assert (a[0].step_frames, a[0].step_utterances) == (b[0].step_frames, b[0].step_utterances)
    sampler = StepPlanBatchSampler(LENGTHS, 2, seed=3, speakers=SPEAKERS, balanced=True)
    items = sampler.epoch_items()
    ranked = sorted(LENGTHS[i] for i in items)
    for batch in sampler:  # each micro-batch is a run of neighbours in the length order of the draw
        lengths = sorted(LENGTHS[r.index] for r in batch)
        assert any(lengths == ranked[start : start + len(lengths)] for start in range(len(ranked)))
        assert batch[0].step_frames == sum(LENGTHS[r.index] for r in batch)  # a repeated clip counts each time


def test_natural_sampling_and_one_speaker_plan_exactly_as_without_speakers():
    plain = [[tuple(r) for r in b] for b in StepPlanBatchSampler(LENGTHS, 2, seed=5)]
    natural = StepPlanBatchSampler(LENGTHS, 2, seed=5, speakers=SPEAKERS, balanced=False)
    single = StepPlanBatchSampler(LENGTHS, 2, seed=5, speakers=["a"] * len(LENGTHS), balanced=True)
    assert [[tuple(r) for r in b] for b in natural] == plain == [[tuple(r) for r in b] for b in single]


def test_balanced_draws_cycle_through_every_clip_over_epochs():
    """The rule of balanced_pool across epochs: each draw goes to the clips undrawn longest. So a speaker's clips
    are drawn equally often up to one after every epoch, and any ceil(n / k) consecutive epochs (the first ones too)
    train each of a sub-sampled speaker's n clips with a share of k. A seeded random draw per epoch fails this."""
    from qwen_tts_lit.data.sampler import balanced_pool

    speakers = ["a"] * 17 + ["b"] * 3 + ["c"] * 2  # 22 items: shares 7, 7, 8 (one speaker gets the extra one)
    for seed in range(4):
        pools = [balanced_pool(speakers, seed, epoch) for epoch in range(12)]
        assert pools[0] == balanced_pool(speakers, seed) and pools[3] == balanced_pool(speakers, seed, 3)
        totals: Counter = Counter()
        for epoch, pool in enumerate(pools):
            shares = Counter(speakers[i] for i in pool)
            assert len(pool) == len(speakers) and sorted(shares.values()) == [7, 7, 8], (seed, epoch)
            assert all(n == 1 for i, n in Counter(pool).items() if speakers[i] == "a")  # sub-sampled: no repeats
            totals.update(pool)
            for name in "abc":
                counts = [totals[i] for i, s in enumerate(speakers) if s == name]
                assert max(counts) - min(counts) <= 1, (seed, epoch, name)  # equally often up to one
        for start in range(len(pools) - 2):  # a: 17 clips, a share of 7 or 8: every window of 3 epochs covers them
            window = {i for pool in pools[start : start + 3] for i in pool}
            assert set(range(17)) <= window, (seed, start)
        extra = Counter(max(Counter(speakers[i] for i in pool).items(), key=lambda kv: kv[1])[0] for pool in pools)
        assert sorted(extra.values()) == [4, 4, 4]  # the extra share goes round the speakers too
    assert len({tuple(balanced_pool(speakers, seed, 1)) for seed in range(4)}) > 1  # the seed still matters
