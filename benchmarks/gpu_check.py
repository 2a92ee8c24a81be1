"""The GPU check: what this project claims on a CUDA device, measured in one run (docs/gpu_check.md).

    bash benchmarks/gpu_check.sh OUT                      # on the GPU machine: wheels, then this module
    python benchmarks/gpu_check.py --out OUT              # this module alone, in an environment that has qwen-tts
    python benchmarks/gpu_check.py --out OUT --device cpu --smoke   # the whole path on the tiny model, CPU, seconds

Stages, each guarded (a failure is recorded with its error and the next stage runs) and written after it finishes
(OUT/gpu_check.json and OUT/gpu_check.md, atomically):

1. ``parity``: one optimizer step of ``QwenTTSModule`` through a real Lightning ``Trainer`` on the tiny checkpoint,
   on CPU in float32 (the reference) and on the device in 32-true and bf16-mixed: loss and LoRA gradients (B made
   non-zero first, so A's gradients are not all zero) within :data:`TOLERANCES`.
2. ``train_step``: the real 1.7B architecture (28 + 5 layers, random weights, bf16): our step against upstream's
   loop re-created (benchmarks/train_step.py: frames per second, their ratio, peak memory per variant).
3. ``memory``: ``estimate-memory``'s figure for the shipped recipe (configs/recipe.yaml + the 1.7B overlay: bf16
   weights, LoRA r16, bf16-mixed, accumulation 4, clipping, fused AdamW) against the same steps run on the device.
4. ``eval_generation``: one epoch's evaluation generation, 8 sentences x the 5 default scales = 40 rows in one
   batched generate call with upstream's dynamic cache, then decoding: seconds and real-time factor.
5. ``eval_variants``: the same 40 rows with ``torch.compile`` on both transformer stacks, with the static cache and
   with CUDA graphs (upstream/decoding.py): seconds, RTF, speed-up, and whether each row's codes equal stage 4's.

Random weights say EOS at random, so in stages 4-5 EOS is masked out (every row runs to its text's frame cap, the
worst case an epoch can cost) and the sampled codes are comparable across variants (per-row seeds).
``--smoke`` runs every stage on the tiny checkpoint with small sizes: a test of the path, not a figure.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))  # train_step.py, synthesize.py, prepare.py
sys.path.insert(0, str(REPO))

STAGES = ("parity", "train_step", "memory", "eval_generation", "eval_variants")
# (loss relative error, gradient relative L2 error) allowed against CPU float32
TOLERANCES = {"32-true": (1e-4, 1e-3), "bf16-mixed": (2e-2, 5e-2)}
SENTENCES = [  # 8 held-out-like sentences (the demo's lengths: 3-5 s of speech)
    "The morning train was twelve minutes late.",
    "She left her umbrella on the bus again.",
    "Please close the window before it starts to rain.",
    "We measured the speech rate after every epoch.",
    "A quiet voice carried across the empty hall.",
    "He wrote the numbers down and checked them twice.",
    "The river was higher than anyone had seen before.",
    "They planted three small trees behind the school.",
]
GIB = 2**30


# ------------------------------------------------------------------ stage 1: parity


def parity_batch(config, seconds: list[float]):
    """Laid-out clips of these lengths (random codes and text), as training reads them."""
    from train_step import SyntheticSplit

    from qwen_tts_lit.model.layout import SpecialIds

    return SyntheticSplit(seconds, SpecialIds.from_config(config), config)


def lightning_step(tiny_dir: Path, split, device: str, precision: str, root: Path) -> tuple[float, dict]:
    """Loss and gradients of the first optimizer step of a real ``Trainer.fit`` (one batch of the whole split)."""
    import lightning as L
    from torch.utils.data import DataLoader

    from qwen_tts_lit.data.dataset import Collate
    from qwen_tts_lit.model.lora import LoraSpec
    from qwen_tts_lit.train.module import QwenTTSModule

    seen: dict = {}

    class Capture(L.Callback):
        def on_fit_start(self, trainer, pl_module):  # after configure_model and the move to the device
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for name, parameter in sorted(pl_module.tts.named_parameters()):
                    if "lora_B" in name:
                        values = torch.randn(parameter.shape, generator=generator) * 0.02
                        parameter.copy_(values.to(parameter))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen["loss"] = float(outputs["loss"].detach().float().cpu())

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen["grads"] = {name: p.grad.detach().float().cpu().clone()
                             for name, p in pl_module.tts.named_parameters() if p.grad is not None}  # fmt: skip

    torch.manual_seed(0)
    module = QwenTTSModule(model=str(tiny_dir), lora=LoraSpec(rank=4, alpha=8, dropout=0.0))
    xvector = torch.randn(module_hidden(tiny_dir), generator=torch.Generator().manual_seed(1))
    loader = DataLoader(split, batch_size=len(split), collate_fn=Collate(xvector))
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=precision, max_steps=1,
        limit_val_batches=0, logger=False, callbacks=[Capture()], enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    return seen["loss"], seen["grads"]


def module_hidden(tiny_dir: Path) -> int:
    from qwen_tts_lit.upstream.loading import load_config

    return load_config(str(tiny_dir)).talker_config.hidden_size


def compare(reference: tuple[float, dict], other: tuple[float, dict], precision: str) -> dict:
    """Relative errors of ``other`` against ``reference`` and whether they are within :data:`TOLERANCES`."""
    (loss_ref, grads_ref), (loss, grads) = reference, other
    names = sorted(grads_ref)
    if sorted(grads) != names:
        raise RuntimeError(f"different trainable parameters: {len(grads)} vs {len(names)}")
    flat_ref = torch.cat([grads_ref[n].flatten() for n in names])
    flat = torch.cat([grads[n].flatten() for n in names])
    loss_error = abs(loss - loss_ref) / abs(loss_ref)
    grad_error = float((flat - flat_ref).norm() / flat_ref.norm())
    worst = max(float((grads[n] - grads_ref[n]).norm() / grads_ref[n].norm().clamp_min(1e-30)) for n in names)
    loss_tol, grad_tol = TOLERANCES[precision]
    return {
        "loss": loss, "loss_reference": loss_ref, "loss_rel_error": loss_error, "loss_tolerance": loss_tol,
        "grad_rel_l2_error": grad_error, "grad_tolerance": grad_tol, "grad_worst_tensor_rel_error": worst,
        "grad_cosine": float(torch.nn.functional.cosine_similarity(flat, flat_ref, dim=0)),
        "grad_tensors": len(names), "within_tolerance": loss_error <= loss_tol and grad_error <= grad_tol,
    }  # fmt: skip


def stage_parity(ctx: argparse.Namespace) -> dict:
    from qwen_tts_lit.upstream.loading import load_config

    split = parity_batch(load_config(str(ctx.tiny_dir)), [1.5, 3.0, 2.2, 4.0])  # padded rows of different lengths
    root = Path(tempfile.mkdtemp(prefix="gpu-check-parity-"))
    reference = lightning_step(ctx.tiny_dir, split, "cpu", "32-true", root)
    runs = {"32-true": "32-true", "bf16-mixed": "bf16-mixed"} if ctx.device == "cuda" else {"bf16-mixed": "bf16-mixed"}
    results = {f"{ctx.device}_{name}": compare(reference, lightning_step(ctx.tiny_dir, split, ctx.device, p, root), p)
               for name, p in runs.items()}  # fmt: skip
    return {"reference": "cpu 32-true", "rows": len(split), "runs": results,
            "all_within_tolerance": all(r["within_tolerance"] for r in results.values())}  # fmt: skip


# ------------------------------------------------------------------ stage 2: our step vs upstream's loop


def stage_train_step(ctx: argparse.Namespace) -> dict:
    import train_step

    steps, accumulate = (1, 1) if ctx.smoke else (4, 4)
    if ctx.smoke:
        train_step.MIX_MINUTES = 0.5  # a few dozen clips: enough for 2 optimizer steps of one micro-batch
    args = argparse.Namespace(mix="ljspeech", size="tiny" if ctx.smoke else "real-1.7b", steps=steps, batch_size=2,
                              accumulate=accumulate, device=ctx.device)  # fmt: skip
    ref_audio = np.random.default_rng(0).standard_normal(24000 * 4).astype(np.float32) * 0.1  # 4 s
    tallies = train_step.run(args, str(ctx.tiny_dir), "", ref_audio=ref_audio, layers=None)
    variants = {name: {"frames_per_s": t.frames / t.seconds, "seconds": t.seconds, "frames": t.frames,
                       "padding": t.padding, "warmup_seconds": t.warmup_seconds,
                       "peak_gib": t.peak_gib if ctx.device == "cuda" else None}
                for name, t in tallies.items()}  # fmt: skip
    upstream = variants["upstream"]["frames_per_s"]
    return {
        "model": args.size, "layers": "released (28 talker, 5 code predictor)" if not ctx.smoke else "tiny",
        "mix": args.mix, "optimizer_steps": steps, "batch_size": 2, "accumulate": accumulate, "variants": variants,
        "ours_over_upstream": variants["ours"]["frames_per_s"] / upstream,
        "ours_same_batches_over_upstream": variants["ours_same_batches"]["frames_per_s"] / upstream,
    }  # fmt: skip


# ------------------------------------------------------------------ stage 3: memory, estimated vs measured


def recipe_setup():
    """The shipped recipe's TrainingSetup, read as ``estimate-memory`` reads a fit config."""
    import yaml

    from qwen_tts_lit.train.memory import training_setup

    recipe = yaml.safe_load((REPO / "configs" / "recipe.yaml").read_text())
    overlay = yaml.safe_load((REPO / "configs" / "models" / "qwen3_tts_1.7b.yaml").read_text())
    model = recipe["model"] | overlay["model"]
    return training_setup(model, recipe["trainer"]), model["model"]


