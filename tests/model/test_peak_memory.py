"""The memory estimate (fake tensors) equals a real run of the same training steps, and its parts add up to what a
hand count of the model says. Tiny checkpoint on CPU; the real-width check is `benchmarks/memory.py --validate`."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from qwen_tts_lit.model.memory import (
    StepShape,
    TrainingSetup,
    estimate_step_memory,
    measure_step_memory,
    phases,
)
from qwen_tts_lit.upstream.loading import load_config

SHAPE = StepShape(batch_size=2, frames=40, text_tokens=10)
# The recipe's LoRA setup with everything that moves memory: gradients held between accumulated micro-batches,
# clipping, and checkpointing, which re-runs the forward inside backward.
SETUP = TrainingSetup(accumulate=2, gradient_clip=1.0, gradient_checkpointing=True)
# What the CPU allocator also sees and no tensor op returns (host memory on a GPU, so rightly not estimated):
# Python scalars wrapped as tensors (8 bytes each) and the CPU RNG state checkpointing saves per layer (5,056 bytes).
HOST_SIDE_SLACK = 16 * 1024


@pytest.fixture(scope="module")
def estimate(tiny_dir):
    seen: list[str] = []
    result = estimate_step_memory(load_config(str(tiny_dir)), SETUP, SHAPE, progress=seen.append)
    assert len(seen) == phases(SETUP) and seen[-1] == "optimizer step"
    return result


def _measure(tiny_dir: str):
    return measure_step_memory(load_config(tiny_dir), SETUP, SHAPE)


def test_estimate_equals_a_real_run_of_the_same_steps(tiny_dir, estimate):
    # Measured in a fresh process: in a test worker that had run other files, torch's profiler once reported almost
    # none of the step's allocations (114 KB of 31.7 MB; not reproduced alone), while the tracked peak still matched.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        measured = fresh.submit(_measure, str(tiny_dir)).result()
    predicted = estimate.peak - estimate.frozen_weights - estimate.trainable_weights
    assert predicted == measured.tracked  # fake tensors change no byte of the accounting
    # The CPU allocator's own peak (torch's profiler) agrees: usually a few KB above (HOST_SIDE_SLACK), but one CI run
    # on a fresh clone saw it 1.2 % below the tracked peak (the profiler's event order, not the accounting), so the
    # cross-check allows 2 %; the equality above is the exact claim.
    assert -predicted // 50 <= measured.allocated - predicted <= max(HOST_SIDE_SLACK, predicted // 50)
    assert estimate.peak == sum(estimate.parts().values())


def test_parts_match_a_hand_count_of_the_model(estimate, tiny_model):
    base = tiny_model.model
    buffers = sum(b.numel() * b.element_size() for b in base.buffers())
    assert estimate.frozen_weights == 2 * sum(p.numel() for p in base.parameters()) + buffers  # bf16, all frozen
    layers, talker = base.config.talker_config.num_hidden_layers, base.config.talker_config
    per_layer = SETUP.lora.rank * (  # A (in x r) and B (r x out) of q, k, v, o, gate, up, down
        (talker.hidden_size + talker.num_attention_heads * talker.head_dim) * 2
        + (talker.hidden_size + talker.num_key_value_heads * talker.head_dim) * 2
        + (talker.hidden_size + talker.intermediate_size) * 3
    )
    assert estimate.trainable_parameters == layers * per_layer
    assert estimate.trainable_weights == 4 * layers * per_layer  # float32 adapters on bf16 weights
    adapters = 7 * 2 * layers
    assert estimate.optimizer_state == 2 * estimate.trainable_weights + 4 * adapters  # AdamW: m, v, a step each
    assert estimate.batch > 0 and estimate.activations > 0
