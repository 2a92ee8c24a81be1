"""LoRA on the talker with peft, and the inference-time strength knob (``lora_scale``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

LAYER_PROJECTIONS = r"(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
TALKER_TARGETS = rf"talker\.model\.layers\.\d+\.{LAYER_PROJECTIONS}"
CODE_PREDICTOR_TARGETS = rf"talker\.code_predictor\.model\.layers\.\d+\.{LAYER_PROJECTIONS}"
ADAPTER = "default"


def lora_target_regex(include_code_predictor: bool = False) -> str:
    """Full-match regex over module names of ``Qwen3TTSForConditionalGeneration``."""
    if include_code_predictor:
        return rf"({TALKER_TARGETS}|{CODE_PREDICTOR_TARGETS})"
    return TALKER_TARGETS


def inject_lora(
    model: torch.nn.Module,
    rank: int = 16,
    alpha: int = 32,
    dropout: float = 0.05,
    include_code_predictor: bool = False,
    target_modules: str | None = None,
):
    """Freeze ``model`` (a ``Qwen3TTSForConditionalGeneration``) and add LoRA adapters in place.

    Returns the ``PeftModel``; the original module keeps working (``generate`` included) and now runs the adapters.
    Freezing first matters: otherwise the speaker encoder and codec stay trainable.
    """
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules or lora_target_regex(include_code_predictor),
        bias="none",
    )
    return get_peft_model(model, config)


@contextmanager
def lora_scale(peft_model, scale: float) -> Iterator[None]:
    """Run the adapters at ``scale`` x their trained strength (0 = base model, 1 = as trained)."""
    from peft.helpers import rescale_adapter_scale

    if scale == 1.0:
        yield
        return
    with rescale_adapter_scale(peft_model, scale):
        yield


def trainable_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only what is trained (adapters in LoRA mode, everything unfrozen in full fine-tuning)."""
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    return {name: tensor for name, tensor in module.state_dict().items() if name in trainable}
