"""The prepared GPU check (benchmarks/gpu_check.sh, docs/gpu_check.md): its whole path on the CPU, as the GPU machine
will run it (the stand-ins forced in place of librosa, soundfile and sox), writes every figure; the librosa stand-in
is librosa's mel filterbank; and, with CUDA, the parity checks themselves (gpu)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

# Every stage's figures (an oracle written here, not read from the module: a dropped figure fails).
FIELDS = {
    "parity": {"reference", "rows", "runs", "all_within_tolerance"},
    "train_step": {"model", "optimizer_steps", "variants", "ours_over_upstream", "ours_same_batches_over_upstream"},
    "memory": {"estimate_peak_gib", "estimate_card_gib", "measured_allocated_gib", "measured_reserved_gib",
               "allocated_over_estimate", "batch_size", "frames"},
    "eval_generation": {"rows", "seconds", "audio_seconds", "rtf", "frames_per_s", "decoding"},
    "eval_variants": {"variants"},
}  # fmt: skip
PARITY = {"loss_rel_error", "grad_rel_l2_error", "grad_cosine", "within_tolerance", "loss_tolerance", "grad_tolerance"}
STEP_VARIANTS = {"ours", "ours_same_batches", "upstream"}
EVAL_VARIANTS = {"static_cache", "cuda_graphs", "torch_compile"}


@pytest.mark.slow
def test_the_whole_check_runs_on_the_cpu_and_writes_every_figure(fit_cache, tmp_path):
    out = tmp_path / "out"
    env = os.environ | {"PYTHON": sys.executable, "GPU_CHECK_WHEELS": str(tmp_path / "none"),
                        "GPU_CHECK_STANDINS": "all", "QWEN_TTS_LIT_CACHE": str(fit_cache)}  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(out), "--device", "cpu", "--smoke"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "soundfile: the stand-in from benchmarks/gpu_env is used" in done.stdout
    figures = json.loads((out / "gpu_check.json").read_text())
    stages = figures["stages"]
    assert list(stages) == list(FIELDS)
    for name, fields in FIELDS.items():
        assert stages[name]["ok"], stages[name].get("traceback")
        assert fields <= set(stages[name]), (name, fields - set(stages[name]))
    assert all(PARITY <= set(run) for run in stages["parity"]["runs"].values())
    assert stages["parity"]["all_within_tolerance"]
    assert set(stages["train_step"]["variants"]) == STEP_VARIANTS
    variants = stages["eval_variants"]["variants"]
    assert set(variants) == EVAL_VARIANTS and all(v["ok"] for v in variants.values())
    # CPU: each variant must reproduce the dynamic cache's codes exactly (on a GPU the check reports it)
    assert all(v["rows_with_equal_codes"] == v["rows"] == stages["eval_generation"]["rows"] for v in variants.values())
    assert figures["environment"]["transformers"] and (out / "gpu_check.md").read_text().startswith("# GPU check")


def _standin(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "gpu_env" / "librosa" / "filters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmax"), [(24000, 1024, 128, 12000), (16000, 400, 80, None)])
def test_the_librosa_stand_in_is_librosas_mel_filterbank(sr, n_fft, n_mels, fmax):
    import librosa

    want = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0, fmax=fmax)
    got = _standin("standin_filters").mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0, fmax=fmax)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)


# ------------------------------------------------------------------ with CUDA only


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_cuda_step_matches_the_cpu_step(tiny_dir, tmp_path, precision):
    """One optimizer step through a real Trainer on CUDA against CPU float32, within the check's tolerances."""
    import gpu_check

    from qwen_tts_lit.upstream.loading import load_config

    split = gpu_check.parity_batch(load_config(str(tiny_dir)), [1.5, 3.0, 2.2, 4.0])
    reference = gpu_check.lightning_step(tiny_dir, split, "cpu", "32-true", tmp_path)
    result = gpu_check.compare(reference, gpu_check.lightning_step(tiny_dir, split, "cuda", precision, tmp_path),
                               precision)  # fmt: skip
    assert result["within_tolerance"], result


@pytest.mark.gpu
def test_cuda_graph_decoding_gives_the_codes_of_the_eager_caches(tiny_dir):
    """Greedy, float32, tiny model on CUDA: dynamic, static and CUDA-graph decoding agree row by row."""
    from qwen_tts_lit.synthesis.presets import GREEDY
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice
    from qwen_tts_lit.upstream.loading import load_qwen3_tts

    tts = load_qwen3_tts(str(tiny_dir), device="cuda")
    voice = Voice(xvector=torch.randn(64, generator=torch.Generator().manual_seed(0)))
    texts = ["Hi.", "The morning train was twelve minutes late today.", "She left her umbrella on the bus."]
    codes = {}
    for decoding in ("dynamic", "static", "cuda_graphs"):
        synth = Synthesizer(tts, voice, preset=GREEDY, decoding=decoding)
        for _ in range(2):  # the second call replays the graphs the first captured
            codes[decoding] = [u.codes for u in synth.synthesize(texts, max_new_tokens=[5, 9, 7], batch_size=3)]
    for decoding in ("static", "cuda_graphs"):
        assert all(torch.equal(a, b) for a, b in zip(codes["dynamic"], codes[decoding], strict=True)), decoding
