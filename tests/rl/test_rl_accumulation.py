"""Gradient accumulation of the RL step through a real ``Trainer.fit``: 2 micro-batches of 1 prompt accumulated
give the update of one batch of 2 prompts (the same rollouts, the same loss, the same gradient). SGD, so the update
is the gradient itself (Adam's normalisation would hide a factor); the tiny model made EOS-prone with the length
reward, so the advantages are not 0. DDP's averaging is the same normalisation across ranks: checked on the
objective (tests/rl/test_objective.py), not through a 2-process run."""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
from helpers.rl import LEARN_BOOST, LEARN_TARGET, make_eos_prone
from helpers.teacher_forcing import far_apart_xvectors

from qwen_tts_lit.model.lora import LoraSpec, trainable_state_dict
from qwen_tts_lit.train.rewards import RewardWeights
from qwen_tts_lit.train.rl import GRPOModule, PromptDataModule

TEXTS = ["Hello there, my friend.", "The cat sat on the mat."]


class _Recording(GRPOModule):
    """GRPOModule that keeps the frames of every rollout it draws (what the seeds decided), in order."""

    def rollouts(self, texts):
        utterances = super().rollouts(texts)
        self.frames = [*getattr(self, "frames", []), *(u.frames for u in utterances)]
        return utterances


def _one_step(tiny_dir, tmp_path, prompts_per_step: int, accumulate: int, variant: str):
    torch.manual_seed(0)
    module = _Recording(
        model=str(tiny_dir), lora=LoraSpec(rank=4, alpha=8, dropout=0.0), group_size=4, variant=variant,
        optimizer=partial(torch.optim.SGD, lr=10.0), kl_coef=0.04, max_new_tokens=12,
        rewards=RewardWeights(error_rate=0.0, runaway=0.0, length=1.0, target_frames=LEARN_TARGET),
    )  # fmt: skip
    module.configure_model()
    make_eos_prone(module.wrapper, LEARN_BOOST)
    with torch.no_grad():  # adapters away from lora_B = 0, so every adapter weight gets a gradient
        for name, parameter in module.tts.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
    before = {k: v.detach().clone() for k, v in trainable_state_dict(module.tts).items()}
    data = PromptDataModule(TEXTS, prompts_per_step=prompts_per_step, steps_per_epoch=2 // prompts_per_step)
    data.xvector = far_apart_xvectors(1, module.base_model.config.talker_config.hidden_size)[0]
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        default_root_dir=tmp_path, limit_val_batches=0, enable_progress_bar=False,
                        enable_model_summary=False, accumulate_grad_batches=accumulate)  # fmt: skip
    trainer.fit(module, data)
    assert trainer.global_step == 1
    after = trainable_state_dict(module.tts)
    return {k: after[k] - before[k] for k in before}, module.frames


def test_two_accumulated_micro_batches_give_the_update_of_one_batch(tiny_dir, tmp_path):
    for variant in ("grpo", "dr_grpo"):
        big, big_frames = _one_step(tiny_dir, tmp_path, prompts_per_step=2, accumulate=1, variant=variant)
        accumulated, frames = _one_step(tiny_dir, tmp_path, prompts_per_step=1, accumulate=2, variant=variant)
        assert frames == big_frames and len(set(frames)) > 1  # the same rollouts, of different lengths
        assert max(update.abs().max() for update in big.values()) > 1e-4  # the step moved the adapters
        for name, update in big.items():
            torch.testing.assert_close(accumulated[name], update, rtol=1e-4, atol=1e-7, msg=name)
