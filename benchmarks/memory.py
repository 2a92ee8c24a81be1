"""Peak GPU memory of the shipped recipes, computed on the CPU: the README's "Performance" table in one command.

    python benchmarks/memory.py                 # the table (0.6B and 1.7B; 25-55 min on 2 cores, by load)
    python benchmarks/memory.py --sizes 1.7b    # one model
    python benchmarks/memory.py --validate      # the estimate vs a real run of a 2-layer, real-width 1.7B (CPU)

Each row is exactly `python -m qwen_tts_lit estimate-memory --fit_config ...` on the shipped configs (the row says
which), at a batch size and clip length: the training step's live tensors at its peak (exact, computed on fake
tensors), then "card" adds the allocator's margin (15 %), the CUDA context (0.5 GiB) and the evaluation's ASR judge
at its published peak. "previous" rows are the recipe as it was before (float32 weights, foreach AdamW), written
as a temporary overlay. `--validate` runs the same steps for real on the CPU (bf16, real width, 2 layers of each
stack) and compares them with torch's own accounting. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GIB = 2**30
RECIPE = "configs/recipe.yaml"
MODELS = {"0.6b": "configs/models/qwen3_tts_0.6b.yaml", "1.7b": "configs/models/qwen3_tts_1.7b.yaml"}
PREVIOUS = """# the recipe before bf16 base weights and fused AdamW
model:
  dtype: float32
  optimizer:
    class_path: torch.optim.AdamW
    init_args: {lr: 2.0e-6, weight_decay: 0.01, fused: false}
"""


def rows(size: str, previous: str) -> list[tuple[str, list[str], int, float]]:
    """(training, extra configs, batch, clip seconds) of the table, for one model."""
    lora = [("LoRA r16", [], b, s) for b in (2, 4) for s in (8, 20)]
    lora += [("LoRA r16, checkpointing", ["configs/gpu/16gb.yaml"], b, s) for b in (2, 4) for s in (8, 20)]
    lora += [("LoRA r16, previous recipe", [previous], 2, s) for s in (8, 20)]
    lora += [("LoRA r16, fp16 (T4)", ["configs/gpu/t4.yaml"], 2, 20)]
    full = [("full, AdamW fused, checkpointing", ["configs/full_sft.yaml"], 2, s) for s in (8, 20)]
    full += [("full, Adafactor, checkpointing", ["configs/gpu/24gb_full_sft.yaml"], 2, s) for s in (8, 20)]
    return lora + full


def table(sizes: list[str]) -> None:
    from qwen_tts_lit.cli.lightning import resolved_fit_config
    from qwen_tts_lit.train.memory import estimate_fit_config
    from qwen_tts_lit.train.request import EstimateMemoryRequest

    with tempfile.TemporaryDirectory() as tmp:
        previous = Path(tmp) / "previous_recipe.yaml"
        previous.write_text(PREVIOUS)
        print("| model | training | batch | clip | peak (GiB) | at | card (GiB) | of which judge | command |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size in sizes:
            for training, extra, batch, seconds in rows(size, str(previous)):
                configs = [RECIPE, MODELS[size], *extra]
                request = EstimateMemoryRequest(fit_config=tuple(configs), clip_seconds=seconds, batch_size=batch)
                report = estimate_fit_config(resolved_fit_config(configs), request)
                judge = sum(item.bytes for item in report.on_card if item.name.startswith("ASR"))
                shown = " ".join(f"--fit_config {c if c != str(previous) else 'PREVIOUS'}" for c in configs)
                command = f"`estimate-memory {shown} --batch_size {batch} --clip_seconds {seconds:g}`"
                print(f"| {size.upper()} | {training} | {batch} | {seconds:g} s | {report.estimate.peak / GIB:.2f} | "
                      f"{report.estimate.phase} | {report.total / GIB:.1f} | {judge / GIB:.1f} | {command} |",
                      flush=True)  # fmt: skip
    print(f"\nPREVIOUS = a temporary overlay: {PREVIOUS.splitlines()[0][2:]} ({' '.join(PREVIOUS.split()[2:])})")


def validate() -> None:
    """The estimate against a real CPU run of the same steps on the 1.7B width with 2 layers (bf16, LoRA r16)."""
    from dataclasses import replace

    import torch

    from qwen_tts_lit.model.memory import StepShape, TrainingSetup, estimate_step_memory, measure_step_memory
    from qwen_tts_lit.upstream.architectures import released_config

    config = released_config("1.7b", layers=2)
    recipe = TrainingSetup(accumulate=2, gradient_clip=1.0)
    for name, setup in {
        "LoRA r16, bf16 weights, bf16 autocast, accumulation 2, clip 1.0": recipe,
        "the same with gradient checkpointing": replace(recipe, gradient_checkpointing=True),
    }.items():
        shape = StepShape.from_seconds(2, 8)
        torch.manual_seed(0)
        estimate = estimate_step_memory(config, setup, shape)
        start = time.perf_counter()
        measured = measure_step_memory(config, setup, shape)
        predicted = estimate.peak - estimate.frozen_weights - estimate.trainable_weights
        print(f"1.7B width, 2 layers, batch 2 x 8 s, {name}:")
        print(f"  estimate (fake tensors, {estimate.seconds:.0f} s): {predicted:>13,} bytes above the weights")
        print(f"  real run, MemTracker ({time.perf_counter() - start:.0f} s): {measured.tracked:>13,} "
              f"(difference {predicted - measured.tracked:,})")  # fmt: skip
        print(f"  real run, CPU allocator (profiler):  {measured.allocated:>13,} "
              f"(difference {predicted - measured.allocated:,}: host-side scalars and RNG states)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--validate", action="store_true", help="compare with a real run instead of the table")
    args = parser.parse_args()
    validate() if args.validate else table(args.sizes)


if __name__ == "__main__":
    main()
