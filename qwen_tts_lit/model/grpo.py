"""The GRPO objective as pure functions of log-probabilities, rewards and masks (docs/reinforcement_learning.md).

For G rollouts o_1..o_G of one prompt with rewards r_i, token log-probabilities under the policy being trained
(``logprobs``), under the policy that sampled them (``old_logprobs``: the same weights at rollout time, so the ratio
is 1 on the first update of a batch) and under the reference (``ref_logprobs``), each token t of o_i costs

    -( min(rho A_i, clip(rho, 1 - eps, 1 + eps) A_i) - beta * k3 ),   rho = exp(logprobs - old_logprobs)
    k3 = exp(ref - logprobs) - (ref - logprobs) - 1                   (Schulman's unbiased, non-negative estimator
                                                                       of KL(pi_theta || pi_ref) from x ~ pi_theta)

and the tokens are aggregated per rollout, then over rollouts:

- ``"grpo"`` (DeepSeekMath): A_i = (r_i - mean) / (std + eps) within the group; a rollout's tokens averaged
  (divided by its own length |o_i|), then the rollouts averaged.
- ``"dr_grpo"`` (Dr. GRPO, Liu et al. 2025): A_i = r_i - mean, no std; a rollout's tokens summed and divided by a
  constant (the generation budget in tokens, ``max_tokens``), not by |o_i|: neither the question's difficulty
  (std) nor the answer's length biases the update.

The rollout average divides by the rollouts of the whole optimizer step (``step_rollouts``: every micro-batch,
every rank), so accumulation and DDP give the gradient of one big batch, as the SFT step does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Variant = Literal["grpo", "dr_grpo"]
VARIANTS: tuple[str, ...] = ("grpo", "dr_grpo")
STD_EPS = 1e-4  # a group whose rewards are all equal has no signal: its advantages are 0, not 0/0


def group_advantages(rewards: torch.Tensor, group_size: int, variant: str = "grpo") -> torch.Tensor:
    """(N,) rewards of N / group_size groups, laid out group by group -> (N,) group-relative advantages. The std is
    the unbiased one (TRL's ``std(dim=1)``); a group of one has no baseline and gets 0."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"{tuple(rewards.shape)} rewards do not split into groups of {group_size}")
    groups = rewards.float().reshape(-1, group_size)  # (N / G, G)
    centred = groups - groups.mean(1, keepdim=True)
    if group_size == 1:
        return torch.zeros_like(rewards, dtype=torch.float32)
    if variant == "dr_grpo":
        return centred.reshape(-1)
    return (centred / (groups.std(1, keepdim=True) + STD_EPS)).reshape(-1)


def k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 = r - log r - 1 with r = pi_ref / pi_theta, per token: E_{x ~ pi_theta}[k3] = KL(pi_theta ||
    pi_ref) exactly (E[r] = 1), and k3 >= 0 for every sample (unlike k1 = -log r)."""
    log_ratio = ref_logprobs - logprobs
    return log_ratio.exp() - log_ratio - 1


@dataclass
class GrpoLoss:
    loss: torch.Tensor  # scalar: this micro-batch's share of the step's loss
    kl: torch.Tensor  # mean k3 per token (detached), the KL to the reference
    clipped: torch.Tensor  # share of tokens whose ratio lies outside [1 - eps, 1 + eps] (detached)
    ratio: torch.Tensor  # mean ratio per token (detached)


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    kl_coef: float = 0.0,
    variant: str = "grpo",
    max_tokens: int | None = None,
    step_rollouts: int | None = None,
) -> GrpoLoss:
    """The clipped, KL-penalised GRPO loss of (B, S) token log-probabilities (``mask`` marks real tokens; ``B``
    rollouts with (B,) ``advantages``). ``max_tokens``: Dr. GRPO's constant (default: S). ``step_rollouts``: the
    rollouts of the whole optimizer step (default: B)."""
    mask = mask.to(logprobs.dtype)
    ratio = (logprobs - old_logprobs).exp()
    adv = advantages.to(logprobs.dtype)[:, None]  # (B, 1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)  # (B, S)
    per_token = -surrogate
    kl = torch.zeros_like(logprobs)
    if ref_logprobs is not None:
        kl = k3(logprobs, ref_logprobs)
        per_token = per_token + kl_coef * kl
    summed = (per_token * mask).sum(1)  # (B,)
    if variant == "grpo":
        per_rollout = summed / mask.sum(1).clamp(min=1)
    elif variant == "dr_grpo":
        per_rollout = summed / float(max_tokens or logprobs.shape[1])
    else:
        raise ValueError(f"variant {variant!r}: one of {', '.join(VARIANTS)}")
    tokens = mask.sum().clamp(min=1)
    clipped = ((ratio - 1).abs() > clip_eps).to(logprobs.dtype)
    return GrpoLoss(
        loss=per_rollout.sum() / float(step_rollouts or logprobs.shape[0]),
        kl=((kl * mask).sum() / tokens).detach(),
        clipped=((clipped * mask).sum() / tokens).detach(),
        ratio=((ratio * mask).sum() / tokens).detach(),
    )
