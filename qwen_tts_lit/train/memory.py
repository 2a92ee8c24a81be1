"""``estimate-memory``: a fit config's peak GPU memory, by category, and what else shares the card.

The training step's live tensors come from ``qwen_tts_lit.model.memory`` (exact, computed on fake tensors); this
module reads the config the way ``fit`` runs it (``QwenTTSModule``'s arguments, the Trainer's precision,
accumulation and clipping, the EvalSuite's judges) and adds what is not a tensor of the step, each line saying
whether it is computed or a published / typical figure (docs/memory.md).
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from qwen_tts_lit.data.prepare.options import LONG_CLIP_S
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.model.memory import (
    FRAMES_PER_SECOND,
    TEXT_TOKENS_PER_SECOND,
    MemoryEstimate,
    RolloutMemory,
    StepShape,
    TrainingSetup,
    estimate_step_memory,
    parameter_bytes,
    rollout_memory,
)
from qwen_tts_lit.train.request import DEFAULT_CLIP_SECONDS, EstimateMemoryRequest

GIB = 2**30
ALLOCATOR_MARGIN = 0.15  # PyTorch's caching allocator rounds blocks up and fragments: 10-15 % above live tensors
CUDA_CONTEXT_GIB = 0.5  # CUDA context + cuBLAS workspace: 0.3-0.6 GiB depending on GPU and driver (typical)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Lightning precision -> (autocast dtype, GradScaler, dtype the whole module is cast to)
PRECISIONS: dict[str, tuple[torch.dtype | None, bool, torch.dtype | None]] = {
    "32-true": (None, False, None),
    "32": (None, False, None),
    "bf16-mixed": (torch.bfloat16, False, None),
    "16-mixed": (torch.float16, True, None),
    "bf16-true": (None, False, torch.bfloat16),
    "16-true": (None, False, torch.float16),
}

# faster-whisper's published peak GPU memory (its README benchmark: 13 min of audio, beam 5, RTX 2080 Ti), in MB.
ASR_PUBLISHED_PEAK_MB = {
    ("large-v3", "float16"): 4521, ("large-v3", "int8"): 2953,
    ("large-v3-turbo", "float16"): 2537, ("large-v3-turbo", "int8"): 1545,
    ("distil-large-v3", "float16"): 2409, ("distil-large-v3", "int8"): 1481,
}  # fmt: skip
# Whisper's published parameter counts (openai/whisper README), for models without a published peak.
WHISPER_PARAMETERS = {"tiny": 39e6, "base": 74e6, "small": 244e6, "medium": 769e6, "large": 1550e6, "turbo": 809e6}


@dataclass(frozen=True)
class CardItem:
    """Something else on the GPU, in bytes, and where the figure comes from."""

    name: str
    bytes: int
    source: str


@dataclass(frozen=True)
class MemoryReport:
    """What one fit config needs on one GPU."""

    model: str
    setup: TrainingSetup
    shape: StepShape
    estimate: MemoryEstimate
    on_card: list[CardItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rollout: RolloutMemory | None = None  # the RL stage's generation phase (None: an SFT fit)

    @property
    def rollout_peak(self) -> int | None:
        """The RL rollouts' peak: what stays between steps (weights, optimizer state) plus generation's caches."""
        if self.rollout is None:
            return None
        e = self.estimate
        return e.frozen_weights + e.trainable_weights + e.optimizer_state + self.rollout.total

    @property
    def peak(self) -> int:
        """The higher of the training step's peak and (RL) the rollouts': they happen one after the other."""
        return max(self.estimate.peak, self.rollout_peak or 0)

    @property
    def margin(self) -> int:
        return int(self.peak * ALLOCATOR_MARGIN)

    @property
    def total(self) -> int:
        """Bytes to plan for: the step's peak, the allocator's margin and everything else on the card."""
        return self.peak + self.margin + sum(item.bytes for item in self.on_card)


def estimate_fit_config(config: dict, request: EstimateMemoryRequest, progress: Callable[[str], None] | None = None):
    """The :class:`MemoryReport` of a resolved fit config (``fit --print_config``'s content, as a dict)."""
    from qwen_tts_lit.upstream.architectures import model_config

    model, trainer, data = config["model"], config["trainer"], config["data"]
    setup = training_setup(model, trainer)
    notes = []
    frames = longest_clip_frames(data, model["model"]) if request.clip_seconds is None else None
    if frames is not None:
        notes.append(f"clip length: the longest clip of the prepared training data ({frames} frames)")
    seconds = frames / FRAMES_PER_SECOND if frames else (request.clip_seconds or DEFAULT_CLIP_SECONDS)
    if seconds > LONG_CLIP_S:
        notes.append(f"clips over {LONG_CLIP_S:g} s: prepare warns on them (the 12 Hz decoder drops samples "
                     f"past about {LONG_CLIP_S:g} s); segment cuts below it")  # fmt: skip
    shape = StepShape.from_seconds(request.batch_size or int(data["batch_size"]), seconds, request.text_tokens)
    try:
        architecture = model_config(model["model"])
    except (OSError, ValueError) as error:
        raise UserError(f"model.model {model['model']}: cannot read its config.json here ({error})") from error
    rollout = None
    if model.get("group_size"):  # the RL stage: its step trains on its own rollouts, not on the clips
        shape, rollout, rl_notes = rl_step(architecture, model, data, request, setup)
        notes = rl_notes
    estimate = estimate_step_memory(architecture, setup, shape, progress)
    on_card = [CardItem("CUDA context and cuBLAS workspace", int(CUDA_CONTEXT_GIB * GIB), "typical, not computed")]
    on_card += asr_judge(trainer.get("callbacks") or [])
    if rollout is not None:  # the rewards' own judges (model.judges), loaded beside the EvalSuite's
        on_card += [replace(item, name=f"reward {item.name}") for item in asr_judge([reward_judges(model)])]
    notes += _not_on_card(model["model"], setup.weights_dtype) + _strategy_notes(trainer)
    return MemoryReport(model["model"], setup, shape, estimate, on_card, notes, rollout)


def reward_judges(model: dict) -> dict:
    """The RL rewards' judge settings in the EvalSuite's callback form, so :func:`asr_judge` reads them alike."""
    return {"class_path": "EvalSuite", "init_args": {"judges": model.get("judges") or {}}}


def rl_step(architecture, model: dict, data: dict, request: EstimateMemoryRequest, setup: TrainingSetup):
    """An RL step's shapes: the update is a training step over every rollout of the step (prompts x group_size rows
    of ``max_new_tokens`` frames, the longest a rollout gets), preceded by the rollouts' generation."""
    from qwen_tts_lit.train.rl import GRPOModule

    defaults = GRPOModule.__init__.__kwdefaults__ or {}
    group = int(model["group_size"])
    frames = int(model.get("max_new_tokens") or defaults.get("max_new_tokens", 100))
    prompts = request.batch_size or int(data.get("batch_size") or data.get("prompts_per_step") or 1)
    tokens = request.text_tokens or max(math.ceil(frames / FRAMES_PER_SECOND * TEXT_TOKENS_PER_SECOND), 1)
    shape = StepShape(prompts * group, frames, tokens)
    rollout = rollout_memory(architecture, prompts * group, tokens, frames, setup.weights_dtype)
    notes = [
        f"RL step: {prompts} prompts x group_size {group} = {prompts * group} rollouts of up to {frames} frames "
        f"(model.max_new_tokens), {tokens} text tokens each; the update is traced as the SFT step on them (the "
        "sub-talker's loss included: RL trains group 0 only, so an upper bound)",
        "RL reference pass: a no-grad forward before the policy's, whose activations are freed before it: below "
        "the update's peak (its log-probabilities, rollouts x frames floats, stay)",
    ]
    return shape, rollout, notes


def training_setup(model: dict, trainer: dict) -> TrainingSetup:
    """``QwenTTSModule``'s arguments and the Trainer's settings as a :class:`TrainingSetup`."""
    precision = str(trainer.get("precision") or "32-true")
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision {precision}: estimate-memory knows {', '.join(PRECISIONS)}")
    autocast, scaling, cast = PRECISIONS[precision]
    return TrainingSetup(
        finetune=model.get("finetune", "lora"),
        lora=LoraSpec(**(model.get("lora") or {})),
        weights_dtype=cast or DTYPES[model.get("dtype", "float32")],
        autocast_dtype=autocast,
        cast_everything=cast is not None,
        loss_scaling=scaling,
        gradient_checkpointing=bool(model.get("gradient_checkpointing")),
        optimizer=optimizer_factory(model.get("optimizer")),
        accumulate=int(trainer.get("accumulate_grad_batches") or 1),
        gradient_clip=trainer.get("gradient_clip_val"),
    )


def optimizer_factory(spec) -> Callable:
    """The config's ``model.optimizer`` (``class_path`` + ``init_args``, or a class path) as a factory."""
    spec = spec or {"class_path": "torch.optim.AdamW"}
    spec = {"class_path": spec} if isinstance(spec, str) else spec
    module, _, name = spec["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise UserError(f"model.optimizer: cannot import {spec['class_path']} ({error})") from error
    return functools.partial(cls, **(spec.get("init_args") or {}))


def longest_clip_frames(data: dict, model: str) -> int | None:
    """Frames of the longest training clip, when the config's prepared data is here (else None)."""
    from qwen_tts_lit.data.dataset import prepared_cache_dir
    from qwen_tts_lit.data.prepare.outputs import manifest_path, read_manifest

    if data.get("prepared_dir"):
        root = Path(data["prepared_dir"]).expanduser()
    elif data.get("raw"):
        root = prepared_cache_dir(data["raw"], model)
    else:
        return None
    manifest = manifest_path(root, "train")
    if not manifest.is_file():
        return None
    return max((int(row["num_frames"]) for row in read_manifest(manifest)), default=None)


def asr_judge(callbacks: list) -> list[CardItem]:
    """The EvalSuite's ASR model, when it runs on the GPU (resemblyzer and silero-vad run on the CPU)."""
    from qwen_tts_lit.evaluation.settings import EvalSettings

    suites = [c for c in callbacks if isinstance(c, dict) and str(c.get("class_path", "")).endswith("EvalSuite")]
    if not suites:
        return []
    judges = EvalSettings.from_args(suites[0].get("init_args")).judges
    if judges.asr_device not in ("cuda", "auto") and not judges.asr_device.startswith("cuda:"):
        return []
    name, compute = judges.asr_model or "tiny.en", judges.asr_compute_type
    kind = "int8" if compute.startswith("int8") else "float16"
    label = f"ASR judge: faster-whisper {name} ({compute})"
    if (name, kind) in ASR_PUBLISHED_PEAK_MB:
        return [CardItem(label, ASR_PUBLISHED_PEAK_MB[name, kind] * 2**20, "faster-whisper's published peak")]
    family = next((f for f in WHISPER_PARAMETERS if name.removeprefix("distil-").startswith(f)), "large")
    weights = WHISPER_PARAMETERS[family] * (1 if kind == "int8" else 4 if compute == "float32" else 2)
    return [CardItem(label, int(weights), "weights only, from Whisper's published parameter count")]


def _not_on_card(model: str, dtype: torch.dtype) -> list[str]:
    from qwen_tts_lit.upstream.architectures import model_speech_tokenizer_config
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    config = model_speech_tokenizer_config(model)
    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Model

    size = parameter_bytes(lambda: Qwen3TTSTokenizerV2Model(config), dtype) / GIB
    return [
        f"not on the card: the speech tokenizer ({size:.2f} GiB in {_name(dtype)}; this version keeps it on the CPU), "
        "resemblyzer and silero-vad (CPU judges)"
    ]


def _strategy_notes(trainer: dict) -> list[str]:
    strategy = trainer.get("strategy")
    path = strategy.get("class_path", "") if isinstance(strategy, dict) else str(strategy or "")
    if "fsdp" in path.lower():
        return ["FSDP shards weights, gradients and optimizer state across GPUs: not modelled, this is one GPU's "
                "memory if it held all of them (an upper bound)"]  # fmt: skip
    if "ddp" in path.lower():
        return ["DDP: every GPU holds this much"]
    return []


def format_report(report: MemoryReport) -> str:
    """The report as the command prints it."""
    e, s, shape = report.estimate, report.setup, report.shape
    trained = f"LoRA r{s.lora.rank}" if s.finetune == "lora" else "full fine-tuning of the talker"
    precision = _name(s.autocast_dtype) + " autocast" if s.autocast_dtype else "no autocast"
    optimizer = getattr(s.optimizer, "func", s.optimizer).__name__
    fused = " (fused)" if getattr(s.optimizer, "keywords", {}).get("fused") else ""
    lines = [
        f"{report.model}: {trained} ({_count(e.trainable_parameters)} trainable of {_count(e.parameters)}), "
        f"{_name(s.weights_dtype)} weights, {precision}, {optimizer}{fused}, gradient checkpointing "
        f"{'on' if s.gradient_checkpointing else 'off'}, accumulation {s.accumulate}",
        f"micro-batch: {shape.batch_size} clips of {shape.frames / FRAMES_PER_SECOND:.1f} s "
        f"({shape.frames} frames, {shape.text_tokens} text tokens)",
        "",
        _row(f"peak of the training step (live tensors, during the {e.phase})", e.peak, "computed"),
    ]
    if report.rollout is not None:
        r = report.rollout
        lines.insert(1, f"RL: {r.rows} rollouts per step, each up to {r.positions} positions in the KV cache")
        lines.insert(-1, _row("peak of the RL rollouts (weights, optimizer state, caches)", report.rollout_peak,
                              "computed"))  # fmt: skip
        lines.insert(-1, _row("  talker KV cache (keys and values, every position)", r.talker_kv_cache))
        lines.insert(-1, _row("  code predictor KV cache and one step's logits", r.code_predictor_kv_cache + r.logits))
    labels = {"frozen_weights": f"frozen weights (speaker encoder {e.speaker_encoder / GIB:.2f} GiB included)",
              "trainable_weights": "trained weights" + (" (LoRA adapters, float32)" if s.finetune == "lora" else ""),
              "activations": "activations (kept for backward)"}  # fmt: skip
    lines += [_row("  " + labels.get(k, k.replace("_", " ")), v) for k, v in e.parts().items()]
    lines.append(_row(f"allocator rounding and fragmentation (+{ALLOCATOR_MARGIN:.0%} of the peak)", report.margin,
                      "typical, not computed"))  # fmt: skip
    lines += [_row(item.name, item.bytes, item.source) for item in report.on_card]
    lines += ["-" * 78, _row("plan for about", report.total, f"a {_card(report.total)} GB card")]
    lines += ["", *report.notes, f"computed in {e.seconds:.0f} s on fake tensors (docs/memory.md)"]
    return "\n".join(lines)


def _row(label: str, size: int, source: str = "") -> str:
    return f"{label:<62} {size / GIB:7.2f} GiB  {source}".rstrip()


def _card(total: int) -> int:
    """The smallest common card size that holds ``total`` bytes (a "24 GB" card has 24 GiB)."""
    return next((g for g in (8, 12, 16, 24, 32, 40, 48, 80, 96, 141) if g * GIB >= total), math.ceil(total / GIB))


def _count(parameters: int) -> str:
    return f"{parameters / 1e9:.2f} B" if parameters >= 1e9 else f"{parameters / 1e6:.2f} M"


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
