"""Synthesis speed: real-time factor (RTF = wall s / audio s) and time to first audio, through the Synthesizer.

    python benchmarks/synthesize.py                        # tiny checkpoint on CPU; real-size 1.7B too with CUDA
    python benchmarks/synthesize.py --real-size --layers 1 # the real-size code path on CPU, 1 layer each (not a speed)

Every utterance is exactly --frames frames: EOS is masked out of the talker's logits (random weights say EOS at
random), so RTF compares like with like. Time to first audio = the wall time until the first chunk's waveform
exists (generation + warm-up decode of one chunk); `synthesize` writes nothing before that. "batched" generates the
utterances in one generate call (batch_size, what evaluation does), "per utterance" one call each; either way each
utterance is sampled from its own seed's generator, so both give the same codes. The real-size model has the released
1.7B talker, code predictor and speech tokenizer architectures (benchmarks/train_step.py, benchmarks/prepare.py)
with random weights, bf16 on CUDA. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks hold the real-size configs

from qwen_tts_lit.synthesis.presets import FRAME_RATE  # noqa: E402
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice, decode_with_warmup  # noqa: E402

SENTENCES = [
    "The morning train was twelve minutes late.",
    "She left her umbrella on the bus.",
    "Please close the window before it rains.",
    "We measured the speech rate every epoch.",
]


def tiny_model():
    from qwen_tts_lit.upstream.loading import load_qwen3_tts
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    return load_qwen3_tts(str(make_tiny(default_tiny_dir())), "float32", "sdpa", "cpu")


def real_size_model(device: str, dtype: torch.dtype, layers: int | None):
    """The official wrapper around a random real-size 1.7B model (tiny's text tokenizer: only ids matter)."""
    from prepare import REAL_DECODER, REAL_ENCODER, real_size_tokenizer  # benchmarks/prepare.py
    from real_size import real_1_7b_config  # benchmarks/real_size.py

    from qwen_tts_lit.upstream.compat import import_qwen_tts
    from qwen_tts_lit.upstream.tiny import default_tiny_dir

    tts = tiny_model()  # its processor; the config below is a fresh copy of its skeleton
    models = import_qwen_tts().core.models
    config = real_1_7b_config(str(default_tiny_dir()), layers)
    if layers:
        REAL_DECODER["num_hidden_layers"] = REAL_ENCODER["num_hidden_layers"] = layers
    torch.manual_seed(0)
    with torch.device(device):
        model = models.Qwen3TTSForConditionalGeneration(config).to(dtype).eval()
    speech = real_size_tokenizer(device)
    speech.model.to(dtype)
    model.load_speech_tokenizer(speech)
    model.load_generate_config(tts.model.generate_config)
    tts.model, tts.device = model, torch.device(device)
    return tts


@contextmanager
def no_eos(tts):
    """Mask EOS out of the talker's logits so every utterance runs to the frame cap."""
    eos = tts.model.config.talker_config.codec_eos_token_id

    def mask(module, args, logits):
        logits = logits.clone()
        logits[..., eos] = float("-inf")
        return logits

    handle = tts.model.talker.codec_head.register_forward_hook(mask)
    try:
        yield
    finally:
        handle.remove()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(synth: Synthesizer, texts: list[str], frames: int, batch: int) -> tuple[float, float]:
    """(wall seconds, audio seconds) for ``texts`` at ``frames`` frames each."""
    _sync(synth.device)
    start = time.perf_counter()
    results = synth.synthesize(texts, seeds=list(range(len(texts))), max_new_tokens=frames, batch_size=batch)
    _sync(synth.device)
    return time.perf_counter() - start, sum(u.audio_seconds for u in results)


def bench(title: str, tts, frames: int, utterances: int, batches: tuple[int, ...]) -> None:
    synth = Synthesizer(tts, Voice(xvector=torch.randn(tts.model.config.talker_config.hidden_size)))
    params = sum(p.numel() for p in tts.model.parameters()) / 1e6
    print(f"{title}: {params:.0f} M params (speech tokenizer excluded), {synth.device}, {frames} frames "
          f"({frames / FRAME_RATE:.1f} s) per utterance")  # fmt: skip
    texts = (SENTENCES * utterances)[:utterances]
    with no_eos(tts):
        timed(synth, texts[:1], 4, 1)  # warm-up: kernels, allocator, silence codes
        wall, _ = timed(synth, texts[:1], frames, 1)
        print(f"  time to first audio (one {frames / FRAME_RATE:.1f} s chunk)   {wall:7.2f} s")
        codes = synth.synthesize(texts[:1], max_new_tokens=frames)[0].codes
        _sync(synth.device)
        start = time.perf_counter()
        decode_with_warmup(tts.model.speech_tokenizer, [codes], synth.silence)
        _sync(synth.device)
        print(f"    of which decoding (warm-up included)        {time.perf_counter() - start:7.2f} s")
        for batch in batches:
            wall, audio = timed(synth, texts, frames, batch)
            label = "per utterance" if batch == 1 else f"batched x{batch}"
            print(f"  {label:<15} {utterances} utterances: RTF {wall / audio:6.3f}   "
                  f"({frames * utterances / wall:7.1f} frames/s, {audio / wall:5.2f}x real time)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=50, help="frames per utterance (12.5 per second)")
    parser.add_argument("--utterances", type=int, default=4)
    parser.add_argument("--real-size", action="store_true", help="run the real-size model even without CUDA")
    parser.add_argument("--layers", type=int, help="real-size model with this many layers per stack (smoke test)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads ({os.cpu_count()} cores)")
    bench("tiny checkpoint", tiny_model(), args.frames, args.utterances, (1, args.utterances))
    device = "cuda" if torch.cuda.is_available() else ("cpu" if args.real_size else None)
    if device is None:
        print("real-size 1.7B: skipped (no CUDA; pass --real-size to run it on the CPU)")
        return
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    layers = f", {args.layers} layer(s) per stack" if args.layers else ""
    title = f"real-size 1.7B architecture, random weights, {str(dtype).removeprefix('torch.')}{layers}"
    bench(title, real_size_model(device, dtype, args.layers), args.frames, args.utterances, (1, args.utterances))


if __name__ == "__main__":
    main()
