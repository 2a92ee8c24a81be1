"""The corrected training step as pure functions, with a switch per upstream bug for ablations.

Each :class:`StepFixes` switch defaults to True. False reproduces what upstream's ``finetuning/sft_12hz.py``
computes (docs/upstream_bugs.md gives the upstream lines), so an ablation can measure what each bug costs:

- ``text_projection``: text embeddings go through ``talker.text_projection`` (masked after projecting, since the
  projection has a bias). Off: raw ``text_embedding`` (crashes when text_hidden != hidden, as on 0.6B).
- ``talker_shift``: the state at p predicts ``labels[p + 1]``. Off: upstream's double shift, ``labels[p + 2]``.
- ``sub_talker_alignment``: the sub-talker is fed the talker state that predicted the frame's group 0 (position
  p_k - 1). Off: upstream HEAD's state at p_k, which has already seen the frame.
- ``sub_talker_shift``: sub-talker logits i predict group i + 1 (plain CE). Off: upstream's double shift.

Losses come back as token sums and counts so the caller can normalise per token of a whole optimizer step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from qwen_tts_lit.model.layout import IGNORE_INDEX, TalkerBatch

SUB_TALKER_WEIGHT = 0.3  # upstream's weight since commit 680d4e9


@dataclass(frozen=True)
class StepFixes:
    """Which upstream bugs are corrected (all True = the correct step; False reproduces upstream, for ablations)."""

    text_projection: bool = True
    """Bug 1: text embeddings through talker.text_projection (off crashes when text and talker widths differ)."""
    talker_shift: bool = True
    """Bug 2: talker labels shifted once (off: twice, the model learns to predict two frames ahead)."""
    sub_talker_alignment: bool = True
    """Bug 3a: the sub-talker is fed the state that predicted the frame (p-1); off: upstream HEAD's state at p."""
    sub_talker_shift: bool = True
    """Bug 3b: sub-talker targets shifted once (off: twice, code group 1 is never a target)."""


@dataclass
class LossSum:
    """A cross-entropy summed over ``count`` target tokens."""

    total: torch.Tensor
    count: int

    @property
    def mean(self) -> torch.Tensor:
        return self.total / max(self.count, 1)


@dataclass
class StepOutput:
    talker: LossSum
    sub_talker: LossSum
    talker_logits: torch.Tensor  # (B, T, V)
    sub_talker_logits: torch.Tensor  # (F, G-1, V_sub), one row per frame
    sub_talker_targets: torch.Tensor  # (F, G-1)


def talker_input_embeddings(talker, batch: TalkerBatch, fix_text_projection: bool = True) -> torch.Tensor:
    """Sum of the text channel, the codec channel (with the x-vector in the speaker slot) and the embeddings of
    code groups 1..15 at frame positions, exactly as ``generate`` feeds the talker. Returns (B, T, D)."""
    text = talker.model.text_embedding(batch.text_ids)  # (B, T, Dt)
    if fix_text_projection:
        text = talker.text_projection(text)  # (B, T, D)
    text = text * batch.attention_mask.unsqueeze(-1).to(text.dtype)
    codec = talker.model.codec_embedding(batch.codec_ids) * batch.codec_mask.unsqueeze(-1).to(text.dtype)
    speaker = batch.speaker_mask.unsqueeze(-1).to(text.dtype) * batch.xvectors.unsqueeze(1).to(text.dtype)
    frames = batch.frame_mask.unsqueeze(-1).to(text.dtype)
    groups = sum(
        embedding(batch.codes[..., i + 1]) * frames
        for i, embedding in enumerate(talker.code_predictor.get_input_embeddings())
    )  # (B, T, D)
    return text + codec + speaker + groups


