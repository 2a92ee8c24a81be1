"""What the RL tests share: a tiny model that can end its utterances, and a rollout batch built from utterances."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from qwen_tts_lit.model.layout import SpecialIds, TalkerBatch, assistant_prompt, collate_sequences, layout_utterance
from qwen_tts_lit.model.step import run_talker, talker_input_embeddings


def make_eos_prone(tts, boost: float) -> None:
    """Give the tiny random model a plausible EOS, in place: its EOS logit is raised by about ``boost`` at every
    frame position. The random tiny model's EOS has probability ~1/2049 per step, so it never ends an utterance
    and no length reward could move it; a real model ends its sentences. Only the EOS row of ``codec_head``
    changes: it becomes ``boost`` times the mean direction of the talker's last hidden states at frame positions
    (so ``h . w_eos`` averages ``boost``)."""
    talker, config = tts.model.talker, tts.model.config
    special = SpecialIds.from_config(config)
    ids = tts.processor.tokenizer(assistant_prompt("Hello there, how are you?"))["input_ids"]
    codes = torch.randint(
        0, 2048, (24, config.talker_config.num_code_groups), generator=torch.Generator().manual_seed(0)
    )
    batch = collate_sequences([layout_utterance(ids, codes, special)], torch.randn(1, config.talker_config.hidden_size))
    with torch.no_grad():
        hidden, _ = run_talker(talker, talker_input_embeddings(talker, batch), batch.attention_mask)
        mean = hidden[batch.frame_mask].mean(0)  # (D,)
        talker.codec_head.weight[special.codec_eos] = boost * mean / mean.norm() ** 2


def rollout_batch(tts, utterances: Sequence, xvector: torch.Tensor) -> TalkerBatch:
    """The training layout of ``utterances`` (each spoken by ``xvector``), right-padded."""
    special = SpecialIds.from_config(tts.model.config)
    sequences = [
        layout_utterance(tts.processor.tokenizer(assistant_prompt(u.text))["input_ids"], u.codes, special)
        for u in utterances
    ]
    return collate_sequences(sequences, xvector.expand(len(sequences), -1))
