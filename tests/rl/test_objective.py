"""PROOFS 2 and 3 of reinforcement learning (docs/reinforcement_learning.md), on hand-made tensors.

2. At ratio 1 (the first update of a rollout batch) the gradient of the GRPO loss is the REINFORCE gradient
   -1/N sum_i A_i / |o_i| sum_t grad log pi(a_t), written out by hand for a softmax policy over free logits
   (grad_logits log softmax(z)[a] = onehot(a) - softmax(z)); the same for Dr. GRPO's aggregation; the KL term adds
   nothing there when the reference equals the policy (k3's gradient vanishes at r = 1) and pulls towards the
   reference otherwise.
3. k3's expectation under pi_theta is KL(pi_theta || pi_ref) exactly on a small vocabulary (unbiased), a Monte
   Carlo mean lands within 4 standard errors of it, and every sample is >= 0; a wrong direction (r = pi_theta /
   pi_ref) is caught: its expectation is off by far more than that bound.
"""

from __future__ import annotations

import math

import pytest
import torch

from qwen_tts_lit.model.grpo import STD_EPS, group_advantages, grpo_loss, k3


def test_grpo_advantages_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 5.0, 5.0, 5.0])
    # group 1: mean 2, unbiased std 1; group 2: all equal -> no signal
    expected = torch.tensor([-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]) / torch.tensor([1 + STD_EPS] * 3 + [1.0] * 3)
    assert torch.allclose(group_advantages(rewards, 3), expected, atol=1e-7)
    assert torch.allclose(group_advantages(rewards, 3, "dr_grpo"), torch.tensor([-1.0, 0, 1, 0, 0, 0]))
    assert torch.equal(group_advantages(rewards, 1), torch.zeros(6))
    with pytest.raises(ValueError):
        group_advantages(rewards, 4)