def stage_memory(ctx: argparse.Namespace) -> dict:
    from qwen_tts_lit.model.memory import StepShape, estimate_step_memory, measure_cuda_step_memory
    from qwen_tts_lit.train.memory import ALLOCATOR_MARGIN, CUDA_CONTEXT_GIB
    from qwen_tts_lit.upstream.architectures import released_config
    from qwen_tts_lit.upstream.loading import load_config

    setup, source = recipe_setup()
    config = load_config(str(ctx.tiny_dir)) if ctx.smoke else released_config("1.7b")
    shape = StepShape.from_seconds(2, 8.0)
    estimate = estimate_step_memory(config, setup, shape)
    figures = {
        "model": "tiny" if ctx.smoke else source, "recipe": "configs/recipe.yaml + configs/models/qwen3_tts_1.7b.yaml",
        "batch_size": shape.batch_size, "frames": shape.frames, "text_tokens": shape.text_tokens,
        "estimate_peak_gib": estimate.peak / GIB, "estimate_phase": estimate.phase,
        "estimate_card_gib": estimate.peak * (1 + ALLOCATOR_MARGIN) / GIB + CUDA_CONTEXT_GIB,
        "estimate_seconds": estimate.seconds,
        "measured_allocated_gib": None, "measured_reserved_gib": None, "allocated_over_estimate": None,
    }  # fmt: skip
    if ctx.device == "cuda":
        measured = measure_cuda_step_memory(config, setup, shape)
        figures |= {"measured_allocated_gib": measured.allocated / GIB,
                    "measured_reserved_gib": measured.reserved / GIB,
                    "allocated_over_estimate": measured.allocated / estimate.peak}  # fmt: skip
    else:
        figures["note"] = "measured on CUDA only (torch's caching allocator)"
    return figures


