"""Peak memory of training steps, computed exactly on a CPU without allocating it (docs/memory.md).

The real model (any ``Qwen3TTSConfig``) is built from fake tensors (``FakeTensorMode``: shapes and dtypes, no
storage), and the very training step ``QwenTTSModule`` runs (``training_step_losses``, backward, gradient
clipping, the optimizer) runs on them under torch's ``MemTracker``, which adds up every live tensor by kind.
Two optimizer steps run, the second with up to two accumulated micro-batches, so the peak includes the optimizer
state and the gradients held between micro-batches. On a 2-core CPU the 1.7B model takes about a minute.

Fake tensors live on the fake device ``cpu`` (fake CUDA tensors cannot run backward on a CPU build of torch),
so autocast uses torch's CPU op lists; they cast the same matmuls as CUDA's. What lives outside tensors is not
counted: the caching allocator's rounding and fragmentation, the CUDA context, cuBLAS / attention workspaces.

Three things stock tooling needs help with, done here: ``MemTracker`` hooks every parameter and fails on frozen
ones (:class:`_Tracker` hooks only trainable ones but counts all); a module called twice per step must run inside
one parent module (:class:`_Loss`), whose bookkeeping restarts at each forward; boolean-mask indexing and
``.item()`` depend on data a fake tensor does not hold (:class:`_KnownShapes` answers them from the batch's known
frame count). And peft moves new adapters with ``.to(device, dtype)``, which cannot swap fake parameters: a
``.to`` that changes nothing is made a no-op.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType
from torch.utils._python_dispatch import TorchDispatchMode

from qwen_tts_lit.model.layout import SpecialIds, TalkerBatch, collate_sequences, layout_utterance
from qwen_tts_lit.model.lora import LoraSpec, cast_adapter_inputs
from qwen_tts_lit.model.step import combine_losses, training_step_losses
from qwen_tts_lit.model.trainable import Finetune, make_trainable

FRAMES_PER_SECOND = 12.5  # the 12 Hz codec: one frame per 80 ms
TEXT_TOKENS_PER_SECOND = 4.0  # content tokens per second of speech: ~2.7 words/s x ~1.4 BPE tokens (upper side)
PROMPT_TOKENS = 8  # role (3) + suffix (5) tokens around the content, see model/layout.py

Optimizer = Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class StepShape:
    """One micro-batch: ``batch_size`` rows, each padded to the longest clip (``frames`` codec frames, spoken from
    ``text_tokens`` content tokens)."""

    batch_size: int
    frames: int
    text_tokens: int

    @classmethod
    def from_seconds(cls, batch_size: int, seconds: float, text_tokens: int | None = None) -> StepShape:
        """Rows of ``seconds`` of audio; the text length defaults to :data:`TEXT_TOKENS_PER_SECOND`."""
        tokens = math.ceil(seconds * TEXT_TOKENS_PER_SECOND) if text_tokens is None else text_tokens
        return cls(batch_size, math.ceil(seconds * FRAMES_PER_SECOND), max(tokens, 1))


@dataclass(frozen=True)
class TrainingSetup:
    """What decides the memory of a training step, in the terms of ``QwenTTSModule`` and Lightning's Trainer."""

    finetune: Finetune = "lora"
    lora: LoraSpec = LoraSpec()  # noqa: B008 - frozen
    weights_dtype: torch.dtype = torch.bfloat16
    """dtype the checkpoint is loaded in (``model.dtype``); LoRA adapters are float32 (peft upcasts them)."""
    autocast_dtype: torch.dtype | None = torch.bfloat16
    """The ``*-mixed`` precisions: autocast around the forward; None for ``32-true`` / ``*-true``."""
    cast_everything: bool = False
    """The ``*-true`` precisions: Lightning casts the whole module, adapters included, to ``weights_dtype``."""
    loss_scaling: bool = False
    """``16-mixed``: a GradScaler scales the loss and unscales the gradients."""
    gradient_checkpointing: bool = False
    optimizer: Optimizer = torch.optim.AdamW
    accumulate: int = 1
    gradient_clip: float | None = None


