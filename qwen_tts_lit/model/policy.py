"""The RL policy of the talker's group-0 stream, recomputed by teacher forcing: pure functions of logits and tokens.

What a sampled group-0 token's log-probability means (the definition the sampler records, ``upstream.sampling``,
and these functions recompute; tests/rl/test_policy_logprobs.py proves the two equal):

    pi(a_t | s_t) = softmax( process(logits_t, a_<t) / temperature )[a_t]

``process`` is what upstream's ``generate`` always applies before sampling, a deterministic function of the prefix:
the repetition penalty over the row's earlier group-0 tokens (Hugging Face's rule: a seen token's logit divided by
the penalty when positive, multiplied when negative), EOS banned for the first ``min_new_tokens`` steps, and the top
1024 ids but EOS suppressed. Top-k and top-p are left out of the policy (they are the sampler's truncation, as in
verl and TRL): with them in, a token the old policy could draw may fall outside the new policy's top-k set and its
ratio is 0 or infinite. :func:`truncated` gives the distribution actually drawn from, for the record and the proof.

Positions: the talker state at position p predicts ``labels[p + 1]`` (``model.layout``: the single shift the
training step takes), so the logits of the t-th drawn token of a row sit at the position before its t-th label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qwen_tts_lit.model.layout import IGNORE_INDEX, TalkerBatch
from qwen_tts_lit.model.step import run_talker, talker_input_embeddings

UPSTREAM_MIN_NEW_TOKENS = 2  # upstream's generate bans EOS for the first 2 steps (talker_kwargs["min_new_tokens"])
SUPPRESSED_TOP_IDS = 1024  # upstream's generate suppresses the top 1024 ids of the codec vocabulary, EOS excepted


@dataclass(frozen=True)
class PolicySpec:
    """Which sampling settings define the policy (the RL ratio's): temperature and repetition penalty, with the
    checkpoint's EOS id and vocabulary size for upstream's fixed masks."""

    temperature: float
    """Sampling temperature (> 0) the rollouts used."""
    repetition_penalty: float
    """Repetition penalty the rollouts used (1.0: none)."""
    eos: int
    """The codec EOS id (``talker_config.codec_eos_token_id``)."""
    vocab_size: int
    """The talker's codec vocabulary (``talker_config.vocab_size``)."""
    min_new_tokens: int = UPSTREAM_MIN_NEW_TOKENS
    """Steps at the start of a row where EOS cannot be drawn."""

    @classmethod
    def from_config(cls, config, temperature: float, repetition_penalty: float) -> PolicySpec:
        """For a ``Qwen3TTSConfig`` and the sampling settings of the rollouts."""
        talker = config.talker_config
        return cls(temperature, repetition_penalty, talker.codec_eos_token_id, talker.vocab_size)


@dataclass
class DrawnTokens:
    """The drawn group-0 tokens of a teacher-forced batch, row by row, padded to the longest row."""

    tokens: torch.Tensor  # (B, S) long, 0 on padding
    mask: torch.Tensor  # (B, S) bool, a real draw
    positions: torch.Tensor  # (B, S) long, the position whose logits each draw came from (0 on padding)


def drawn_tokens(batch: TalkerBatch, ended: Sequence[bool]) -> DrawnTokens:
    """Each row's draws: its frames' group-0 codes, then the codec_eos the layout appends when the row really
    ended (``ended[b]``: a runaway, cut at its cap, drew no EOS and its appended label is not a draw)."""
    targets = batch.labels[:, 1:] != IGNORE_INDEX  # (B, T-1): position p's logits predict labels[p + 1]
    rows = []
    for b, did_end in enumerate(ended):
        positions = targets[b].nonzero().flatten()
        rows.append(positions if did_end else positions[:-1])
    width = max(len(r) for r in rows)
    positions = torch.zeros(len(rows), width, dtype=torch.long, device=batch.labels.device)
    mask = torch.zeros(len(rows), width, dtype=torch.bool, device=batch.labels.device)
    for b, row in enumerate(rows):
        positions[b, : len(row)], mask[b, : len(row)] = row, True
    tokens = batch.labels.gather(1, positions + 1).masked_fill(~mask, 0)  # (B, S)
    return DrawnTokens(tokens, mask, positions)


def processed_logits(logits: torch.Tensor, drawn: DrawnTokens, spec: PolicySpec) -> torch.Tensor:
    """The policy's logits for every draw: (B, S, V) float32, from the raw talker logits (B, S, V) at the draws'
    positions: repetition penalty over the row's earlier draws, EOS ban, suppress mask, then the temperature."""
    logits = logits.float()
    if spec.repetition_penalty != 1.0:
        onehot = torch.nn.functional.one_hot(drawn.tokens, logits.shape[-1]) * drawn.mask[..., None]  # (B, S, V)
        seen = (onehot.cumsum(1) - onehot) > 0  # seen[b, t, v]: v was drawn before step t
        penalised = torch.where(logits > 0, logits / spec.repetition_penalty, logits * spec.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    banned = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    banned[spec.vocab_size - SUPPRESSED_TOP_IDS :] = True
    banned[spec.eos] = False
    logits = logits.masked_fill(banned, float("-inf"))
    early = torch.arange(logits.shape[1], device=logits.device) < spec.min_new_tokens  # (S,)
    logits[:, :, spec.eos] = logits[:, :, spec.eos].masked_fill(early, float("-inf"))
    return logits / spec.temperature


def token_logprobs(logits: torch.Tensor, drawn: DrawnTokens) -> torch.Tensor:
    """log pi of each draw under (B, S, V) policy logits: (B, S), 0 on padding."""
    picked = logits.log_softmax(-1).gather(-1, drawn.tokens[..., None])[..., 0]
    return picked.masked_fill(~drawn.mask, 0.0)


def truncated(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """The sampler's truncation of (..., V) policy logits, as Hugging Face's warpers do it (top-k keeps ties with
    the k-th value; top-p drops the low tail whose mass is at most 1 - top_p, keeping at least one token)."""
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ascending, order = logits.sort(dim=-1)
        drop = ascending.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[..., -1] = False
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def teacher_forced_logits(talker, batch: TalkerBatch, drawn: DrawnTokens) -> torch.Tensor:
    """The training forward (the layout and embeddings the SFT step uses) read at the draws: (B, S, V)."""
    _, logits = run_talker(talker, talker_input_embeddings(talker, batch), batch.attention_mask)  # (B, T, V)
    return logits.gather(1, drawn.positions[..., None].expand(-1, -1, logits.shape[-1]))


def policy_logprobs(talker, batch: TalkerBatch, drawn: DrawnTokens, spec: PolicySpec) -> torch.Tensor:
    """log pi_theta of every draw of ``batch`` under the talker's current weights: (B, S), differentiable."""
    return token_logprobs(processed_logits(teacher_forced_logits(talker, batch, drawn), drawn, spec), drawn)