# ------------------------------------------------------------------ stages 4-5: evaluation generation


def eval_model(ctx: argparse.Namespace):
    """The official wrapper with LoRA adapters (the scales need them): tiny, or the real 1.7B (random, bf16)."""
    from qwen_tts_lit.model.lora import LoraSpec, inject_lora

    if ctx.smoke:
        from qwen_tts_lit.upstream.loading import load_qwen3_tts

        tts = load_qwen3_tts(str(ctx.tiny_dir), device=ctx.device)
    else:
        from synthesize import real_size_model

        tts = real_size_model(ctx.device, torch.bfloat16, None)
    torch.manual_seed(0)
    inject_lora(tts.model, LoraSpec(rank=16, alpha=32, dropout=0.0))
    tts.model.eval()
    return tts


def eval_rows(smoke: bool) -> tuple[list[str], list[int], list[float]]:
    """One epoch's 40 rows in evaluation's order: sentence by sentence, each at every default scale (smoke: 2 x 2)."""
    from qwen_tts_lit.evaluation.settings import EvalSettings

    settings = EvalSettings()
    count, scales = (2, settings.scales[-2:]) if smoke else (settings.num_utterances, settings.scales)
    rows = [(i, text, scale) for i, text in enumerate(SENTENCES[:count]) for scale in scales]
    return [r[1] for r in rows], [settings.seed + r[0] for r in rows], [r[2] for r in rows]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_epoch(ctx, tts, decoding: str) -> tuple[dict, list[torch.Tensor]]:
    """One warm-up call (compilation and graph capture happen there), then the timed 40-row epoch."""
    from synthesize import no_eos

    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    texts, seeds, scales = eval_rows(ctx.smoke)
    voice = Voice(xvector=torch.randn(tts.model.config.talker_config.hidden_size, generator=torch.Generator()
                                      .manual_seed(0)))  # fmt: skip
    synth = Synthesizer(tts, voice, decoding=decoding)
    caps = 3 if ctx.smoke else None  # None: each text's own frame cap, as evaluation
    with no_eos(tts):
        _sync(ctx.device)
        began = time.perf_counter()
        synth.synthesize(
            texts, seeds=seeds, lora_scale=scales, max_new_tokens=2 if ctx.smoke else 3, batch_size=len(texts)
        )
        _sync(ctx.device)
        warmup = time.perf_counter() - began
        if ctx.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        began = time.perf_counter()
        spoken = synth.synthesize(texts, seeds=seeds, lora_scale=scales, max_new_tokens=caps, batch_size=len(texts))
        _sync(ctx.device)
        seconds = time.perf_counter() - began
    audio = sum(u.audio_seconds for u in spoken)
    frames = sum(u.frames for u in spoken)
    return {
        "rows": len(spoken), "seconds": seconds, "warmup_seconds": warmup, "frames": frames, "audio_seconds": audio,
        "rtf": seconds / audio if audio else None, "x_real_time": audio / seconds if seconds else None,
        "frames_per_s": frames / seconds,
        "peak_gib": torch.cuda.max_memory_allocated() / GIB if ctx.device == "cuda" else None,
    }, [u.codes for u in spoken]  # fmt: skip


