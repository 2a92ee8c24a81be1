"""What trains, set up once for the LightningModule and the memory estimate alike: LoRA adapters on the frozen
model, or the whole talker (never the speaker encoder: the x-vector is computed once by prepare), and gradient
checkpointing that works with frozen layers."""

from __future__ import annotations

from typing import Literal

import torch

from qwen_tts_lit.model.lora import LoraSpec, inject_lora

Finetune = Literal["lora", "full"]


def make_trainable(model: torch.nn.Module, finetune: Finetune, lora: LoraSpec, gradient_checkpointing: bool):
    """Freeze what does not train and return what does: the ``PeftModel`` around ``model`` (a
    ``Qwen3TTSForConditionalGeneration``, adapters injected in place) or, in full fine-tuning, ``model`` itself with
    only its talker trainable. Leaves it in training mode (``from_pretrained`` leaves eval mode: LoRA dropout off)."""
    if finetune == "lora":
        trained = inject_lora(model, lora)
    else:
        model.requires_grad_(False)
        model.talker.requires_grad_(True)
        trained = model
    if gradient_checkpointing:
        # transformers checkpoints reentrantly by default, which needs an input that requires grad; with LoRA
        # nothing entering the frozen layers does, and backward fails ("element 0 of tensors does not require grad").
        model.talker.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trained.train()
    return trained
