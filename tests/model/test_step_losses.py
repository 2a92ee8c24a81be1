"""Losses against hand computations, upstream-mode losses against upstream's own code paths, and the layout."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qwen_tts_lit.model.layout import (
    IGNORE_INDEX,
    SpecialIds,
    assistant_prompt,
    collate_sequences,
    layout_utterance,
)
from qwen_tts_lit.model.step import (
    LossSum,
    StepFixes,
    combine_losses,
    run_talker,
    step_normalisers,
    sub_talker_inputs,
    sub_talker_loss,
    talker_input_embeddings,
    talker_loss,
    training_step_losses,
)

SPECIAL = SpecialIds(
    tts_pad=3, tts_bos=4, tts_eos=5, codec_pad=2148, codec_bos=2149, codec_eos=2150,
    codec_think=2154, codec_nothink=2155, codec_think_bos=2156, codec_think_eos=2157,
)  # fmt: skip


def _nll(logits_row: list[float], target: int) -> float:
    return -(logits_row[target] - math.log(sum(math.exp(v) for v in logits_row)))


# ---------------------------------------------------------------- layout


def test_layout_matches_the_upstream_table():
    prompt = [1, 50, 51, 60, 61, 62, 2, 51, 1, 50, 51]  # role(3) + content(3) + suffix(5)
    codes = torch.arange(2 * 16).reshape(2, 16)
    seq = layout_utterance(prompt, codes, SPECIAL)
    # positions: 0-2 role, 3-5 prefix, 6 speaker, 7 bos, 8-10 content, 11 eos, 12 codec_bos, 13-14 frames, 15 codec_eos
    assert seq.text_ids.tolist() == [1, 50, 51, 3, 3, 3, 3, 4, 60, 61, 62, 5, 3, 3, 3, 3]
    assert seq.codec_ids.tolist() == [0, 0, 0, 2155, 2156, 2157, 0, 2148, 2148, 2148, 2148, 2148, 2149, 0, 16, 2150]
    assert seq.codec_mask.tolist() == [False] * 3 + [True] * 3 + [False] + [True] * 9
    assert seq.speaker_mask.nonzero().flatten().tolist() == [6]  # upstream's speaker slot without a language tag
    assert seq.frame_mask.nonzero().flatten().tolist() == [13, 14]
    assert seq.labels.tolist() == [IGNORE_INDEX] * 13 + [0, 16, 2150]
    assert torch.equal(seq.codes[13:15], codes) and seq.codes[:13].abs().sum() == 0


def test_language_tag_moves_the_speaker_slot():
    seq = layout_utterance([1, 50, 51, 60, 2, 51, 1, 50, 51], torch.zeros(1, 16, dtype=torch.long), SPECIAL, 2050)
    assert seq.codec_ids[3:7].tolist() == [2154, 2156, 2050, 2157]
    assert seq.speaker_mask.nonzero().flatten().tolist() == [7]


def test_layout_rejects_empty_inputs():
    with pytest.raises(ValueError, match="no content"):
        layout_utterance([1, 50, 51, 2, 51, 1, 50, 51], torch.zeros(3, 16), SPECIAL)
    with pytest.raises(ValueError, match="non-empty"):
        layout_utterance([1, 50, 51, 60, 2, 51, 1, 50, 51], torch.zeros(0, 16), SPECIAL)


def test_collate_pads_without_leaking_into_targets():
    short = layout_utterance([1, 50, 51, 60, 2, 51, 1, 50, 51], torch.ones(1, 16, dtype=torch.long), SPECIAL)
    long = layout_utterance([1, 50, 51, 60, 61, 2, 51, 1, 50, 51], torch.ones(4, 16, dtype=torch.long), SPECIAL)
    batch = collate_sequences([short, long], torch.zeros(2, 8))
    pad = batch.attention_mask[0] == 0
    assert int(pad.sum()) == long.length - short.length
    assert (batch.labels[0][pad] == IGNORE_INDEX).all()
    assert not batch.frame_mask[0][pad].any() and not batch.speaker_mask[0][pad].any()
    assert not batch.codec_mask[0][pad].any()
    assert batch.padding_ratio == pytest.approx(int(pad.sum()) / batch.attention_mask.numel())


# ---------------------------------------------------------------- losses by hand


def test_talker_loss_takes_one_shift_by_hand():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])  # (1, 4, 3)
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, 0]])
    # state p predicts labels[p + 1]: rows 0, 1, 2 against 1, 2, 0
    expected = _nll([2, 0, 0], 1) + _nll([0, 1, 0], 2) + _nll([0, 0, 3], 0)
    loss = talker_loss(logits, labels)
    assert loss.count == 3
    assert loss.total.item() == pytest.approx(expected, rel=1e-6)
    # upstream's double shift: rows 0, 1 against labels 2, 0
    upstream = talker_loss(logits, labels, fix_talker_shift=False)
    assert upstream.count == 2
    assert upstream.total.item() == pytest.approx(_nll([2, 0, 0], 2) + _nll([0, 1, 0], 0), rel=1e-6)


def test_sub_talker_loss_aligned_by_hand():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]]])  # (F=1, G-1=3, V=2)
    frame_codes = torch.tensor([[7, 1, 0, 1]])  # group 0 is the talker's; groups 1..3 are targets
    expected = _nll([1, 0], 1) + _nll([0, 2], 0) + _nll([0.5, 0.5], 1)
    loss = sub_talker_loss(logits, frame_codes)
    assert (loss.count, loss.total.item()) == (3, pytest.approx(expected, rel=1e-6))
    upstream = sub_talker_loss(logits, frame_codes, fix_sub_talker_shift=False)  # logits[:, i] vs group i + 2
    assert (upstream.count, upstream.total.item()) == (2, pytest.approx(_nll([1, 0], 0) + _nll([0, 2], 1), rel=1e-6))


def test_combine_losses_weights_and_normalises():
    talker, sub = LossSum(torch.tensor(6.0), 3), LossSum(torch.tensor(10.0), 5)
    assert combine_losses(talker, sub).item() == pytest.approx(2.0 + 0.3 * 2.0)
    assert combine_losses(talker, sub, 1.0, talker_normaliser=6, sub_talker_normaliser=10).item() == pytest.approx(2.0)


# ---------------------------------------------------------------- upstream mode == upstream's code


@pytest.fixture(scope="module")
def batch(tiny_model):
    torch.manual_seed(3)
    tokenizer = tiny_model.processor.tokenizer
    special = SpecialIds.from_config(tiny_model.model.config)
    seqs = [
        layout_utterance(tokenizer(assistant_prompt(text))["input_ids"], torch.randint(0, 2048, (n, 16)), special)
        for text, n in (("Hello there.", 5), ("A much longer sentence than the first one.", 9))
    ]
    return collate_sequences(seqs, torch.randn(2, 64), utterance_ids=("a", "b"))


def test_corrected_talker_loss_equals_plain_cross_entropy(tiny_model, batch):
    talker = tiny_model.model.talker
    with torch.no_grad():
        _, logits = run_talker(talker, talker_input_embeddings(talker, batch), batch.attention_mask)
        ours = talker_loss(logits, batch.labels).mean
        reference = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch.labels[:, 1:].flatten(), ignore_index=-100)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)


def test_upstream_talker_mode_equals_upstream_hf_loss(tiny_model, batch):
    """sft_12hz.py: talker(inputs[:, :-1], labels=labels[:, 1:]) whose HF ForCausalLMLoss shifts again."""
    talker = tiny_model.model.talker
    with torch.no_grad():
        embeddings = talker_input_embeddings(talker, batch)
        upstream = talker(
            inputs_embeds=embeddings[:, :-1], attention_mask=batch.attention_mask[:, :-1], labels=batch.labels[:, 1:]
        ).loss
        ours = training_step_losses(talker, batch, StepFixes(talker_shift=False)).talker.mean
    assert ours.item() == pytest.approx(upstream.item(), rel=1e-5)


def test_upstream_sub_talker_mode_equals_upstream_finetune_path(tiny_model, batch):
    """sft_12hz.py HEAD: hidden[codec_mask[:, :-1]] into forward_sub_talker_finetune (HF loss, shifted again)."""
    talker = tiny_model.model.talker
    with torch.no_grad():
        embeddings = talker_input_embeddings(talker, batch)
        out = talker(
            inputs_embeds=embeddings[:, :-1], attention_mask=batch.attention_mask[:, :-1], output_hidden_states=True
        )
        hidden = out.hidden_states[0][-1]  # (B, T-1, D)
        codec_ids = batch.codes[batch.frame_mask]
        _, upstream = talker.forward_sub_talker_finetune(codec_ids, hidden[batch.frame_mask[:, :-1]])
        fixes = StepFixes(sub_talker_alignment=False, sub_talker_shift=False)
        ours = training_step_losses(talker, batch, fixes).sub_talker.mean
    assert ours.item() == pytest.approx(upstream.item(), rel=1e-5)


def test_sub_talker_states_are_the_predicting_positions(tiny_model, batch):
    hidden = torch.arange(batch.attention_mask.numel(), dtype=torch.float).reshape(*batch.attention_mask.shape, 1)
    states, codes = sub_talker_inputs(hidden, batch)
    positions = batch.frame_mask.nonzero()
    assert torch.equal(states.flatten(), hidden[positions[:, 0], positions[:, 1] - 1].flatten())
    assert codes.shape == (int(batch.frame_mask.sum()), 16)


def test_accumulating_four_single_batches_equals_one_batch_of_four(tiny_model):
    """Token-weighted normalisation over the optimizer step: 4 x batch 1 gives the gradient of batch 4."""
    talker = tiny_model.model.talker
    tokenizer = tiny_model.processor.tokenizer
    special = SpecialIds.from_config(tiny_model.model.config)
    torch.manual_seed(5)
    sequences = [
        layout_utterance(tokenizer(assistant_prompt(t))["input_ids"], torch.randint(0, 2048, (n, 16)), special)
        for t, n in (("One.", 3), ("Two words here.", 8), ("Three is longer still.", 12), ("Four.", 5))
    ]
    xvectors = torch.randn(4, 64)
    step_talker, step_sub = step_normalisers(step_frames=3 + 8 + 12 + 5, step_utterances=4, num_code_groups=16)
    assert step_talker == sum(int((s.labels != IGNORE_INDEX).sum()) for s in sequences)
    params = [p for p in talker.parameters() if p.requires_grad]

    def grads(batches) -> list[torch.Tensor]:
        talker.zero_grad()
        for b in batches:
            out = training_step_losses(talker, b)
            combine_losses(out.talker, out.sub_talker, 0.3, step_talker, step_sub).backward()
        return [p.grad.clone() for p in params]

    whole = grads([collate_sequences(sequences, xvectors)])
    accumulated = grads([collate_sequences([s], xvectors[i : i + 1]) for i, s in enumerate(sequences)])
    talker.zero_grad()
    for a, b in zip(whole, accumulated, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
