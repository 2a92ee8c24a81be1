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
    own = torch.Generator().manual_seed(0)  # not the global RNG: the boost must not depend on what ran before
    codes = torch.randint(0, 2048, (24, config.talker_config.num_code_groups), generator=own)
    xvector = torch.randn(1, config.talker_config.hidden_size, generator=own)
    batch = collate_sequences([layout_utterance(ids, codes, special)], xvector)
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


# The learning recipe of PROOF 4 (tests/rl/test_rl_learning.py; benchmarks/rl_learning_curve.py plots it): the
# tiny model made EOS-prone (a few percent per step, so about half its 16-frame rollouts run to the cap), rewarded
# for ending after LEARN_TARGET frames; one prompt, 8 rollouts per step, AdamW at 1e-3, KL weight 0.04.
LEARN_BOOST, LEARN_TARGET, LEARN_CAP, LEARN_GROUP, LEARN_LR = 2.0, 3, 16, 8, 1e-3
LEARN_TEXTS = ("Hello there, my friend.",)


def learning_run(model_dir, log_dir, steps: int, rewards, kl_coef: float = 0.04, callbacks=()):
    """A real ``Trainer.fit`` of GRPOModule on the tiny model for ``steps`` optimizer steps; returns (module,
    metrics.csv rows, the adapters before training)."""
    import csv
    from functools import partial

    import lightning as L

    from helpers.teacher_forcing import far_apart_xvectors
    from qwen_tts_lit.model.lora import LoraSpec, trainable_state_dict
    from qwen_tts_lit.train.rl import GRPOModule, PromptDataModule

    module = GRPOModule(
        model=str(model_dir), lora=LoraSpec(rank=8, alpha=16, dropout=0.0), group_size=LEARN_GROUP,
        optimizer=partial(torch.optim.AdamW, lr=LEARN_LR, weight_decay=0.0), kl_coef=kl_coef, rewards=rewards,
        max_new_tokens=LEARN_CAP,
    )  # fmt: skip
    module.configure_model()
    make_eos_prone(module.wrapper, LEARN_BOOST)
    before = {k: v.detach().clone() for k, v in trainable_state_dict(module.tts).items()}
    data = PromptDataModule(list(LEARN_TEXTS), prompts_per_step=1, steps_per_epoch=steps)
    data.xvector = far_apart_xvectors(1, module.base_model.config.talker_config.hidden_size)[0]
    logger = L.pytorch.loggers.CSVLogger(str(log_dir), name="rl", version=0)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=logger, enable_checkpointing=False,
                        limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False,
                        log_every_n_steps=1, callbacks=list(callbacks))  # fmt: skip
    trainer.fit(module, data)
    with open(f"{logger.log_dir}/metrics.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("rl/reward/total")]
    return module, rows, before
