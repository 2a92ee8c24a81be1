"""What the voice-clone baseline's two choices change: the text layout and the reference's appended silence.

    python benchmarks/voice_clone.py                    # tiny checkpoint, the demo corpus (built on first use)
    python benchmarks/voice_clone.py --seeds 20 --frames 40
    python benchmarks/voice_clone.py --model /path/to/Qwen3-TTS-12Hz-1.7B-Base --prepared DIR --device cuda

For each seed, upstream's ``generate_voice_clone`` speaks one sentence from the prepared dataset's first training
clip (the baseline's reference), sampled from that seed (``upstream/sampling.py``) three ways: the default call
(streaming layout, the reference as recorded), ``non_streaming_mode=True``, and the default call from the prepared
clip with its appended silence. Prints how many generations equal the default call's and the share of group-0
codes that agree frame by frame, plus the reference's lengths. On the tiny random checkpoint the codes say only
that the calls differ, not which sounds better; point ``--model`` at a real Base checkpoint for that.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf
import torch

from qwen_tts_lit.data.dataset import prepared_cache_dir, reference_clip
from qwen_tts_lit.synthesis.presets import SAMPLE_RATE, SEED_GUIDE
from qwen_tts_lit.upstream.sampling import per_row_sampling

REPO = Path(__file__).resolve().parents[1]
DEMO_RAW = REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
SENTENCE = "The morning train was late."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help='checkpoint folder, or "tiny"')
    parser.add_argument("--prepared", type=Path, help="prepared dataset (default: the demo corpus for --model)")
    parser.add_argument("--seeds", type=int, default=10, help="generations per way")
    parser.add_argument("--frames", type=int, default=24, help="frames per generation (the cap)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from qwen_tts_lit.upstream.loading import load_qwen3_tts  # heavy: after argument errors

    if args.prepared is None:
        from qwen_tts_lit.data.prepare import PrepareOptions, prepare

        args.prepared = prepared_cache_dir(str(DEMO_RAW), args.model)
        if not (args.prepared / "train.jsonl").is_file():
            prepare(PrepareOptions(input=DEMO_RAW, output=args.prepared, model=args.model, progress=False))
    tts = load_qwen3_tts(args.model, device=args.device)
    recording, text = reference_clip(args.prepared)
    first = json.loads((args.prepared / "train.jsonl").read_text().splitlines()[0])
    padded, _ = sf.read(str(args.prepared / first["audio"]), dtype="float32")

    generate = tts.model.generate
    captured: list[torch.Tensor] = []

    def recording_generate(*a, **k):
        codes, hidden = generate(*a, **k)
        captured.append(codes[0].cpu())
        return codes, hidden

    def clone(seed: int, reference, **layout) -> torch.Tensor:
        kwargs = SEED_GUIDE.generate_kwargs(args.frames) | {"max_new_tokens": args.frames + 1}
        with per_row_sampling(tts.model, [seed]), torch.no_grad():
            tts.generate_voice_clone(SENTENCE, ref_audio=(reference, SAMPLE_RATE), ref_text=text, **kwargs, **layout)
        return captured[-1]

    tts.model.generate = recording_generate
    ways = {"non_streaming_mode=True": {"non_streaming_mode": True}, "reference with appended silence": {}}
    equal = dict.fromkeys(ways, 0)
    agree = dict.fromkeys(ways, 0.0)
    for seed in range(args.seeds):
        default = clone(seed, recording)
        for name, layout in ways.items():
            other = clone(seed, padded if name.startswith("reference") else recording, **layout)
            n = min(len(default), len(other))
            equal[name] += int(len(default) == len(other) and torch.equal(default, other))
            agree[name] += (default[:n, 0] == other[:n, 0]).float().mean().item() / args.seeds
    del tts.model.generate

    rate = SAMPLE_RATE
    print(f"reference: {first['id']}, {len(padded) / rate:.2f} s prepared, {len(recording) / rate:.2f} s as recorded "
          f"({(len(padded) - len(recording)) / rate:.2f} s appended silence cut)")  # fmt: skip
    print(f"{args.model}: {args.seeds} seeds x {args.frames} frames, each against the default call "
          "(streaming, reference as recorded)")  # fmt: skip
    for name in ways:
        print(f"  {name:34s} equal generations {equal[name]}/{args.seeds}, group-0 codes agreeing {agree[name]:.1%}")


if __name__ == "__main__":
    main()