@dataclass(frozen=True)
class MemoryEstimate:
    """Live tensor memory at the peak of a training step, in bytes, by kind."""

    peak: int
    phase: str  # "forward", "backward" or "optimizer step" (where the peak happened)
    frozen_weights: int  # parameters and buffers that do not train (the speaker encoder included)
    trainable_weights: int  # LoRA adapters, or the talker in full fine-tuning
    gradients: int
    optimizer_state: int  # what the optimizer keeps between steps
    optimizer_temporaries: int  # what optimizer.step allocates and frees (foreach temporaries)
    activations: int  # saved for backward (autocast's low-precision weight copies included)
    backward_temporaries: int  # gradients of activations and other backward scratch
    batch: int  # the micro-batch's input tensors
    trainable_parameters: int
    parameters: int
    speaker_encoder: int  # bytes of the speaker encoder's weights (inside frozen_weights)
    seconds: float  # how long the estimate took

    def parts(self) -> dict[str, int]:
        """The categories that add up to :attr:`peak`."""
        names = ("frozen_weights", "trainable_weights", "gradients", "optimizer_state", "optimizer_temporaries",
                 "activations", "backward_temporaries", "batch")  # fmt: skip
        return {name: getattr(self, name) for name in names}


def estimate_step_memory(
    config, setup: TrainingSetup, shape: StepShape, progress: Callable[[str], None] | None = None
) -> MemoryEstimate:
    """Peak live tensor memory of training ``config``'s model (a ``Qwen3TTSConfig``) with ``setup`` on micro-batches
    of ``shape``. Nothing is allocated: fake tensors carry shapes only. ``progress`` hears each phase as it starts
    (:func:`phases` of them)."""
    start = time.perf_counter()
    fake = FakeTensorMode(allow_non_fake_inputs=True)
    with fake, _same_place_to_is_noop():
        model, trainable = build_trainable(config, setup)
    batch = example_batch(config, shape)
    frames = int(batch.frame_mask.sum())
    batch = replace(batch, **{name: fake.from_tensor(tensor) for name, tensor in _tensors(batch).items()})
    run = _Steps(model, trainable, setup)
    tracker = _Tracker()
    tracker.progress = progress
    tracker.track_external(run.loss, *_tensors(batch).values())
    with fake, tracker, _KnownShapes(frames):
        run(batch, tracker)
    return _estimate(tracker, model, trainable, run.optimizer_state(), time.perf_counter() - start)


@dataclass(frozen=True)
class MeasuredMemory:
    """Peak bytes above the weights of a real run of the same steps on the CPU, counted two ways."""

    tracked: int  # by MemTracker on real tensors: the estimate's own accounting, without fake tensors
    allocated: int  # by torch's profiler: the CPU allocator's report of every allocation and free


def measure_step_memory(config, setup: TrainingSetup, shape: StepShape) -> MeasuredMemory:
    """Run the steps :func:`estimate_step_memory` traces for real, on the CPU, and measure their peak above the
    weights (the estimate predicts ``peak - frozen_weights - trainable_weights``; the batch is built inside the
    measured window, as estimated). The allocator also sees what no tensor op returns, all of it host-side on a
    GPU: Python scalars wrapped as tensors and the RNG states checkpointing saves (about 5 KB per layer)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    model, trainable = build_trainable(config, setup)
    run = _Steps(model, trainable, setup)
    tracker = _Tracker()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        batch = example_batch(config, shape)
        tracker.track_external(run.loss, *_tensors(batch).values())
        with tracker:
            run(batch, tracker)
    tracked = _estimate(tracker, model, trainable, run.optimizer_state(), 0.0)
    allocations, events = [], list(profiler.profiler.kineto_results.experimental_event_tree())
    while events:
        event = events.pop()
        events.extend(event.children)
        if event.typed[0] == _EventType.Allocation:
            allocations.append((event.start_time_ns, event.typed[1].alloc_size))  # negative: a free
    live = peak = 0
    for _, size in sorted(allocations):
        live += size
        peak = max(peak, live)
    return MeasuredMemory(tracked.peak - tracked.frozen_weights - tracked.trainable_weights, peak)


@dataclass(frozen=True)
class CudaMemory:
    """Peak bytes of a real run of the estimated steps on a CUDA device, by torch's caching allocator."""

    allocated: int  # max_memory_allocated: live tensors, weights included (the estimate's ``peak``)
    reserved: int  # max_memory_reserved: what the allocator held from the driver (rounding, fragmentation)


