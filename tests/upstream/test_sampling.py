"""Per-row sampling: the Gumbel-max processor samples HF's own warped distribution, and a row's draws come from its
own generator only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList

from qwen_tts_lit.upstream.sampling import RowSampler, row_generators, warpers

LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.2, -0.5, -1.0, -3.0])  # (V,)


def hf_probabilities(temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """What HF's sampling path draws from: its warpers, then softmax (then torch.multinomial)."""
    chain = warpers(temperature, top_k, top_p)
    return chain(torch.zeros(1, 0, dtype=torch.long), LOGITS[None].clone()).softmax(-1)[0]


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [(0.8, 30, 0.85), (0.9, 3, 1.0), (1.0, 0, 1.0)])
def test_gumbel_max_samples_hfs_warped_distribution(temperature: float, top_k: int, top_p: float):
    rows = 20000
    sampler = RowSampler(row_generators(range(rows), "cpu"), warpers(temperature, top_k, top_p))
    scores = sampler(torch.zeros(rows, 0, dtype=torch.long), LOGITS.expand(rows, -1).clone())
    counts = np.bincount(scores.argmax(-1).numpy(), minlength=len(LOGITS)) / rows
    want = hf_probabilities(temperature, top_k, top_p).numpy()
    assert np.abs(counts - want).max() < 0.015, (counts.round(3), want.round(3))  # 20000 draws: sd < 0.0036
    assert (counts[want == 0] == 0).all()  # filtered tokens are never drawn


def test_a_rows_draws_depend_on_its_seed_only():
    chain = LogitsProcessorList()
    batch = RowSampler(row_generators([7, 8, 9], "cpu"), chain)
    alone = RowSampler(row_generators([8], "cpu"), chain)
    for _ in range(3):  # successive steps keep consuming each row's own stream
        many = batch(torch.zeros(3, 0, dtype=torch.long), LOGITS.expand(3, -1).clone())
        one = alone(torch.zeros(1, 0, dtype=torch.long), LOGITS[None].clone())
        assert torch.equal(many[1], one[0])
    with pytest.raises(RuntimeError, match="3 generators for 2 rows"):
        batch(torch.zeros(2, 0, dtype=torch.long), LOGITS.expand(2, -1).clone())
