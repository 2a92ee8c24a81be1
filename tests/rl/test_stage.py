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


def test_rl_from_an_sft_checkpoint_starts_at_its_scale_and_keeps_it_as_the_reference(tiny_dir, tmp_path):
    from helpers.teacher_forcing import far_apart_xvectors

    from qwen_tts_lit.model.layout import SpecialIds, assistant_prompt, collate_sequences, layout_utterance
    from qwen_tts_lit.model.lora import LoraSpec, adapters_at_scale, trainable_state_dict
    from qwen_tts_lit.model.policy import drawn_tokens, policy_logprobs

    lora = LoraSpec(rank=4, alpha=8, dropout=0.0)
    sft = GRPOModule(model=str(tiny_dir), lora=lora)
    sft.configure_model()
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained SFT run's adapters: lora_B away from its zero init
        for name, parameter in sft.tts.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=noise) * 0.5)
    path = tmp_path / "epoch=000.ckpt"
    torch.save({"state_dict": {f"tts.{k}": v for k, v in trainable_state_dict(sft.tts).items()}}, path)
    rl = GRPOModule(model=str(tiny_dir), lora=lora, init_from=str(path), init_scale=0.5)
    rl.configure_model()

    config = rl.base_model.config
    ids = rl.wrapper.processor.tokenizer(assistant_prompt("Hello there, my friend."))["input_ids"]
    codes = torch.randint(0, 2048, (12, 16), generator=noise)
    xvector = far_apart_xvectors(1, config.talker_config.hidden_size)
    batch = collate_sequences([layout_utterance(ids, codes, SpecialIds.from_config(config))], xvector)
    drawn = drawn_tokens(batch, [True])
    with torch.no_grad():
        start = policy_logprobs(rl.talker, batch, drawn, rl.policy_spec)
        with adapters_at_scale(sft.base_model, 0.5):
            cell = policy_logprobs(sft.talker, batch, drawn, rl.policy_spec)
        with adapters_at_scale(rl.base_model, 0.0):
            base = policy_logprobs(rl.talker, batch, drawn, rl.policy_spec)
    before = {k: v.clone() for k, v in trainable_state_dict(rl.tts).items()}
    reference = rl.reference_logprobs(batch, drawn)
    assert (start - cell).abs().max() < 1e-6  # RL starts as the SFT cell (checkpoint x scale) speaks
    assert (reference - start).abs().max() < 1e-7  # the reference is that start, so the KL starts at 0
    assert (base - start).abs().max() > 1e-2  # not the base model (the scale-0 reference of a fresh start)
    assert all(torch.equal(before[k], v) for k, v in trainable_state_dict(rl.tts).items())  # adapters put back


def test_an_init_from_that_is_not_adapters_is_one_line(tiny_dir, tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"tts.something.else": torch.zeros(2)}}, path)
    module = GRPOModule(model=str(tiny_dir), init_from=str(path))
    with pytest.raises(UserError, match="init_from"):
        module.configure_model()
