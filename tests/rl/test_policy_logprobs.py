"""PROOF 1 of reinforcement learning (docs/reinforcement_learning.md): the log-probability the sampler recorded for
every group-0 token it drew equals the one the training forward recomputes by teacher forcing on the sampled
sequence, for a batch of rows of different lengths (some ended with EOS, some cut at their cap), with the sampling
settings used (the seed guide's: temperature 0.8, top-k 30, top-p 0.85, repetition penalty 1.05; and a preset with
top-k 3 and penalty 0.5, where repeats are certain and the penalty changes their logits twofold).

Both sides use one definition (``model/policy.py``): log-softmax of the processed logits (repetition penalty, EOS
ban, suppress mask) over the temperature; and, for the record, the truncated distribution actually drawn from
(top-k, top-p on top). The sampler side is Hugging Face's own processors inside upstream's batched ``generate``
(KV cache, left padding); the training side is our layout and a full-sequence forward. Controls that must differ by
``DIFFERENT`` or more: the repetition penalty, the temperature or the suppress mask left out, upstream's double shift.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
from helpers.rl import make_eos_prone, rollout_batch
from helpers.teacher_forcing import DIFFERENT, SAME, far_apart_xvectors

from qwen_tts_lit.model.policy import (
    PolicySpec,
    drawn_tokens,
    processed_logits,
    teacher_forced_logits,
    token_logprobs,
    truncated,
)
from qwen_tts_lit.synthesis.presets import SEED_GUIDE
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

TEXTS = ("Hello there.", "A journey of a thousand miles begins.", "Call Stella, please.", "Good morning to you all.")
CAPS = (9, 14, 6, 12)
SEEDS = (11, 12, 13, 14)
EOS_BOOST = 2.0  # per-step EOS probability of a few percent: some rows end, some run to their cap
# The seed guide's penalty (1.05) changes the tiny model's small logits by less than DIFFERENT, and a penalty > 1
# keeps a seen token out of a small top-k, so no drawn token ever shows it. A "penalty" below 1 (Hugging Face's
# rule: it rewards repeats) with top-k 3 makes repeats certain and doubles their logits: there, leaving the penalty
# out must show. The rule is one expression on both sides of 1.
PENALISED = replace(SEED_GUIDE, top_k=3, repetition_penalty=0.5)
# (preset, EOS boost): with top-k 3 an EOS-prone model ends every row at once, so the penalised preset runs on the
# tiny model as built (its rows run to their caps: still all different lengths)
PRESETS = {"seed guide": (SEED_GUIDE, EOS_BOOST), "penalised": (PENALISED, 0.0)}


@pytest.fixture(scope="module", params=list(PRESETS))
def rollout(tiny_dir, request):
    preset, boost = PRESETS[request.param]
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    tts = import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_dir))
    if boost:
        make_eos_prone(tts, boost)
    xvector = far_apart_xvectors(1, tts.model.config.talker_config.hidden_size)[0]
    utterances = Synthesizer(tts, Voice(xvector=xvector), preset=preset, warmup_seconds=0).synthesize(
        TEXTS, seeds=SEEDS, max_new_tokens=CAPS, batch_size=len(TEXTS)
    )
    batch = rollout_batch(tts, utterances, xvector)
    drawn = drawn_tokens(batch, [not u.hit_max_tokens for u in utterances])
    with torch.no_grad():
        logits = teacher_forced_logits(tts.model.talker, batch, drawn)
    spec = PolicySpec.from_config(tts.model.config, preset.temperature, preset.repetition_penalty)
    return tts, utterances, batch, drawn, logits, spec, preset


def _distance(recomputed: torch.Tensor, utterances, field: str) -> float:
    worst = 0.0
    for row, utterance in enumerate(utterances):
        recorded = getattr(utterance, field)
        worst = max(worst, float((recomputed[row, : len(recorded)] - recorded).abs().max()))
    return worst


def _show(what: str, value: float) -> None:
    if os.environ.get("PROOF_FIGURES"):
        print(f"\n[rl proof 1] {what}: {value:.1e}")


def test_batch_has_rows_of_every_kind(rollout):
    _, utterances, _, drawn, _, _, preset = rollout
    lengths = [len(u.policy_logprobs) for u in utterances]
    assert len(set(lengths)) >= 3, lengths  # rows of different lengths: the batch is padded
    ends = {u.hit_max_tokens for u in utterances}
    assert ends == ({True, False} if preset is SEED_GUIDE else {True}), "rows that ended and rows cut at the cap"
    assert drawn.mask.sum(1).tolist() == lengths


def test_policy_logprobs_equal_the_samplers(rollout):
    _, utterances, _, drawn, logits, spec, _ = rollout
    distance = _distance(token_logprobs(processed_logits(logits, drawn, spec), drawn), utterances, "policy_logprobs")
    _show("policy log-probs, max |recorded - recomputed|", distance)
    assert distance <= SAME


def test_truncated_logprobs_equal_the_distribution_drawn_from(rollout):
    _, utterances, _, drawn, logits, spec, preset = rollout
    drawn_from = truncated(processed_logits(logits, drawn, spec), preset.top_k, preset.top_p)
    distance = _distance(token_logprobs(drawn_from, drawn), utterances, "sampler_logprobs")
    _show("sampler (top-k/top-p) log-probs", distance)
    assert distance <= SAME
    for u in utterances:  # truncation only removes mass: a drawn token is at least as likely after it
        assert bool((u.sampler_logprobs >= u.policy_logprobs - SAME).all())


@pytest.mark.parametrize(
    "control",
    ["no repetition penalty", "no temperature", "no suppress mask", "upstream double shift"],
)
def test_a_wrong_definition_is_caught(rollout, control):
    tts, utterances, batch, drawn, logits, spec, preset = rollout
    if control == "no repetition penalty":
        if preset is not PENALISED:
            pytest.skip("the seed guide's penalty is below DIFFERENT on the tiny model: the penalised preset shows it")
        wrong = token_logprobs(processed_logits(logits, drawn, replace(spec, repetition_penalty=1.0)), drawn)
    elif control == "no temperature":
        wrong = token_logprobs(processed_logits(logits, drawn, replace(spec, temperature=1.0)), drawn)
    elif control == "no suppress mask":  # only the EOS ban kept: log-softmax over all 3072 ids
        wrong = token_logprobs(logits.float() / spec.temperature, drawn)
    else:  # the state two positions back predicts the token (upstream's double shift)
        shifted = replace(drawn, positions=(drawn.positions - 1).clamp(min=0))
        with torch.no_grad():
            wrong_logits = teacher_forced_logits(tts.model.talker, batch, shifted)
        wrong = token_logprobs(processed_logits(wrong_logits, drawn, spec), drawn)
    distance = _distance(wrong, utterances, "policy_logprobs")
    _show(f"control {control}", distance)
    assert distance >= DIFFERENT
