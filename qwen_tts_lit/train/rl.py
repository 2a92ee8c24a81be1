"""GRPOModule: post-training the talker's group-0 stream with GRPO on the judges' rewards, as a LightningModule.

The prompts are the texts of the training rows of the SFT datamodule (``QwenTTSDataModule``: the same prepared
data, held-out set, voice, EvalSuite and run folder as SFT), or a plain text list (:class:`PromptDataModule`). A
step: G rollouts per prompt from the batched Synthesizer (one seeded generator per row, the sampling settings the
model is used with), each rollout's rewards from the judges, group-relative advantages, then the policy's
log-probabilities of the drawn tokens by teacher forcing on the training layout (``model/policy.py``: the same
definition the sampler recorded, proven equal in tests/rl), the reference's with the LoRA adapters at scale 0, and
the clipped, KL-penalised loss (``model/grpo.py``). One update per rollout batch, so the old policy is the sampler's
own record and the ratio is 1 up to float rounding (``rl/logprob_gap`` logs how far: a live check of the proof).

Everything else (loading, LoRA, optimizer and schedule, checkpoints holding only the adapters, the x-vector) is the
SFT module's. docs/reinforcement_learning.md.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.model.grpo import VARIANTS, group_advantages, grpo_loss
from qwen_tts_lit.model.layout import SpecialIds, assistant_prompt, collate_sequences, layout_utterance
from qwen_tts_lit.model.lora import LoraSpec, adapters_at_scale, cast_adapter_inputs, trainable_state_dict
from qwen_tts_lit.model.policy import DrawnTokens, PolicySpec, drawn_tokens, policy_logprobs
from qwen_tts_lit.model.step import SUB_TALKER_WEIGHT, StepFixes, combine_losses, training_step_losses
from qwen_tts_lit.runs.weights import load_trained
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE, SEED_GUIDE, GenerationPreset
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Utterance, Voice, eval_mode
from qwen_tts_lit.train.module import QwenTTSModule
from qwen_tts_lit.train.rewards import Rewards, RewardWeights
from qwen_tts_lit.train.rl_start import resolve_start


def rollout_seed(seed: int, step: int, rank: int, row: int) -> int:
    """The seed of one rollout row: a hash of (run seed, optimizer step, rank, row: its place among the rows this rank
    draws in that step, every micro-batch counted), so a resumed run draws the same rollouts and no two rows of a run
    share a generator."""
    digest = hashlib.sha256(f"{seed}:{step}:{rank}:{row}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class GRPOModule(QwenTTSModule):
    def __init__(
        self,
        model: str = "tiny",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        attn_implementation: str = "sdpa",
        finetune: Literal["lora"] = "lora",
        lora: LoraSpec = LoraSpec(dropout=0.0),  # noqa: B008 - a frozen settings record, shown by jsonargparse
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = None,
        warmup_ratio: float = 0.0,
        seed: int = 0,
        gradient_checkpointing: bool = False,
        group_size: int = 8,
        variant: Literal["grpo", "dr_grpo"] = "grpo",
        clip_eps: float = 0.2,
        kl_coef: float = 0.04,
        rewards: RewardWeights = RewardWeights(),  # noqa: B008
        judges: JudgeSettings = JudgeSettings(),  # noqa: B008
        preset: GenerationPreset = SEED_GUIDE,
        max_new_tokens: int = 100,
        language: str = "en",
        init_from: str | None = None,
        init_epoch: int | None = None,
        init_scale: float | None = None,
    ) -> None:
        """
        Args:
            model: Qwen3-TTS checkpoint: a local directory, a hub id, or "tiny".
            dtype: Weight dtype at load time.
            attn_implementation: Attention kernel passed to from_pretrained.
            finetune: "lora" only: the reference policy is the adapters at scale 0.
            lora: The RL adapters (their scale 0 is the reference policy). Dropout must be 0: the sampler drew
                without it, and the ratio must compare the same function.
            optimizer: Optimizer factory over the adapters.
            scheduler: LR scheduler factory; None = constant after ``warmup_ratio`` of linear warm-up and cosine.
            warmup_ratio: Share of optimizer steps spent warming up (default scheduler only).
            seed: Seeds the adapter init and every rollout row's generator.
            gradient_checkpointing: Recompute activations in backward (non-reentrant), as in SFT (docs/memory.md).
            group_size: Rollouts per prompt (G): the group whose mean reward is the baseline.
            variant: "grpo" (advantages over the group's std, tokens averaged per rollout) or "dr_grpo" (no std,
                tokens summed over a constant: max_new_tokens + 1).
            clip_eps: PPO clip range of the ratio.
            kl_coef: Weight of the k3 KL penalty to the reference (the adapters at scale 0).
            rewards: The weight of each reward component (docs/reinforcement_learning.md).
            judges: The reward judges' models and devices (the EvalSuite's settings: ASR model, device, ...).
            preset: The sampling settings of the rollouts: those the model will be used with. Temperature and
                repetition penalty enter the policy; top-k and top-p only the sampler.
            max_new_tokens: Frame cap of every rollout (a rollout reaching it is a runaway).
            language: Language of the prompts, for the error-rate reward ("en", "zh", ...).
            init_from: Where RL starts: an SFT run folder (runs/NAME/version_N: the epoch and lora_scale of its chosen
                cell), or one SFT checkpoint (RUN/checkpoints/epoch=NNN.ckpt), with the same LoRA
                settings; the reference policy is then that start, not the base model. None: fresh adapters on the
                base model, and the reference is the adapters at scale 0.
            init_epoch: With a run folder: the epoch to start from instead of the chosen cell's (then the run
                need not have chosen one).
            init_scale: The strength the SFT adapters start at; None: the run's chosen cell's lora_scale, else 1.0
                (as trained). Their lora_B weights are multiplied by it, which is exactly running
                them at that scale.
        """
        super().__init__(model=model, dtype=dtype, attn_implementation=attn_implementation, finetune=finetune,
                         lora=lora, optimizer=optimizer, scheduler=scheduler, warmup_ratio=warmup_ratio,
                         seed=seed, gradient_checkpointing=gradient_checkpointing)  # fmt: skip
        problems = [f"model.group_size {group_size}: must be >= 2 (a group of one has no baseline)"] * (group_size < 2)
        problems += [f"model.variant {variant!r}: one of {', '.join(VARIANTS)}"] * (variant not in VARIANTS)
        problems += [f"model.lora.dropout {lora.dropout}: must be 0 for RL (the sampler draws without it)"] * (
            lora.dropout != 0
        )
        problems += ["model.preset.do_sample must be true: RL learns from sampled rollouts"] * (not preset.do_sample)
        problems += [f"model.max_new_tokens {max_new_tokens}: must be >= 1"] * (max_new_tokens < 1)
        problems += rewards.problems()
        if problems:
            raise UserError("\n".join(problems))
        # Only this class's arguments stay in the hyper-parameters: a resumed fit parses them back into GRPOModule,
        # which takes no SFT-only setting (what is fixed for RL is fixed in configure_model and validation_step).
        for name in ("sub_talker_weight", "fixes"):
            self.hparams.pop(name, None)
        self.hparams.update(rewards=asdict(rewards), preset=asdict(preset), lora=lora.as_dict(), judges=asdict(judges))
        self.judge_settings = judges
        self.reward_weights, self.preset = rewards, preset
        self.rewards: Rewards | None = None
        self.prompts: dict[str, str] = {}  # training row id -> its text, when the data is a prepared dataset
        self._synthesizer: Synthesizer | None = None
        self.start = resolve_start(init_from, init_epoch, init_scale)  # before anything loads: errors come first
        self.reference: dict[str, torch.Tensor] | None = None  # the starting adapters, when RL starts from SFT
        self.step_seconds: dict[str, float] = {}  # this step's rollout and reward wall time, logged under time/
        self._step_rows = (-1, 0)  # (optimizer step, rollout rows drawn in it so far on this rank)

    # The EvalSuite evaluates the weights before the first step (the SFT cell or the base model) beside the RL
    # checkpoints, on the same sentences and seeds, so the chosen cell's record can tell whether RL beat its start.
    evaluates_start = True

    # ------------------------------------------------------------------ pieces of a step

    @property
    def synthesizer(self) -> Synthesizer:
        if self._synthesizer is None:
            if self.xvector is None:
                raise UserError("RL needs the target voice's x-vector: data.speaker names a prepared dataset or run")
            self._synthesizer = Synthesizer(self.wrapper, Voice(xvector=self.xvector), preset=self.preset)
        return self._synthesizer

    @property
    def policy_spec(self) -> PolicySpec:
        return PolicySpec.from_config(self.base_model.config, self.preset.temperature, self.preset.repetition_penalty)

    def rollouts(self, texts: Sequence[str]) -> list[Utterance]:
        """G rollouts of every prompt, group by group, each row from its own seeded generator."""
        texts = [text for text in texts for _ in range(self.hparams.group_size)]
        # Rows are numbered across the optimizer step's micro-batches (global_step only moves after the last one):
        # numbered per micro-batch, every micro-batch of an accumulated step would reuse the first one's seeds, and
        # accumulation would not draw the rollouts of the one big batch it stands for.
        step = self.global_step
        first = self._step_rows[1] if self._step_rows[0] == step else 0
        self._step_rows = (step, first + len(texts))
        seeds = [rollout_seed(self.hparams.seed, step, self.global_rank, first + i) for i in range(len(texts))]
        cast_adapter_inputs(self.tts, True)  # generation runs outside autocast
        try:
            return self.synthesizer.synthesize(
                texts, seeds, max_new_tokens=self.hparams.max_new_tokens, batch_size=len(texts),
                decode=self.reward_weights.reads_audio,
            )  # fmt: skip
        finally:
            cast_adapter_inputs(self.tts, not str(self.trainer.precision).endswith("-mixed"))

    def teacher_forcing(self, utterances: Sequence[Utterance]):
        """The rollouts in the training layout, their draws and the sampler's log-probabilities (B, S)."""
        special = SpecialIds.from_config(self.base_model.config)
        tokenizer = self.wrapper.processor.tokenizer
        sequences = [layout_utterance(tokenizer(assistant_prompt(u.text))["input_ids"], u.codes, special)
                     for u in utterances]  # fmt: skip
        batch = collate_sequences(sequences, self.xvector.expand(len(utterances), -1)).to(self.device)
        drawn = drawn_tokens(batch, [not u.hit_max_tokens for u in utterances])
        old = torch.zeros(drawn.mask.shape, device=self.device)
        for row, utterance in enumerate(utterances):
            old[row, : len(utterance.policy_logprobs)] = utterance.policy_logprobs.to(self.device)
        return batch, drawn, old

    def configure_model(self) -> None:
        """The SFT module's loading; with ``init_from``, the SFT adapters loaded at their scale (``train/rl_start.py``)
        and kept aside as the reference. Lightning restores a resumed run's adapters after this, so the reference
        stays the start."""
        if self.tts is not None:
            return
        super().configure_model()
        if self.start is not None:
            modes = {module: module.training for module in self.tts.modules()}
            try:
                load_trained(self.tts, self.start.checkpoint)  # it leaves the model in eval mode: put the modes back
            except UserError as error:
                raise UserError(f"model.init_from: {error}") from None
            for module, training in modes.items():
                module.train(training)
            with torch.no_grad():
                for name, parameter in self.tts.named_parameters():
                    if "lora_B" in name:
                        parameter.mul_(self.start.scale)
            self.reference = {k: v.detach().clone() for k, v in trainable_state_dict(self.tts).items()}

    def reference_logprobs(self, batch, drawn: DrawnTokens) -> torch.Tensor:
        """log pi_ref: the same weights with the RL adapters at scale 0, or (started from SFT) with the starting
        adapters swapped in. Called before the policy's forward: the swap writes the parameters in place."""
        with torch.no_grad(), eval_mode(self.base_model):
            if self.reference is None:
                with adapters_at_scale(self.base_model, 0.0):
                    return policy_logprobs(self.talker, batch, drawn, self.policy_spec)
            current = {k: v.detach().clone() for k, v in trainable_state_dict(self.tts).items()}
            self.tts.load_state_dict(self.reference, strict=False)
            try:
                return policy_logprobs(self.talker, batch, drawn, self.policy_spec)
            finally:
                self.tts.load_state_dict(current, strict=False)

    # ------------------------------------------------------------------ the step

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.rewards is None:
            self.rewards = Rewards(self.reward_weights, self.hparams.language, judge_settings=self.judge_settings)
        root = getattr(getattr(self.trainer, "datamodule", None), "root", None)
        if root is not None:  # the SFT datamodule: its training rows' texts are the prompts
            from qwen_tts_lit.data.prepare.outputs import manifest_path, read_manifest

            self.prompts = {str(row["id"]): str(row["text"]) for row in read_manifest(manifest_path(root, "train"))}
            if self.reward_weights.speaker_similarity and self.rewards.reference_embedding is None:
                from qwen_tts_lit.data.dataset import reference_clip

                audio, _ = reference_clip(root)  # the voice's first training clip, as recorded
                self.rewards.reference_embedding = self.rewards.speaker.embed(audio, SAMPLE_RATE)

    def prompt_texts(self, batch) -> list[str]:
        """The prompts of a batch: a list of texts (PromptDataModule), or the texts of a training batch's rows."""
        if isinstance(batch, list):
            return batch
        return [self.prompts[utterance_id] for utterance_id in batch.utterance_ids]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        started = time.perf_counter()
        utterances = self.rollouts(self.prompt_texts(batch))
        rolled = time.perf_counter()
        components = self.rewards.components(utterances)
        reward = self.rewards.total(components, len(utterances)).to(self.device)
        self.step_seconds = {
            "time/rl_rollout_seconds": rolled - started,
            "time/rl_reward_seconds": time.perf_counter() - rolled,
        }
        advantages = group_advantages(reward, self.hparams.group_size, self.hparams.variant)
        batch, drawn, old = self.teacher_forcing(utterances)
        ref = self.reference_logprobs(batch, drawn) if self.hparams.kl_coef else None
        with eval_mode(self.base_model):  # the function the sampler drew from: no dropout anywhere
            logprobs = policy_logprobs(self.talker, batch, drawn, self.policy_spec)
        step_rollouts = self.step_rollouts(batch)
        out = grpo_loss(logprobs, old, ref, advantages, drawn.mask, clip_eps=self.hparams.clip_eps,
                        kl_coef=self.hparams.kl_coef, variant=self.hparams.variant,
                        max_tokens=self.hparams.max_new_tokens + 1, step_rollouts=step_rollouts)  # fmt: skip
        self._stop_if_not_finite(out.loss, batch, batch_idx)
        self._log_step(components, reward, out, utterances, (logprobs - old).abs()[drawn.mask].max())
        if step_rollouts is None:
            return out.loss
        # As the SFT step: Lightning divides by the accumulation count and DDP averages over ranks; multiplying
        # both back makes the gradient that of the whole optimizer step's rollouts in one batch
        return out.loss * self.trainer.accumulate_grad_batches * self.trainer.world_size

    def step_rollouts(self, batch) -> int | None:
        """Rollouts of the whole optimizer step (every micro-batch, every rank) this batch belongs to; None when
        unknown (a list of texts: micro-batches of equal size, whose mean Lightning's averaging already gives)."""
        utterances = getattr(batch, "step_utterances", None)
        return None if utterances is None else utterances * self.hparams.group_size

    def _log_step(self, components, reward, out, utterances, gap) -> None:
        size = len(utterances)
        values = {f"rl/reward/{name}": value.mean() for name, value in components.items()}
        values |= {"rl/reward/total": reward.mean(), "rl/kl": out.kl, "rl/clip_fraction": out.clipped,
                   "rl/ratio": out.ratio, "rl/logprob_gap": gap.detach(),
                   "rl/frames": torch.tensor([float(u.frames) for u in utterances]).mean(),
                   "rl/runaway": torch.tensor([float(u.hit_max_tokens) for u in utterances]).mean()}  # fmt: skip
        values |= {name: torch.tensor(seconds) for name, seconds in self.step_seconds.items()}
        for name, value in values.items():
            self.log(name, value, batch_size=size, on_step=True, on_epoch=False, prog_bar=name == "rl/reward/total")

    def validation_step(self, batch, batch_idx: int) -> None:
        """The SFT validation loss of the held-out recordings (how far RL drifts from the data); RL is judged by the
        EvalSuite. A list of texts (PromptDataModule) has no recordings: nothing to measure."""
        if isinstance(batch, list):
            return
        out = training_step_losses(self.talker, batch, StepFixes())
        loss = combine_losses(out.talker, out.sub_talker, SUB_TALKER_WEIGHT)
        self.log("val/loss", loss, batch_size=len(batch.utterance_ids), on_epoch=True, sync_dist=True)