def run_talker(talker, embeddings: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One full-sequence talker pass: (last hidden state (B, T, D), group-0 logits (B, T, V))."""
    hidden = talker.model(inputs_embeds=embeddings, attention_mask=attention_mask, use_cache=False).last_hidden_state
    return hidden, talker.codec_head(hidden)


def talker_loss(logits: torch.Tensor, labels: torch.Tensor, fix_talker_shift: bool = True) -> LossSum:
    """Cross-entropy of group-0 logits. Correct: state p predicts labels[p+1]. Upstream: labels[p+2]."""
    shift = 1 if fix_talker_shift else 2
    return _summed_cross_entropy(logits[:, :-shift], labels[:, shift:])


def sub_talker_inputs(
    hidden: torch.Tensor, batch: TalkerBatch, fix_sub_talker_alignment: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Talker states and code frames for the sub-talker: ((F, D), (F, G)), one row per frame in the batch."""
    if fix_sub_talker_alignment:
        states = hidden[:, :-1][batch.frame_mask[:, 1:]]  # position p_k - 1: the state that predicted group 0
    else:
        states = hidden[:, :-1][batch.frame_mask[:, :-1]]  # upstream HEAD: position p_k, already saw frame k
    return states, batch.codes[batch.frame_mask]


def run_sub_talker(talker, states: torch.Tensor, frame_codes: torch.Tensor) -> torch.Tensor:
    """Teacher-forced code predictor: input [state, g0, g1, .., g14] -> logits for groups 1..15, (F, G-1, V)."""
    embeddings = [states.unsqueeze(1), talker.get_input_embeddings()(frame_codes[:, :1])]
    embeddings += [
        embedding(frame_codes[:, i + 1 : i + 2])
        for i, embedding in enumerate(talker.code_predictor.get_input_embeddings()[:-1])
    ]
    return talker.code_predictor.forward_finetune(inputs_embeds=torch.cat(embeddings, dim=1)).logits


def sub_talker_loss(logits: torch.Tensor, frame_codes: torch.Tensor, fix_sub_talker_shift: bool = True) -> LossSum:
    """Cross-entropy of the sub-talker. Correct: logits[:, i] predict group i+1. Upstream: logits[:, i] vs group i+2."""
    targets = frame_codes[:, 1:]  # (F, G-1)
    if fix_sub_talker_shift:
        return _summed_cross_entropy(logits, targets)
    return _summed_cross_entropy(logits[:, :-1], targets[:, 1:])


def training_step_losses(talker, batch: TalkerBatch, fixes: StepFixes = StepFixes()) -> StepOutput:
    """Embeddings -> talker -> talker loss -> sub-talker -> sub-talker loss."""
    embeddings = talker_input_embeddings(talker, batch, fixes.text_projection)
    hidden, logits = run_talker(talker, embeddings, batch.attention_mask)
    states, frame_codes = sub_talker_inputs(hidden, batch, fixes.sub_talker_alignment)
    sub_logits = run_sub_talker(talker, states, frame_codes)
    return StepOutput(
        talker=talker_loss(logits, batch.labels, fixes.talker_shift),
        sub_talker=sub_talker_loss(sub_logits, frame_codes, fixes.sub_talker_shift),
        talker_logits=logits,
        sub_talker_logits=sub_logits,
        sub_talker_targets=frame_codes[:, 1:],
    )


def combine_losses(
    talker: LossSum,
    sub_talker: LossSum,
    sub_talker_weight: float = SUB_TALKER_WEIGHT,
    talker_normaliser: int | None = None,
    sub_talker_normaliser: int | None = None,
) -> torch.Tensor:
    """talker CE + weight * sub-talker CE, each averaged over its normaliser's tokens (default: this batch's)."""
    talker_mean = talker.total / (talker_normaliser or max(talker.count, 1))
    sub_mean = sub_talker.total / (sub_talker_normaliser or max(sub_talker.count, 1))
    return talker_mean + sub_talker_weight * sub_mean


def step_normalisers(
    step_frames: int | None, step_utterances: int | None, num_code_groups: int, fixes: StepFixes = StepFixes()
) -> tuple[int | None, int | None]:
    """Target counts of a whole optimizer step: (talker tokens, sub-talker tokens); (None, None) if unknown.

    Talker: every frame plus one codec_eos per utterance. Sub-talker: groups 1..G-1 of every frame (one fewer
    under upstream's double shift, which never targets group 1).
    """
    if step_frames is None or step_utterances is None:
        return None, None
    sub_targets_per_frame = num_code_groups - 1 if fixes.sub_talker_shift else num_code_groups - 2
    return step_frames + step_utterances, step_frames * sub_targets_per_frame


def _summed_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> LossSum:
    flat_targets = targets.reshape(-1)
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), flat_targets, ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return LossSum(total, int((flat_targets != IGNORE_INDEX).sum()))