def measure_cuda_step_memory(config, setup: TrainingSetup, shape: StepShape, device: str = "cuda") -> CudaMemory:
    """Run the steps :func:`estimate_step_memory` traces for real on ``device`` (CUDA autocast in place of the CPU's)
    and read the allocator's peaks over them, from the model's creation on: what the estimate's ``peak`` predicts
    (benchmarks/gpu_check.py compares them)."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.device(device):
        model, trainable = build_trainable(config, setup)
    run = _Steps(model, trainable, setup, device_type="cuda")
    batch = example_batch(config, shape)
    run(replace(batch, **{name: tensor.to(device) for name, tensor in _tensors(batch).items()}))
    torch.cuda.synchronize(device)
    measured = CudaMemory(torch.cuda.max_memory_allocated(device) - before, torch.cuda.max_memory_reserved(device))
    del run, model, trainable
    torch.cuda.empty_cache()
    return measured


def phases(setup: TrainingSetup) -> int:
    """How many phases (forward, backward, optimizer step) :func:`estimate_step_memory` runs."""
    return 3 + 2 * min(setup.accumulate, 2) + 1


def example_batch(config, shape: StepShape) -> TalkerBatch:
    """A real (small) batch of ``shape``: every row laid out exactly as training lays out a clip."""
    special = SpecialIds.from_config(config)
    text = config.talker_config.text_vocab_size
    prompt = [0] * 3 + [(i % (text - 1)) + 1 for i in range(shape.text_tokens)] + [0] * 5
    groups = config.talker_config.num_code_groups
    codes = torch.zeros(shape.frames, groups, dtype=torch.long)
    sequences = [layout_utterance(prompt, codes, special) for _ in range(shape.batch_size)]
    xvectors = torch.zeros(shape.batch_size, config.talker_config.hidden_size)
    return collate_sequences(sequences, xvectors)


def parameter_bytes(build: Callable[[], torch.nn.Module], dtype: torch.dtype) -> int:
    """Bytes of the parameters and buffers of the module ``build`` returns, created in ``dtype`` on fake tensors."""
    with FakeTensorMode(), default_dtype(dtype):
        module = build()
    return sum(_bytes(t) for t in (*module.parameters(), *module.buffers()))


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Build modules in ``dtype``: the only way to get fake parameters of another dtype (``.to`` cannot swap them)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def build_trainable(config, setup: TrainingSetup) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
    """``config``'s model in ``setup``'s dtypes, made trainable as ``QwenTTSModule`` does (random weights: memory
    depends on shapes only), and its trainable parameters."""
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    models = import_qwen_tts().core.models
    with default_dtype(setup.weights_dtype):  # adapters too, then peft upcasts them to float32 (as in training)
        model = models.Qwen3TTSForConditionalGeneration(config)
        make_trainable(model, setup.finetune, setup.lora, setup.gradient_checkpointing)  # LoRA dropout active
    cast_adapter_inputs(model, setup.autocast_dtype is None)  # as QwenTTSModule does around its steps
    if setup.cast_everything:
        for parameter in model.parameters():
            parameter.data = parameter.data.to(setup.weights_dtype)
    return model, [p for p in model.parameters() if p.requires_grad]


# ---------------------------------------------------------------------------------------------------- internals


class _Loss(torch.nn.Module):
    """Lightning's training step under its precision plugin (autocast around the forward only), as one module: a
    module the step calls twice (the codec embedding) is accepted by MemTracker only inside a parent."""

    def __init__(self, model: torch.nn.Module, autocast: torch.dtype | None, device_type: str = "cpu") -> None:
        super().__init__()
        self.model, self.autocast, self.device_type = model, autocast, device_type

    def forward(self, batch: TalkerBatch) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None):
            out = training_step_losses(self.model.talker, batch)
            return combine_losses(out.talker, out.sub_talker)


class _Steps:
    """Two optimizer steps as Lightning runs them, the second with up to two accumulated micro-batches (later ones
    repeat it)."""

    def __init__(
        self, model: torch.nn.Module, trainable: list[torch.nn.Parameter], setup: TrainingSetup, device_type="cpu"
    ) -> None:
        self.loss, self.trainable, self.setup = _Loss(model, setup.autocast_dtype, device_type), trainable, setup
        self.optimizer = setup.optimizer(trainable)
        self.scaler = torch.amp.GradScaler(device_type) if setup.loss_scaling else None

    def __call__(self, batch: TalkerBatch, tracker: _Tracker | None = None) -> None:
        phase = tracker.enter if tracker else (lambda name: None)
        for micro_batches in (1, min(self.setup.accumulate, 2)):  # step 2 runs with the optimizer state built
            for _ in range(micro_batches):
                phase("forward")
                loss = self.loss(batch)
                phase("backward")
                (self.scaler.scale(loss) if self.scaler else loss).backward()
                del loss
            phase("optimizer step")
            self.optimizer_step()

    def optimizer_step(self) -> None:
        """Lightning's optimizer step: unscale (16-mixed), clip, step, zero the gradients (set to None)."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.setup.gradient_clip:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.setup.gradient_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def optimizer_state(self) -> int:
        """Bytes the optimizer keeps between steps."""
        return sum(_bytes(t) for state in self.optimizer.state.values() for t in state.values() if _is_tensor(t))


