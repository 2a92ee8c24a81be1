"""qwentts.cpp (``realtimetts-qwen-native-cpu``) speaking a GGUF pair in a child process: a GGML_ASSERT in the native
library aborts the process that loaded it, which must not be pytest's. Its greedy codes come from the library's own
dump folder (``dump_dir``: ``codes-full.bin``, one frame per row)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = r"""
import json, sys
import numpy as np
import qwentts_cpp_cpu
talker, codec, out, requests, threads = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
tts = qwentts_cpp_cpu.QwenTTS(talker, codec, cpu_threads=threads)
results = {"speakers": tts.speaker_names(), "spoken": []}
for i, request in enumerate(requests):
    dump = f"{out}/dump{i}"
    __import__("os").makedirs(dump)
    audio, rate = tts.synthesize(**request, dump_dir=dump)
    np.save(f"{out}/audio{i}.npy", audio)
    results["spoken"].append({"rate": rate, "dump": dump, "audio": f"{out}/audio{i}.npy"})
print(json.dumps(results))
"""
GREEDY = dict(do_sample=False, repetition_penalty=1.0, lang="auto")  # the binding's subtalker follows do_sample


def read_dump(path: Path) -> np.ndarray:
    """One array of qwentts.cpp's dump format: int32 ndims, int32 shape[ndims], float32 data (ints stored as floats)."""
    raw = np.fromfile(path, dtype=np.int32)
    shape = tuple(raw[1 : 1 + raw[0]])
    return np.frombuffer(raw[1 + raw[0] :].tobytes(), dtype=np.float32).reshape(shape)


def speak(talker: Path, codec: Path, requests: list[dict], out: Path, threads: int = 1) -> dict:
    """Each request (``QwenTTS.synthesize`` keyword arguments) spoken: {"speakers": [...], "spoken": [{"audio":
    float32 array, "rate": int, "codes": (frames, 16) int array}]}."""
    out.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-c", SCRIPT, str(talker), str(codec), str(out), json.dumps(requests), str(threads)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"qwentts.cpp exited {done.returncode}:\n{done.stderr[-3000:]}"
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for spoken in results["spoken"]:
        spoken["audio"] = np.load(spoken["audio"])
        spoken["codes"] = read_dump(Path(spoken.pop("dump")) / "codes-full.bin").astype(np.int64)
    results["stderr"] = done.stderr
    return results


# qwentts.cpp fixes the codec decoder's widths to the released tokenizer's (export/gguf_layout.RUNTIME_DECODER); the
# tiny checkpoint's codec (decoder_dim 32) would abort it, so the served test export gets one of the real widths,
# the rest still tiny (42 M parameters, 1.2 s to build).
LOUDER = 400.0  # the random decoder's output peaks near 5e-4: its last convolution scaled, peaks ~0.2 (audible)


def write_wide_codec(folder: Path, seed: int = 0) -> None:
    """A speech tokenizer of the tiny config with the released decoder widths, random (codebooks filled, as the
    tiny one's), saved into ``folder`` over what is there."""
    import copy

    import torch

    from qwen_tts_lit.export.gguf_layout import RUNTIME_DECODER
    from qwen_tts_lit.upstream import tiny
    from qwen_tts_lit.upstream.compat import import_qwen_tts

    import_qwen_tts()
    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    config = copy.deepcopy(tiny.SPEECH_TOKENIZER_CONFIG)
    config["decoder_config"].update(RUNTIME_DECODER)
    torch.manual_seed(seed)
    model = Qwen3TTSTokenizerV2Model(Qwen3TTSTokenizerV2Config(**config)).eval()
    generator = torch.Generator().manual_seed(seed)
    tiny._randomise_codebooks(model, generator)
    with torch.no_grad():  # usage counts start at 1, where dividing by them (the converter's fusion) changes nothing
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name.endswith("cluster_usage"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 + 0.25)
    last = model.decoder.decoder[-1].conv
    with torch.no_grad():
        last.weight.mul_(LOUDER)
        last.bias.mul_(LOUDER)
    model.save_pretrained(folder)
