"""QwenTTSModule: the corrected Qwen3-TTS fine-tuning step as a LightningModule (LoRA or full fine-tuning)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from qwen_tts_lit.errors import RunFailed, UserError
from qwen_tts_lit.model.layout import TalkerBatch
from qwen_tts_lit.model.lora import LoraSpec, cast_adapter_inputs, trainable_state_dict
from qwen_tts_lit.model.step import (
    SUB_TALKER_WEIGHT,
    StepFixes,
    combine_losses,
    step_normalisers,
    training_step_losses,
)
from qwen_tts_lit.model.trainable import make_trainable
from qwen_tts_lit.speaker_file import write_speaker, write_speakers
from qwen_tts_lit.upstream.loading import check_model_source, load_qwen3_tts

SEED_GUIDE_FULL_SFT_LR = 2e-6  # the seed guide's LR for 1.7B; community reports noise and lost EOS above it
LARGE_MODEL_PARAMS = 1_000_000_000


class NonFiniteLossError(RunFailed):
    """The loss became NaN or inf; the run stops before any checkpoint is written from this state."""


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up to the base LR, then cosine decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class QwenTTSModule(L.LightningModule):
    def __init__(
        self,
        model: str = "tiny",
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
        attn_implementation: str = "sdpa",
        finetune: Literal["lora", "full"] = "lora",
        lora: LoraSpec = LoraSpec(),  # noqa: B008 - a frozen settings record, shown by jsonargparse
        sub_talker_weight: float = SUB_TALKER_WEIGHT,
        fixes: StepFixes = StepFixes(),  # noqa: B008
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = None,
        warmup_ratio: float = 0.05,
        gradient_checkpointing: bool = False,
        seed: int = 0,
    ) -> None:
        """
        Args:
            model: Qwen3-TTS checkpoint: a local directory, a hub id, or "tiny" (the cached tiny random checkpoint).
            dtype: Weight dtype at load time. LoRA: bfloat16 with trainer.precision bf16-mixed (the released weights
                are bf16; adapters stay float32). Full fine-tuning: float32 (AdamW steps at 2e-6 vanish in bf16).
            attn_implementation: Attention kernel passed to from_pretrained ("sdpa", "eager", "flash_attention_2").
            finetune: "lora": peft adapters on the frozen model; "full" trains the talker (never the speaker encoder).
            lora: The LoRA adapters (rank, alpha, dropout, code predictor too); unused with finetune "full".
            sub_talker_weight: Weight of the sub-talker loss in the total (upstream: 0.3).
            fixes: Which upstream bugs the step corrects (all true; false reproduces a bug for an ablation).
            optimizer: Optimizer factory over the trainable parameters.
            scheduler: LR scheduler factory; None = linear warm-up then cosine decay over the whole run.
            warmup_ratio: Share of optimizer steps spent warming up (default scheduler only).
            gradient_checkpointing: Recompute talker and code-predictor activations in backward (non-reentrant):
                about a third more compute for a fraction of the activation memory (docs/memory.md).
            seed: Seeds the adapter init, and dropout is reseeded with seed + epoch at each epoch start (exact resume).
        """
        super().__init__()
        check_model_source(model)  # fail now, not after the trainer started
        if finetune == "lora" and lora.problems():
            raise UserError("model.lora: " + "; ".join(lora.problems()))
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "lora", "fixes"])
        self.hparams.update(lora=lora.as_dict(), fixes=asdict(fixes))  # plain values: hparams.yaml stays readable
        self.lora, self.fixes = lora, fixes
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.strict_loading = False  # checkpoints hold only what is trained; the base weights come from `model`
        self.tts: torch.nn.Module | None = None  # Qwen3TTSForConditionalGeneration (a PeftModel around it in LoRA)
        self.wrapper = None  # the official Qwen3TTSModel around the same weights, for generation
        self.xvector: torch.Tensor | None = None  # one speaker
        self.voices: dict[str, torch.Tensor] = {}  # several speakers: name -> x-vector (each utterance carries its own)
        self.checkpoint_epoch: int | None = None  # the epoch of the checkpoint loaded (validate labels rows by it)

    # ------------------------------------------------------------------ model

    def configure_model(self) -> None:
        """Load the checkpoint and add adapters. Idempotent: Lightning may call it more than once."""
        if self.tts is not None:
            return
        hp = self.hparams
        self.wrapper = load_qwen3_tts(hp.model, hp.dtype, hp.attn_implementation)
        base = self.wrapper.model
        # Adapter init from its own seed: otherwise it depends on what consumed the RNG before (e.g. whether
        # prepare_data had to build the dataset), and a rerun of the same config would train other weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hp.seed)
            self.tts = make_trainable(base, hp.finetune, self.lora, hp.gradient_checkpointing)

    @property
    def base_model(self):
        """The ``Qwen3TTSForConditionalGeneration`` (adapters injected in place in LoRA mode)."""
        return self.wrapper.model

    @property
    def talker(self):
        return self.base_model.talker

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and getattr(datamodule, "xvector", None) is not None:
            self.xvector = datamodule.xvector
        if datamodule is not None and getattr(datamodule, "voices", None):
            self.voices = dict(datamodule.voices)

    def on_fit_start(self) -> None:
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.trainer.is_global_zero and log_dir:
            if self.xvector is not None:
                write_speaker(Path(log_dir), self.xvector)
            elif self.voices:
                write_speakers(Path(log_dir), self.voices)

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(self.hparams.seed + self.current_epoch)

    # ------------------------------------------------------------------ steps

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        cast_adapter_inputs(self.tts, not str(self.trainer.precision).endswith("-mixed"))  # autocast casts them

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        cast_adapter_inputs(self.tts, True)  # after backward: anything outside the step (generation) needs it

    def on_validation_batch_start(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.on_train_batch_start(batch, batch_idx)

    def on_validation_batch_end(self, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        cast_adapter_inputs(self.tts, True)

    def training_step(self, batch: TalkerBatch, batch_idx: int) -> torch.Tensor:
        out = training_step_losses(self.talker, batch, self.fixes)
        loss = self._step_loss(out, batch)
        self._stop_if_not_finite(loss, batch, batch_idx)
        self._log_losses("train", out, batch)
        self.log("train/padding_ratio", batch.padding_ratio, batch_size=len(batch.utterance_ids))
        return loss

    def validation_step(self, batch: TalkerBatch, batch_idx: int) -> None:
        out = training_step_losses(self.talker, batch, self.fixes)
        self._log_losses("val", out, batch)

    def _step_loss(self, out, batch: TalkerBatch) -> torch.Tensor:
        """Loss normalised per target token of the whole optimizer step. Lightning divides by the accumulation
        count and DDP averages over ranks; multiplying both back makes the gradient that of one big batch."""
        groups = self.talker.config.num_code_groups
        talker_norm, sub_norm = step_normalisers(batch.step_frames, batch.step_utterances, groups, self.fixes)
        loss = combine_losses(out.talker, out.sub_talker, self.hparams.sub_talker_weight, talker_norm, sub_norm)
        if talker_norm is not None:
            loss = loss * self.trainer.accumulate_grad_batches * self.trainer.world_size
        return loss

    def _log_losses(self, stage: str, out, batch: TalkerBatch) -> None:
        size = len(batch.utterance_ids)
        mean = combine_losses(out.talker, out.sub_talker, self.hparams.sub_talker_weight)
        on_step = stage == "train"
        self.log(f"{stage}/loss", mean, batch_size=size, prog_bar=True, on_step=on_step, on_epoch=True, sync_dist=True)
        self.log(f"{stage}/talker_loss", out.talker.mean, batch_size=size, on_epoch=True, sync_dist=True)
        self.log(f"{stage}/sub_talker_loss", out.sub_talker.mean, batch_size=size, on_epoch=True, sync_dist=True)

    def _stop_if_not_finite(self, loss: torch.Tensor, batch: TalkerBatch, batch_idx: int) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"loss is {loss.item()} at global step {self.global_step} (epoch {self.current_epoch}, batch "
                f"{batch_idx}); utterances in this batch: {', '.join(batch.utterance_ids)}. No checkpoint was "
                "written from this state; the last good one is intact. Lower the learning rate or check these clips."
            )

    # ------------------------------------------------------------------ optimisation

    def configure_optimizers(self):
        params = [p for p in self.tts.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        self._warn_if_risky(optimizer)
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        else:
            total = max(int(self.trainer.estimated_stepping_batches), 1)
            scheduler = warmup_cosine(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _warn_if_risky(self, optimizer: torch.optim.Optimizer) -> None:
        if self.hparams.finetune == "full" and self.hparams.dtype != "float32":
            warnings.warn(
                f"full fine-tuning with {self.hparams.dtype} weights: the optimizer updates them in that precision, "
                "where steps at the seed guide's learning rates (~1e-4 of a weight) round away; set model.dtype: "
                "float32 (autocast still computes in half precision)",
                stacklevel=2,
            )
        lr = max(group["lr"] for group in optimizer.param_groups)
        size = sum(p.numel() for p in self.base_model.parameters())
        if self.hparams.finetune == "full" and size > LARGE_MODEL_PARAMS and lr > SEED_GUIDE_FULL_SFT_LR:
            warnings.warn(
                f"full fine-tuning of a {size / 1e9:.1f}B model at lr={lr:g}: the seed guide found LRs above "
                f"{SEED_GUIDE_FULL_SFT_LR:g} give noise and lost EOS on 1.7B (recipes tuned on the buggy step; "
                "treat as a starting point)",
                stacklevel=2,
            )

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep only what is trained (adapters, or the talker in full mode) plus the x-vector(s): never the base."""
        checkpoint["state_dict"] = {f"tts.{k}": v for k, v in trainable_state_dict(self.tts).items()}
        checkpoint["qwen_tts_lit"] = {"base_model": self.hparams.model, "finetune": self.hparams.finetune}
        if self.xvector is not None:
            checkpoint["xvector"] = self.xvector.detach().cpu()
        if self.voices:
            checkpoint["voices"] = {name: vector.detach().cpu() for name, vector in self.voices.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "xvector" in checkpoint:
            self.xvector = checkpoint["xvector"]
        if "voices" in checkpoint:
            self.voices = dict(checkpoint["voices"])
        self.checkpoint_epoch = checkpoint.get("epoch")
