"""qwentts.cpp on CPU against the official decoder, with the released 12 Hz speech tokenizer's architecture.

    python benchmarks/gguf_cpu.py                  # 25 frames (2 s of audio), 2 threads
    python benchmarks/gguf_cpu.py --frames 50 --threads 1

The tiny talker (exported as custom_voice by the export's own writer, one speaker) is paired with a speech tokenizer
of the released architecture (upstream/architectures.py; random weights, codebooks and usage counts randomised),
converted with ``export/gguf.py`` and spoken greedily by ``realtimetts-qwen-native-cpu`` in a child process. The
same codes are then decoded by the official ``speech_tokenizer.decode`` in this process. Prints the GGUF sizes, the
conversion time, the runtime's own timings (its ``[Perf]`` lines) and the official decode's, and how far apart the two
waveforms are. Speed only for the codec: the tiny talker's figures say nothing about the 1.7B's. Asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the child-process speaker of the tests

from helpers.qwentts import GREEDY, speak  # noqa: E402

TEXT = "We measured the speech rate, the word error rate and the speaker similarity every epoch."


def real_size_codec(folder: Path) -> None:
    from qwen_tts_lit.upstream.architectures import speech_tokenizer_config
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Model

    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Qwen3TTSTokenizerV2Model(speech_tokenizer_config()).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name.endswith(("embed_sum", "embedding_sum")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            elif name.endswith("cluster_usage"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 + 0.25)
    model.save_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from qwen_tts_lit.export.custom_voice import save_custom_voice
    from qwen_tts_lit.export.gguf import write_gguf_pair
    from qwen_tts_lit.synthesis.presets import GenerationPreset
    from qwen_tts_lit.upstream.compat import import_qwen_tts
    from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

    qwen_tts = import_qwen_tts()
    tiny = default_tiny_dir()
    make_tiny(tiny)
    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "custom_voice"
        base = qwen_tts.Qwen3TTSModel.from_pretrained(str(tiny))
        voice = torch.randn(64, generator=torch.Generator().manual_seed(1))
        save_custom_voice(base.model, str(tiny), {"bench": voice}, export, False, GenerationPreset())
        real_size_codec(export / "speech_tokenizer")
        started = time.perf_counter()
        talker, codec = write_gguf_pair(export, Path(scratch) / "gguf")
        converted = time.perf_counter() - started
        print(f"converted in {converted:.1f} s: talker.gguf {talker.stat().st_size / 2**20:.1f} MiB, "
              f"codec.gguf {codec.stat().st_size / 2**20:.1f} MiB")  # fmt: skip

        request = dict(text=TEXT, speaker="bench", max_new_tokens=args.frames, **GREEDY)
        result = speak(talker, codec, [request], Path(scratch) / "spoken", threads=args.threads)
        spoken = result["spoken"][0]
        for line in result["stderr"].splitlines():
            if line.startswith("[Perf]") and re.search(r"CodecDecode|TalkerDecode|CodePredictor|Total", line):
                print(f"qwentts.cpp ({args.threads} threads) {line}")

        official = qwen_tts.Qwen3TTSModel.from_pretrained(str(export))
        codes = torch.from_numpy(spoken["codes"])
        started = time.perf_counter()
        wavs, _ = official.model.speech_tokenizer.decode([{"audio_codes": codes}])
        decoded = time.perf_counter() - started
        expected = np.asarray(wavs[0], dtype=np.float32)
        seconds = len(expected) / 24000
        print(f"official decode ({args.threads} threads): {decoded * 1000:.0f} ms for {len(codes)} frames "
              f"({seconds:.2f} s of audio, RTF {decoded / seconds:.3f})")  # fmt: skip
        gap = np.abs(spoken["audio"] - expected).max() / max(np.abs(expected).max(), 1e-12)
        print(f"waveforms: max difference {gap:.2e} of the peak, correlation "
              f"{np.corrcoef(spoken['audio'], expected)[0, 1]:.6f}")  # fmt: skip


if __name__ == "__main__":
    main()