class _Tracker(MemTracker):
    """MemTracker that counts frozen parameters without hooking them, keeps only the global peak (its per-module
    peaks cost minutes on a 28-layer model) and remembers in which phase the peak happened."""

    phase = "forward"
    peak_phase = "forward"
    progress: Callable[[str], None] | None = None

    def enter(self, phase: str) -> None:
        """A new phase of the steps. Each forward starts afresh for MemTracker's per-module bookkeeping, which
        refuses a module that runs again outside a parent (the global peak is kept)."""
        self.phase = phase
        if self.progress:
            self.progress(phase)
        if phase == "forward":
            self.reset_mod_stats()

    def _track_module_params_and_buffers(self, module: torch.nn.Module, install_grad_hooks: bool = True):
        def mark_gradient(grad: torch.Tensor) -> None:
            self._update_and_maybe_create_winfos(grad, _MemRefType.GRAD)

        parameters = buffers = 0
        for parameter in module.parameters():
            parameters += self._count(parameter, _MemRefType.PARAM)
            if parameter.requires_grad and install_grad_hooks and parameter not in self._param_to_grad_hook_handles:
                self._param_to_grad_hook_handles[parameter] = (
                    parameter.register_hook(mark_gradient),
                    parameter.register_post_accumulate_grad_hook(lambda p: mark_gradient(p.grad)),
                )
        for buffer in module.buffers():
            buffers += self._count(buffer, _MemRefType.BUFFER)
        return parameters, buffers

    def _count(self, tensor: torch.Tensor, kind: _MemRefType) -> int:
        return sum(info.mem_consumed for info in self._update_and_maybe_create_winfos(tensor, kind))

    def _update_peak_stats(self, peak_state) -> None:
        for device, snapshot in self._curr_mem_snap.items():
            if self._peak_mem.get(device, 0) < snapshot["Total"]:
                self._peak_mem[device] = snapshot["Total"]
                self._peak_mem_snap[device] = dict(snapshot)
                self.peak_phase = self.phase


