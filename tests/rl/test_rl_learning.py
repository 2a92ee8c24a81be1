"""PROOF 4 of reinforcement learning (docs/reinforcement_learning.md): it learns, through a real ``Trainer.fit``.

On the tiny model (made EOS-prone: the random one never ends a sentence, so no length reward could move it), a
cheap reward (generated length towards 3 frames, where about half the rollouts start out running to the 16-frame
cap) rises over 24 steps while the KL to the reference (the adapters at scale 0) stays bounded; and a control
whose rewards are all zero (so every advantage is 0) leaves every adapter weight bit for bit unchanged: nothing
but the advantages moves the weights (the KL term's gradient vanishes at the reference, AdamW without decay).
"""

from __future__ import annotations

import pytest
import torch
from helpers.rl import LEARN_TARGET, learning_run

from qwen_tts_lit.model.lora import trainable_state_dict
from qwen_tts_lit.train.rewards import RewardWeights

pytestmark = pytest.mark.slow  # rollouts: ~10 s on an idle 2-core CPU, 30 s and more under load; not the fast lane

STEPS = 24
WINDOW = 6  # steps averaged at each end of the curve
LENGTH_ONLY = RewardWeights(error_rate=0.0, runaway=0.0, length=1.0, target_frames=LEARN_TARGET)
NO_REWARD = RewardWeights(error_rate=0.0, runaway=0.0, length=0.0)


def _series(rows, name):
    return [float(row[name]) for row in rows]


def test_the_cheap_reward_rises_while_the_kl_stays_bounded(tiny_dir, tmp_path):
    _, rows, _ = learning_run(tiny_dir, tmp_path, STEPS, LENGTH_ONLY)
    reward, kl, gap = _series(rows, "rl/reward/total"), _series(rows, "rl/kl"), _series(rows, "rl/logprob_gap")
    assert len(reward) == STEPS
    assert _series(rows, "rl/reward/length") == reward  # each component is logged; here it is the whole reward
    first, last = sum(reward[:WINDOW]) / WINDOW, sum(reward[-WINDOW:]) / WINDOW
    assert last - first > 0.5, f"reward {first:.3f} -> {last:.3f}"
    assert max(kl) < 1.5 and sum(kl[-WINDOW:]) / WINDOW < 1.0, f"KL per token {kl}"
    assert max(gap) < 1e-5  # the trainer's log-probs of the drawn tokens are the sampler's (PROOF 1, live)


def test_zero_advantages_leave_the_weights_unchanged(tiny_dir, tmp_path):
    module, rows, before = learning_run(tiny_dir, tmp_path, 3, NO_REWARD)
    after = trainable_state_dict(module.tts)
    assert len(rows) == 3 and before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
