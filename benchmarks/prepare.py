"""How fast ``prepare`` extracts codec codes: clips per second and real-time factor (RTF = compute s / audio s).

    python benchmarks/prepare.py               # tiny checkpoint on CPU; the real-size tokenizer too when CUDA is there
    python benchmarks/prepare.py --real-size   # the real-size tokenizer also without a GPU (~6x real time, 2 cores)

Input: the shipped demo corpus (data/demo/raw), cleaned exactly as ``prepare`` cleans it (24 kHz, trimmed, 1 s of
trailing silence, whole codec frames). The real-size tokenizer has the released checkpoint's architecture
(``speech_tokenizer/config.json`` of Qwen3-TTS-12Hz-*-Base) with random weights: the speed is the real model's, the
codes mean nothing. Prints figures; asserts nothing (tests never time).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from qwen_tts_lit.data.prepare import PrepareOptions, codec, prepare
from qwen_tts_lit.data.prepare.audio import clean_audio
from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "raw"
RATE = 24000


def demo_clips() -> list[np.ndarray]:
    """The demo corpus as prepare writes it: int16 at 24 kHz, padded to whole codec frames."""
    rows = [json.loads(line) for line in (DEMO / "train_raw.jsonl").read_text().splitlines() if line.strip()]
    clips = []
    for row in rows:
        audio, rate = sf.read(str(DEMO / row["audio"]), dtype="float32", always_2d=True)
        clips.append(clean_audio(audio, rate).pcm)
    return clips


def real_size_tokenizer(device: str, layers: int | None = None):
    """``Qwen3TTSTokenizer`` (the wrapper prepare calls) around a real-size random model, codebooks randomised;
    ``layers`` shrinks its transformers (a CPU smoke run)."""
    from transformers import EncodecFeatureExtractor

    from qwen_tts_lit.upstream.compat import import_qwen_tts

    qwen_tts = import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Model

    from qwen_tts_lit.upstream.architectures import speech_tokenizer_config

    config = speech_tokenizer_config(layers)
    torch.manual_seed(0)
    model = Qwen3TTSTokenizerV2Model(config).eval()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if name.endswith(("embed_sum", "embedding_sum")):  # zero-initialised upstream: every code would be 0
            with torch.no_grad():
                tensor.copy_(torch.randn(tensor.shape))
    tokenizer = qwen_tts.Qwen3TTSTokenizer()
    tokenizer.model, tokenizer.config = model.to(device), model.config
    tokenizer.feature_extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0)
    tokenizer.device = torch.device(device)
    return tokenizer


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_extraction(tokenizer, clips: list[np.ndarray], batch_size: int, device: str) -> float:
    """Seconds to encode every clip in length-sorted batches, as prepare does."""
    order = sorted(clips, key=len)
    _sync(device)
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        codec.encode(tokenizer, order[first : first + batch_size], RATE)
    _sync(device)
    return time.perf_counter() - start


def batch_invariant(tokenizer, clips: list[np.ndarray], batch_size: int) -> str:
    """How many clips get the same codes alone as inside a padded batch (prepare's cache relies on it)."""
    sample = sorted(clips, key=len)[:: max(1, len(clips) // batch_size)][:batch_size]
    together = codec.encode(tokenizer, sample, RATE)
    alone = [codec.encode(tokenizer, [clip], RATE)[0] for clip in sample]
    same = sum(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
    return f"{same}/{len(sample)}"


def line(name: str, clips: list[np.ndarray], seconds: float) -> str:
    audio_s = sum(len(c) for c in clips) / RATE
    rate = len(clips) / seconds
    return f"  {name:<34} {rate:8.1f} clips/s   RTF {seconds / audio_s:.4f}   ({audio_s / seconds:6.1f}x real time)"


def bench_tokenizer(title: str, tokenizer, clips: list[np.ndarray], device: str, batch_sizes: tuple[int, ...]) -> None:
    print(f"{title} on {device}")
    codec.encode(tokenizer, sorted(clips, key=len)[:2], RATE)  # warm-up (allocator, kernels)
    for batch_size in batch_sizes:
        print(line(f"batch {batch_size}", clips, time_extraction(tokenizer, clips, batch_size, device)))
    print(f"  codes alone == codes in a batch of 8: {batch_invariant(tokenizer, clips, 8)} clips")


def bench_prepare(model_dir: Path) -> None:
    print("prepare() end to end on the demo corpus, tiny checkpoint, CPU (model load, checks, x-vector included)")
    with tempfile.TemporaryDirectory() as tmp:
        options = PrepareOptions(
            DEMO / "train_raw.jsonl", Path(tmp) / "out", str(model_dir), device="cpu", progress=False
        )
        for label in ("first run (empty cache)", "re-run (everything cached)"):
            start = time.perf_counter()
            prepare(options)
            print(f"  {label:<34} {time.perf_counter() - start:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-size", action="store_true", help="run the real-size tokenizer even without CUDA")
    args = parser.parse_args()
    clips = demo_clips()
    audio_s = sum(len(c) for c in clips) / RATE
    print(f"demo corpus: {len(clips)} clips, {audio_s:.1f} s of cleaned audio; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads ({os.cpu_count()} cores)")  # fmt: skip
    model_dir = make_tiny(default_tiny_dir())
    tiny = codec.load_model(str(model_dir), "cpu")
    bench_tokenizer("tiny speech tokenizer (0.4 M params)", tiny.model.speech_tokenizer, clips, "cpu", (1, 8, 16))
    bench_prepare(model_dir)
    devices = ["cuda"] if torch.cuda.is_available() else (["cpu"] if args.real_size else [])
    for device in devices:
        tokenizer = real_size_tokenizer(device)
        params = sum(p.numel() for p in tokenizer.model.encoder.parameters()) / 1e6
        sizes = (1, 8, 16, 32) if device == "cuda" else (8,)
        bench_tokenizer(f"real-size speech tokenizer (encoder {params:.0f} M params)", tokenizer, clips, device, sizes)
    if not devices:
        print("real-size speech tokenizer: skipped (no CUDA; pass --real-size to run it on the CPU)")


if __name__ == "__main__":
    main()