class PromptDataModule(L.LightningDataModule):
    def __init__(
        self,
        texts: list[str],
        speaker: str | None = None,
        prompts_per_step: int = 2,
        steps_per_epoch: int = 20,
    ) -> None:
        """
        Args:
            texts: The prompts RL speaks (training texts or a text list); cycled in order.
            speaker: A prepared dataset or run folder whose speaker x-vector is the target voice.
            prompts_per_step: Prompts per optimizer step (each spoken group_size times).
            steps_per_epoch: Optimizer steps per epoch: the EvalSuite and the epoch checkpoints come every so many.
        """
        super().__init__()
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise UserError("data.texts: give at least one non-empty prompt")
        if prompts_per_step < 1 or steps_per_epoch < 1:
            raise UserError("data.prompts_per_step and data.steps_per_epoch must be >= 1")
        self.texts, self.speaker = list(texts), speaker
        self.prompts_per_step, self.steps_per_epoch = prompts_per_step, steps_per_epoch
        self.xvector: torch.Tensor | None = None

    def setup(self, stage: str) -> None:
        if self.xvector is None and self.speaker is not None:
            from pathlib import Path

            from qwen_tts_lit.speaker_file import read_speaker

            self.xvector = torch.as_tensor(read_speaker(Path(self.speaker), "data.speaker")).float()

    def train_dataloader(self):
        count = self.prompts_per_step * self.steps_per_epoch
        prompts = [self.texts[i % len(self.texts)] for i in range(count)]
        return torch.utils.data.DataLoader(prompts, batch_size=self.prompts_per_step, shuffle=False, collate_fn=list)
