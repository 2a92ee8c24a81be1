"""The RL stage's plumbing, cheap: which CLI a fit runs, the rewards' pure components, the module's refusals."""

from __future__ import annotations

import math

import pytest
import torch

from qwen_tts_lit.cli.lightning import is_rl
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.train.rewards import (
    Rewards,
    RewardWeights,
    error_rate_reward,
    length_reward,
    naturalness_reward,
    rate_reward,
)
from qwen_tts_lit.train.rl import GRPOModule, rollout_seed


def test_fit_runs_the_rl_stage_for_a_config_with_group_size(tmp_path):
    rl, sft = tmp_path / "rl.yaml", tmp_path / "sft.yaml"
    rl.write_text("model:\n  group_size: 4\n")
    sft.write_text("model:\n  finetune: lora\n")
    assert is_rl(["fit", "--config", str(rl)]) and is_rl(["fit", f"--config={sft}", "--model.group_size", "2"])
    assert not is_rl(["fit", "--config", str(sft)]) and not is_rl(["fit", "--config", str(tmp_path / "none.yaml")])


def test_reward_components_by_hand():
    assert length_reward(6, 3) == -1.0 and length_reward(3, 3) == 0.0
    assert error_rate_reward("the cat sat", "the cat sat") == 0.0
    assert error_rate_reward("the cat sat", "a dog") == pytest.approx(-1.0)  # capped at 1
    assert naturalness_reward(3.0) == 0.5 and naturalness_reward(0.2) == 0.0
    assert rate_reward(6.0, 3.0) == pytest.approx(-math.log(2)) == pytest.approx(rate_reward(1.5, 3.0))
    assert rate_reward(0.0, 3.0) == pytest.approx(-math.log(10))


def test_weights_sum_the_active_components_only():
    rewards = Rewards(RewardWeights(error_rate=0.0, runaway=2.0, length=0.5, target_frames=4))
    components = {"runaway": torch.tensor([-1.0, 0.0]), "length": torch.tensor([0.0, -1.0])}
    assert torch.equal(rewards.total(components, 2), torch.tensor([-2.0, -0.5]))
    assert RewardWeights().active() == ["error_rate", "runaway"]


def test_rollout_seeds_differ_by_row_step_and_rank():
    seeds = {rollout_seed(0, step, rank, row) for step in range(3) for rank in range(2) for row in range(8)}
    assert len(seeds) == 48 and rollout_seed(0, 1, 0, 2) == rollout_seed(0, 1, 0, 2)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"group_size": 1}, "group_size 1"),
        ({"variant": "ppo"}, "variant 'ppo'"),
        ({"rewards": RewardWeights(rate=1.0)}, "real_words_per_second"),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(settings, message):
    with pytest.raises(UserError, match=message):
        GRPOModule(**settings)