def stage_eval_generation(ctx: argparse.Namespace) -> dict:
    ctx.eval_tts = eval_model(ctx)
    figures, ctx.eval_codes = time_epoch(ctx, ctx.eval_tts, "dynamic")
    return {"model": "tiny" if ctx.smoke else "real-1.7b (random weights, bf16, LoRA r16)", "decoding": "dynamic",
            **figures}  # fmt: skip


def compiled_stacks(tts, smoke: bool):
    """``torch.compile`` on the talker's and the code predictor's transformer stacks (dynamic shapes: the dynamic
    cache grows every step); a context manager that restores them. Smoke: the eager backend (tracing only)."""
    from contextlib import contextmanager

    @contextmanager
    def block():
        stacks = [tts.model.talker.model, tts.model.talker.code_predictor.model]
        originals = [stack.forward for stack in stacks]
        try:
            for stack, forward in zip(stacks, originals, strict=True):
                stack.forward = torch.compile(forward, dynamic=True, backend="eager" if smoke else "inductor")
            yield
        finally:
            for stack in stacks:
                del stack.forward

    return block()


def stage_eval_variants(ctx: argparse.Namespace) -> dict:
    if getattr(ctx, "eval_tts", None) is None:
        stage_eval_generation(ctx)
    tts, reference = ctx.eval_tts, ctx.eval_codes
    baseline = ctx.figures["stages"]["eval_generation"]
    variants: dict = {}
    plans = [("static_cache", "static", False), ("cuda_graphs", "cuda_graphs", False),
             ("torch_compile", "dynamic", True)]  # fmt: skip
    for name, decoding, compiled in plans:
        began = time.perf_counter()
        try:
            if compiled:
                with compiled_stacks(tts, ctx.smoke):
                    figures, codes = time_epoch(ctx, tts, decoding)
            else:
                figures, codes = time_epoch(ctx, tts, decoding)
        except Exception as error:  # one variant failing keeps the others' figures
            variants[name] = {"ok": False, "error": f"{type(error).__name__}: {error}",
                              "seconds_until_failure": time.perf_counter() - began}  # fmt: skip
            continue
        equal = [torch.equal(a, b) for a, b in zip(reference, codes, strict=True)]
        same = [int((a == b).all(-1).sum()) if a.shape == b.shape else 0 for a, b in zip(reference, codes, strict=True)]
        variants[name] = {"ok": True, "decoding": decoding, **figures,
                          "speedup_over_dynamic": baseline.get("seconds", math.nan) / figures["seconds"],
                          "rows_with_equal_codes": sum(equal), "frames_equal_share": sum(same) /
                          max(sum(len(c) for c in reference), 1)}  # fmt: skip
        if ctx.device != "cuda" and decoding == "cuda_graphs":
            variants[name]["note"] = "no CUDA: decoded with the static cache"
    return {"variants": variants}


# ------------------------------------------------------------------ driver