class _KnownShapes(TorchDispatchMode):
    """Answers the step's data-dependent ops from the batch's known content: every boolean-mask index in the step
    selects the batch's frames (``frames`` rows); ``.item()`` only feeds token counts, which do not change memory."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        aten = torch.ops.aten
        if func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1]):
            source, indices = args
            mask = next(i for i in indices if i is not None and i.dtype == torch.bool)
            before = indices.index(mask)  # dimensions kept in front of the masked ones (x[:, :-1][mask] has none)
            return source.new_empty((*source.shape[:before], self.frames, *source.shape[before + mask.dim() :]))
        if func is aten.nonzero.default:
            return args[0].new_empty((self.frames, args[0].dim()), dtype=torch.long)
        if func is aten._local_scalar_dense.default:
            return {torch.bool: True}.get(args[0].dtype, 1 if not args[0].is_floating_point() else 1.0)
        return func(*args, **(kwargs or {}))


@contextmanager
def _same_place_to_is_noop() -> Iterator[None]:
    """Make ``module.to(device, dtype)`` return the module when nothing would change (peft moves new adapters to
    their base layer's device and dtype; ``_apply`` cannot swap fake parameters, even for the same ones)."""
    original = torch.nn.Module.to

    def to(module, *args, **kwargs):
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        tensors = (*module.parameters(), *module.buffers())
        if all(_already(t, device, dtype) for t in tensors):
            return module
        return original(module, *args, **kwargs)

    torch.nn.Module.to = to
    try:
        yield
    finally:
        torch.nn.Module.to = original


def _already(tensor: torch.Tensor, device, dtype) -> bool:
    same_device = device is None or tensor.device == torch.device(device)
    return same_device and (dtype is None or not tensor.is_floating_point() or tensor.dtype == dtype)


def _estimate(tracker: _Tracker, model, trainable, optimizer_state: int, seconds: float) -> MemoryEstimate:
    (peak_snapshot,) = tracker.get_tracker_snapshot("peak").values()
    kind = {ref.name: peak_snapshot.get(ref, 0) for ref in _MemRefType}
    trainable_bytes = sum(_bytes(p) for p in trainable)
    return MemoryEstimate(
        peak=peak_snapshot["Total"],
        phase=tracker.peak_phase,
        frozen_weights=kind["PARAM"] + kind["BUFFER"] - trainable_bytes,
        trainable_weights=trainable_bytes,
        gradients=kind["GRAD"],
        optimizer_state=min(optimizer_state, kind["OPT"]),
        optimizer_temporaries=max(kind["OPT"] - optimizer_state, 0),
        activations=kind["ACT"],
        backward_temporaries=kind["TEMP"],
        batch=kind["OTH"],
        trainable_parameters=sum(p.numel() for p in trainable),
        parameters=sum(p.numel() for p in model.parameters()),
        speaker_encoder=sum(_bytes(p) for p in model.speaker_encoder.parameters()) if model.speaker_encoder else 0,
        seconds=seconds,
    )


def _is_tensor(value) -> bool:
    return isinstance(value, torch.Tensor)


def _tensors(batch: TalkerBatch) -> dict[str, torch.Tensor]:
    return {f.name: value for f in fields(batch) if _is_tensor(value := getattr(batch, f.name))}


def _bytes(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().nbytes()


@dataclass(frozen=True)
class RolloutMemory:
    """The tensors an RL step's rollouts add on top of the weights and optimizer state kept between steps, in bytes:
    ``generate`` of ``rows`` sequences (prompts x group_size) up to ``positions`` positions each."""

    rows: int
    positions: int
    talker_kv_cache: int
    code_predictor_kv_cache: int
    logits: int  # one step's talker logits, float32 (what the sampler's softmax reads)

    @property
    def total(self) -> int:
        return self.talker_kv_cache + self.code_predictor_kv_cache + self.logits


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, positions: int, rows: int, dtype: torch.dtype) -> int:
    """A decoder's key/value cache: a key and a value vector per layer, key/value head, position and row."""
    return 2 * layers * kv_heads * head_dim * positions * rows * torch.empty((), dtype=dtype).element_size()


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def rollout_memory(config, rows: int, text_tokens: int, max_new_tokens: int, dtype: torch.dtype) -> RolloutMemory:
    """The KV caches of an RL step's batched ``generate`` at its longest: every row's prompt and all
    ``max_new_tokens`` frames cached in the talker (upstream's DynamicCache grows to that); the code predictor caches
    one frame's groups (its cache restarts every frame). Pure arithmetic on the config: the cache is what generation
    holds, not a tensor of the training step."""
    talker, predictor = config.talker_config, config.talker_config.code_predictor_config
    # the training layout of a rollout that ran to the cap is what generate saw (the consistency proof), less the
    # EOS position, which is never fed back
    positions = example_batch(config, StepShape(1, max_new_tokens, text_tokens)).attention_mask.shape[1] - 1
    kv = kv_cache_bytes(talker.num_hidden_layers, talker.num_key_value_heads, _head_dim(talker), positions, rows,
                        dtype)  # fmt: skip
    groups = talker.num_code_groups + 1  # the talker's hidden state, then one position per code group
    sub = kv_cache_bytes(predictor.num_hidden_layers, predictor.num_key_value_heads, _head_dim(predictor), groups,
                         rows, dtype)  # fmt: skip
    return RolloutMemory(rows, positions, kv, sub, rows * talker.vocab_size * 4)