def _case(seed: int = 0):
    """3 rollouts of lengths 4, 2, 3 over a vocabulary of 5; free logits (B, S, V) are the policy's parameters."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 4, 5, generator=gen)
    tokens = torch.randint(0, 5, (3, 4), generator=gen)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    advantages = torch.tensor([0.7, -1.3, 0.4])
    return logits, tokens, mask, advantages


def _logprobs(logits, tokens):
    return logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]


def _reinforce_by_hand(logits, tokens, mask, advantages, per_rollout_divisor):
    """-1/N sum_i A_i / d_i sum_t (onehot(a_t) - softmax(z_t)), as a (B, S, V) gradient wrt the logits."""
    score = torch.nn.functional.one_hot(tokens, logits.shape[-1]).float() - logits.softmax(-1)  # (B, S, V)
    weights = advantages[:, None] / per_rollout_divisor[:, None] * mask.float()  # (B, S)
    return -(weights[..., None] * score) / len(advantages)


@pytest.mark.parametrize("variant", ["grpo", "dr_grpo"])
@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_gradient_at_ratio_one_is_reinforce(variant, kl_coef):
    logits, tokens, mask, advantages = _case()
    logits.requires_grad_(True)
    logprobs = _logprobs(logits, tokens)
    old = logprobs.detach()  # the sampling policy is the current one: ratio 1
    out = grpo_loss(logprobs, old, old, advantages, mask, kl_coef=kl_coef, variant=variant, max_tokens=6)
    (grad,) = torch.autograd.grad(out.loss, logits)
    divisor = mask.sum(1).float() if variant == "grpo" else torch.full((3,), 6.0)
    expected = _reinforce_by_hand(logits.detach(), tokens, mask, advantages, divisor)
    assert (grad - expected).abs().max() < 1e-7
    assert float(out.ratio) == pytest.approx(1.0) and float(out.kl) == 0.0 and float(out.clipped) == 0.0
    # the oracle is not trivially satisfied: a wrong sign, or Dr. GRPO's divisor under GRPO, is far off
    assert (grad + expected).abs().max() > 1e-2
    other = torch.full((3,), 6.0) if variant == "grpo" else mask.sum(1).float()
    assert (grad - _reinforce_by_hand(logits.detach(), tokens, mask, advantages, other)).abs().max() > 1e-3


def test_kl_pulls_towards_the_reference():
    logits, tokens, mask, _ = _case()
    logits.requires_grad_(True)
    logprobs = _logprobs(logits, tokens)
    ref = logprobs.detach() - 0.5  # the reference finds the drawn tokens less likely
    out = grpo_loss(logprobs, logprobs.detach(), ref, torch.zeros(3), mask, kl_coef=1.0)
    (grad,) = torch.autograd.grad(out.loss, logprobs)
    # d k3 / d logprob = 1 - exp(ref - logprob) = 1 - e^-0.5 > 0 at every real token: descent lowers them
    assert torch.allclose(grad[mask], (1 - math.exp(-0.5)) / mask.sum(1, keepdim=True).expand_as(mask)[mask] / 3)
    assert float(out.kl) == pytest.approx(math.exp(-0.5) + 0.5 - 1, abs=1e-6)


def test_clip_stops_the_gradient_beyond_the_trust_region():
    logprobs = torch.zeros(1, 2, requires_grad=True)
    old = torch.tensor([[-0.5, 0.0]])  # token 0 has ratio e^0.5 = 1.65 > 1.2; token 1 ratio 1
    out = grpo_loss(logprobs, old, None, torch.tensor([1.0]), torch.ones(1, 2, dtype=torch.bool))
    (grad,) = torch.autograd.grad(out.loss, logprobs)
    assert grad[0, 0] == 0.0 and grad[0, 1] == pytest.approx(-0.5)
    assert float(out.clipped) == 0.5


def _distributions(seed: int = 0, vocab: int = 6):
    gen = torch.Generator().manual_seed(seed)
    policy = (torch.randn(vocab, generator=gen, dtype=torch.float64) * 1.2).log_softmax(-1)
    ref = (torch.randn(vocab, generator=gen, dtype=torch.float64) * 1.2).log_softmax(-1)
    return policy, ref


def test_k3_is_unbiased_for_the_kl_exactly():
    for seed in range(5):
        policy, ref = _distributions(seed)
        exact = float((policy.exp() * (policy - ref)).sum())  # KL(pi_theta || pi_ref)
        expectation = float((policy.exp() * k3(policy, ref)).sum())  # E_{x ~ pi_theta}[k3(x)]
        assert expectation == pytest.approx(exact, abs=1e-12)


def test_k3_monte_carlo_within_its_bounds_and_a_wrong_direction_is_caught():
    policy, ref = _distributions(seed=3)
    exact = float((policy.exp() * (policy - ref)).sum())
    n = 200_000
    draws = torch.multinomial(policy.exp(), n, replacement=True, generator=torch.Generator().manual_seed(1))
    samples = k3(policy[draws], ref[draws])  # (n,)
    bound = 4 * float(samples.std()) / math.sqrt(n)
    assert abs(float(samples.mean()) - exact) < bound
    assert bool((samples >= 0).all())
    wrong = k3(ref[draws], policy[draws])  # r = pi_theta / pi_ref: estimates neither KL direction from these draws
    assert abs(float(wrong.mean()) - exact) > 10 * bound


@pytest.mark.parametrize("variant", ["grpo", "dr_grpo"])
def test_micro_batches_sum_to_the_step_of_one_big_batch(variant):
    """Micro-batches of unequal sizes (2 + 1 rollouts), each normalised by the step's rollouts, sum to the loss and
    gradient of the three rollouts in one batch: accumulation and DDP then equal one big batch (train/rl.py
    multiplies back Lightning's division by the accumulation count and DDP's by the world size)."""
    logits, tokens, mask, advantages = _case()
    logits.requires_grad_(True)
    logprobs = _logprobs(logits, tokens)
    old, ref = logprobs.detach() - 0.1, logprobs.detach() + 0.2  # ratio != 1 and KL != 0: every term counts

    def loss(rows, step_rollouts=None):
        return grpo_loss(logprobs[rows], old[rows], ref[rows], advantages[rows], mask[rows], kl_coef=0.1,
                         variant=variant, max_tokens=6, step_rollouts=step_rollouts).loss  # fmt: skip

    whole = loss(slice(0, 3))
    parts = loss(slice(0, 2), step_rollouts=3) + loss(slice(2, 3), step_rollouts=3)
    (grad_whole,) = torch.autograd.grad(whole, logits, retain_graph=True)
    (grad_parts,) = torch.autograd.grad(parts, logits)
    assert float(parts) == pytest.approx(float(whole), abs=1e-7)
    assert (grad_parts - grad_whole).abs().max() < 1e-7
    # without the step's count each micro-batch is its own mean: the two-rollout batch would weigh 1/2, not 1/3
    unnormalised = loss(slice(0, 2)) + loss(slice(2, 3))
    assert abs(float(unnormalised) / 2 - float(whole)) > 1e-3