def environment(device: str) -> dict:
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "device": device, "cuda": torch.version.cuda}  # fmt: skip
    for name in ("lightning", "peft", "accelerate", "qwen_tts"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "installed")
        except Exception as error:  # noqa: BLE001 - a version string, whatever happens
            info[name] = f"unavailable: {type(error).__name__}"
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / GIB
    return info


def summary(figures: dict) -> str:
    """The short markdown summary written beside the JSON."""
    env, stages = figures["environment"], figures["stages"]
    lines = [f"# GPU check ({'smoke, ' if figures['smoke'] else ''}{env.get('gpu', env['device'])})", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, transformers {env['transformers']}, "
             f"qwen-tts {env.get('qwen_tts')}, lightning {env.get('lightning')}, peft {env.get('peft')}", "",
             "| stage | result | seconds |", "|---|---|---|"]  # fmt: skip
    for name in STAGES:
        stage = stages.get(name)
        if stage is None:
            continue
        lines.append(f"| {name} | {_headline(name, stage)} | {stage.get('stage_seconds', 0):.0f} |")
    return "\n".join(lines) + "\n"


def _headline(name: str, stage: dict) -> str:
    if not stage.get("ok"):
        return f"FAILED: {stage.get('error', '?')[:200]}"
    if name == "parity":
        return "; ".join(f"{k}: loss err {r['loss_rel_error']:.1e}, grad err {r['grad_rel_l2_error']:.1e} "
                         f"({'ok' if r['within_tolerance'] else 'OUT OF TOLERANCE'})"
                         for k, r in stage["runs"].items())  # fmt: skip
    if name == "train_step":
        v = stage["variants"]
        return (
            f"ours {v['ours']['frames_per_s']:.0f} frames/s, upstream {v['upstream']['frames_per_s']:.0f}: "
            f"{stage['ours_over_upstream']:.2f}x (same batches {stage['ours_same_batches_over_upstream']:.2f}x)"
        )
    if name == "memory":
        measured = stage["measured_allocated_gib"]
        got = f", measured {measured:.2f} GiB ({stage['allocated_over_estimate']:.3f}x)" if measured else ""
        return f"estimate {stage['estimate_peak_gib']:.2f} GiB{got}"
    if name == "eval_generation":
        return f"{stage['rows']} rows in {stage['seconds']:.1f} s, RTF {stage['rtf']:.3f}"
    parts = []
    for variant, v in stage["variants"].items():
        if v.get("ok"):
            parts.append(f"{variant} {v['seconds']:.1f} s ({v['speedup_over_dynamic']:.2f}x, codes equal "
                         f"{v['rows_with_equal_codes']}/{v['rows']})")  # fmt: skip
        else:
            parts.append(f"{variant} FAILED ({v['error'][:80]})")
    return "; ".join(parts)


def write(out: Path, figures: dict) -> None:
    from qwen_tts_lit.files import write_atomic

    write_atomic(out / "gpu_check.json", json.dumps(figures, indent=2, default=str) + "\n")
    write_atomic(out / "gpu_check.md", summary(figures))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="the tiny checkpoint and small sizes everywhere")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {', '.join(STAGES)}")
    ctx = parser.parse_args(argv)
    stages = [s for s in ctx.stages.split(",") if s]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    if ctx.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (use --device cpu --smoke)")
    ctx.out.mkdir(parents=True, exist_ok=True)

    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    ctx.tiny_dir = make_tiny(default_tiny_dir())
    ctx.figures = {"smoke": ctx.smoke, "environment": environment(ctx.device), "stages": {}}
    functions = {"parity": stage_parity, "train_step": stage_train_step, "memory": stage_memory,
                 "eval_generation": stage_eval_generation, "eval_variants": stage_eval_variants}  # fmt: skip
    for name in STAGES:
        if name not in stages:
            continue
        print(f"gpu check: {name} ...", flush=True)
        began = time.perf_counter()
        try:
            result = {"ok": True, **functions[name](ctx)}
        except Exception as error:  # a stage's failure is a figure too; the next stage still runs
            result = {"ok": False, "error": f"{type(error).__name__}: {error}",
                      "traceback": traceback.format_exc()[-4000:]}  # fmt: skip
        result["stage_seconds"] = time.perf_counter() - began
        ctx.figures["stages"][name] = result
        write(ctx.out, ctx.figures)
        print(f"gpu check: {name} {'ok' if result['ok'] else 'FAILED'} in {result['stage_seconds']:.0f} s: "
              f"{_headline(name, result)}", flush=True)  # fmt: skip
    failed = [name for name, stage in ctx.figures["stages"].items() if not stage["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
