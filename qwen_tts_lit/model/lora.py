"""LoRA on the talker with peft, and the inference-time strength knob (``lora_scale``): one place for the spec
the module trains with and the run loader rebuilds, the allowed scale range, whether a model can be scaled at
all (a fully fine-tuned one cannot) and merging at a scale."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch

from qwen_tts_lit.errors import UserError

LAYER_PROJECTIONS = r"(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
TALKER_TARGETS = rf"talker\.model\.layers\.\d+\.{LAYER_PROJECTIONS}"
CODE_PREDICTOR_TARGETS = rf"talker\.code_predictor\.model\.layers\.\d+\.{LAYER_PROJECTIONS}"
MAX_LORA_SCALE = 2.0  # beyond twice the trained strength the adapters only extrapolate
UNSCALED = 1.0  # the strength the adapters were trained at; the only one a model without adapters has


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters on every attention and MLP projection of the talker (peft)."""

    rank: int = 16
    """LoRA rank r."""
    alpha: int = 32
    """LoRA alpha (the adapter output is scaled by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the LoRA input (training only)."""
    code_predictor: bool = False
    """Also put adapters on the code predictor (sub-talker) layers."""

    def problems(self) -> list[str]:
        """Settings peft would refuse or that cannot train, as messages (empty when fine)."""
        bad = [f"lora.rank {self.rank}: must be >= 1"] if self.rank < 1 else []
        bad += [f"lora.alpha {self.alpha}: must be > 0"] if not self.alpha > 0 else []
        bad += [f"lora.dropout {self.dropout}: must be in [0, 1)"] if not 0 <= self.dropout < 1 else []
        return bad

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_hparams(cls, hparams: Mapping) -> LoraSpec:
        """The spec a checkpoint's hyper-parameters hold (``lora: {...}``, or the first version's flat
        ``lora_rank``/``lora_alpha``/``lora_dropout``/``lora_code_predictor``)."""
        if isinstance(hparams.get("lora"), Mapping):
            return cls(**hparams["lora"])
        legacy = {name: hparams[f"lora_{name}"] for name in asdict(cls()) if f"lora_{name}" in hparams}
        return cls(**legacy)


def lora_target_regex(include_code_predictor: bool = False) -> str:
    """Full-match regex over module names of ``Qwen3TTSForConditionalGeneration``."""
    if include_code_predictor:
        return rf"({TALKER_TARGETS}|{CODE_PREDICTOR_TARGETS})"
    return TALKER_TARGETS


def inject_lora(model: torch.nn.Module, spec: LoraSpec = LoraSpec(), target_modules: str | None = None):
    """Freeze ``model`` (a ``Qwen3TTSForConditionalGeneration``) and add LoRA adapters in place.

    Returns the ``PeftModel``; the original module keeps working (``generate`` included) and now runs the adapters.
    Freezing first matters: otherwise the speaker encoder and codec stay trainable.
    """
    from peft import LoraConfig, get_peft_model

    model.requires_grad_(False)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=target_modules or lora_target_regex(spec.code_predictor),
        bias="none",
    )
    return get_peft_model(model, config)


def check_lora_scale(scale: float, name: str = "lora_scale") -> float:
    """0 <= scale <= MAX_LORA_SCALE (0 is the base model with the target voice's x-vector, 1 as trained)."""
    if not (0.0 <= scale <= MAX_LORA_SCALE):
        raise UserError(f"{name} {scale}: must be in [0, {MAX_LORA_SCALE:g}] (0 = base model, 1 = as trained)")
    return float(scale)


def has_lora(model: torch.nn.Module) -> bool:
    """Whether peft LoRA layers are injected into ``model``: only then can it be run at another strength."""
    return bool(lora_layers(model))


def evaluable_scales(model: torch.nn.Module, scales: Sequence[float]) -> list[float]:
    """The strengths ``model`` can run at: all of ``scales`` with adapters; a fully fine-tuned model has none to
    scale, so only :data:`UNSCALED`."""
    return list(scales) if has_lora(model) else [UNSCALED]


@contextmanager
def adapters_at_scale(model: torch.nn.Module, scale: float | Sequence[float]) -> Iterator[None]:
    """Run the adapters at ``scale`` x their trained strength for the block (0 = base model, 1 = as trained).

    ``scale`` is one strength for every row, or one per row of the batch (``len(scale)`` = batch size), so one
    ``generate`` call can speak several strengths at once. Both are the same mechanism: a forward hook on every
    active ``lora_A`` multiplies its output (B, ..., r) by the row's strength, so the adapter delta
    ``lora_B(lora_A(x) * s) * scaling`` is ``s`` times the trained one, row by row; a row in a mixed batch gets
    exactly the arithmetic it gets alone at its strength (x * 1.0 is x: at 1.0 nothing changes at all). Chosen
    over peft's mixed-adapter batches, which need one adapter copy per strength and cannot reach through
    upstream's ``generate`` (it forwards no ``adapter_names``).
    """
    scales = [float(scale)] if isinstance(scale, int | float) else [float(s) for s in scale]
    if all(s == UNSCALED for s in scales):
        yield
        return
    layers = lora_layers(model)
    if not layers:
        raise UserError(f"lora_scale {scale}: this model has no LoRA adapters (a merged export keeps its scale)")
    by_row = len(scales) > 1 or not isinstance(scale, int | float)
    handles = []
    try:
        for layer in layers:
            if layer.merged or layer.lora_variant:
                raise RuntimeError(f"{type(layer).__name__}: merged or DoRA-style adapters cannot be scaled per row")
            for name in layer.active_adapters:
                if name in layer.lora_A:
                    handles.append(layer.lora_A[name].register_forward_hook(_scale_rows(scales, by_row)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def lora_layers(model: torch.nn.Module) -> list:
    """The peft ``LoraLayer`` modules of ``model``."""
    from peft.tuners.lora import LoraLayer

    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def _scale_rows(scales: list[float], by_row: bool):
    """A forward hook multiplying a (B, ..., r) output by the row's strength, or by one strength for every row
    (the same float32 product either way, so a row gets identical arithmetic alone and in a mixed batch)."""
    cache: dict[tuple, torch.Tensor] = {}

    def hook(module: torch.nn.Module, args, output: torch.Tensor) -> torch.Tensor:
        if by_row and output.shape[0] != len(scales):
            raise RuntimeError(f"per-row LoRA scales: {len(scales)} scales for a batch of {output.shape[0]} rows")
        key = (output.device, output.dtype, output.dim())
        if key not in cache:  # (B, 1, ..., 1) or (1, ..., 1), once per device, dtype and rank
            shape = (len(scales) if by_row else 1,) + (1,) * (output.dim() - 1)
            cache[key] = torch.tensor(scales, dtype=output.dtype, device=output.device).view(shape)
        return output * cache[key]

    return hook


def merge_at_scale(peft_model, scale: float) -> torch.nn.Module:
    """The plain model with the adapters merged at ``scale`` x trained strength (peft's own ``scale_layer`` then
    ``merge_and_unload``: what :func:`adapters_at_scale` runs, baked in)."""
    for module in lora_layers(peft_model):
        module.scale_layer(scale)
    return peft_model.merge_and_unload()


def trainable_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only what is trained (adapters in LoRA mode, everything unfrozen in full fine-tuning)."""
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    return {name: tensor for name, tensor in module.state_dict().items() if name in trainable}
