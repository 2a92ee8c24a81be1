"""A custom_voice checkpoint folder (``export --format custom_voice``) as qwentts.cpp's GGUF pair: ``talker.gguf``
(the talker, its code predictor, the text tokenizer, the speakers by name, the sampling defaults) and
``codec.gguf`` (the 12 Hz speech tokenizer: the decoder that speaks, the encoder that voice cloning uses).

The weights are copied unchanged as float32 (qwentts.cpp's own quantizer makes BF16 / Q8_0 / Q4_K_M from these),
streamed one tensor at a time, so the 1.7B talker never sits in memory twice. What each name and key is:
``gguf_layout``. Each file is written to a temporary sibling and renamed (``files.atomic_path``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export.gguf_layout import (
    CODEC_ARCH,
    F32,
    TALKER_ARCH,
    U32,
    UnknownTensor,
    codebook_part,
    codec_metadata,
    codec_problem,
    codec_tensor_name,
    talker_metadata,
    talker_tensor_name,
)
from qwen_tts_lit.files import atomic_path

TALKER_FILE = "talker.gguf"
CODEC_FILE = "codec.gguf"
SPEECH_TOKENIZER_DIR = "speech_tokenizer"
WEIGHTS_FILE = "model.safetensors"
# upstream's EuclideanCodebook divides the running sum by the usage clamped at this (its ``epsilon``)
CODEBOOK_EPSILON = 1e-5
# GGUF token types (llama.cpp's vocabulary convention): a normal piece, a special token, an id with no token
NORMAL, SPECIAL, UNUSED = 1, 4, 5


def _gguf():
    try:
        import gguf
    except ImportError as error:
        raise UserError("--format gguf: needs the gguf package: pip install 'qwen_tts_lit[gguf]'") from error
    return gguf


def text_vocabulary(folder: Path) -> tuple[list[str], list[int], list[str], int]:
    """(tokens by id, their GGUF token types, BPE merges, end-of-text id) from a checkpoint's tokenizer files
    (vocab.json, merges.txt, tokenizer_config.json): the runtime tokenizes the text itself."""
    vocab = json.loads(_read(folder / "vocab.json"))
    settings = json.loads(_read(folder / "tokenizer_config.json"))
    added = {int(i): entry["content"] for i, entry in (settings.get("added_tokens_decoder") or {}).items()}
    size = max([*vocab.values(), *added]) + 1
    tokens, kinds = [f"<|unused-{i}|>" for i in range(size)], [UNUSED] * size
    for token, i in vocab.items():
        tokens[i], kinds[i] = token, NORMAL
    for i, token in added.items():
        tokens[i], kinds[i] = token, SPECIAL
    merges = [line for line in _read(folder / "merges.txt").splitlines() if line and not line.startswith("#")]
    eos = settings.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    return tokens, kinds, merges, tokens.index(eos) if eos in tokens else 0


def _read(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: missing; a custom_voice export holds it (export --format custom_voice)")
    return path.read_text(encoding="utf-8")


def _add_metadata(writer, meta: dict[str, object]) -> None:
    """Each value with its exact GGUF type: U32 / F32 / bool / str scalars, lists as arrays (ints as int32, as the
    reference converter stores them; the loader reads their raw 32-bit data)."""
    for key, value in meta.items():
        if key == "general.architecture":
            continue
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, U32):
            writer.add_uint32(key, int(value))
        elif isinstance(value, F32):
            writer.add_float32(key, float(value))
        elif isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            raise TypeError(f"metadata {key}: give its GGUF type (U32, F32, bool, str or list), not {type(value)}")


def _write(path: Path, arch: str, meta: dict[str, object], tensors: list[tuple[str, tuple[int, ...], object]]) -> None:
    """One GGUF file: metadata, then ``tensors`` (name, numpy shape, a function returning the float32 array) read
    and written one at a time."""
    gguf = _gguf()
    with atomic_path(path) as temporary:
        writer = gguf.GGUFWriter(str(temporary), arch)
        _add_metadata(writer, meta)
        for name, shape, _ in tensors:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, shape, load in tensors:
            array = np.ascontiguousarray(load(), dtype=np.float32)
            if array.shape != shape:
                raise AssertionError(f"{name}: {array.shape} != {shape}")
            writer.write_tensor_data(array)
        writer.close()


def _safetensors(path: Path):
    from safetensors import safe_open

    if not path.is_file():
        raise UserError(f"{path}: missing; a custom_voice export holds it (export --format custom_voice)")
    return safe_open(str(path), framework="pt")


def write_talker(folder: Path, target: Path) -> Path:
    """``folder``'s talker as qwentts.cpp's talker GGUF."""
    config = json.loads(_read(folder / "config.json"))
    if config.get("tts_model_type") != "custom_voice" or not config["talker_config"].get("spk_id"):
        raise UserError(f"{folder / 'config.json'}: tts_model_type {config.get('tts_model_type')!r} with no spk_id: "
                        "give a custom_voice export (its speakers are spoken by name)")  # fmt: skip
    generation_path = folder / "generation_config.json"
    generation = json.loads(generation_path.read_text()) if generation_path.is_file() else {}
    meta = talker_metadata(config, generation)
    tokens, kinds, merges, eos = text_vocabulary(folder)
    meta.update({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": kinds,
                 "tokenizer.ggml.merges": merges, "tokenizer.ggml.eos_token_id": U32(eos)})  # fmt: skip
    weights = folder / WEIGHTS_FILE
    with _safetensors(weights) as source:
        tensors = []
        for key in sorted(source.keys()):
            name = _renamed(talker_tensor_name, key, weights)
            if name is not None:
                shape = tuple(source.get_slice(key).get_shape())
                tensors.append((name, shape, lambda key=key: source.get_tensor(key).float().numpy()))
        _write(target, TALKER_ARCH, meta, tensors)
    return target


def _renamed(rename, key: str, weights: Path) -> str | None:
    try:
        return rename(key)
    except UnknownTensor:
        raise UserError(f"{weights}: tensor {key}: not part of the Qwen3-TTS 12 Hz architecture qwentts.cpp reads"
                        ) from None  # fmt: skip


def write_codec(folder: Path, target: Path) -> Path:
    """``folder`` (a speech_tokenizer/ folder) as qwentts.cpp's codec GGUF. Each RVQ codebook becomes one table,
    ``embedding_sum / max(cluster_usage, eps)``: what upstream's decode computes at every call."""
    config = json.loads(_read(folder / "config.json"))
    weights = folder / WEIGHTS_FILE
    with _safetensors(weights) as source:
        shapes = {key: tuple(source.get_slice(key).get_shape()) for key in source.keys()}
        # only the codebooks the 16 code groups use: the encoder ships more acoustic layers than it encodes with
        acoustic_kept = config["encoder_valid_num_quantizers"] - config["encoder_config"]["num_semantic_quantizers"]
        tensors, codebooks = [], {}
        for key in sorted(shapes):
            part = codebook_part(key)
            if part is not None:
                fused, buffer = part
                if buffer != "initialized" and not (".vq_acoustic." in fused and _layer(fused) >= acoustic_kept):
                    codebooks.setdefault(fused, {})[buffer] = key
                continue
            name = _renamed(codec_tensor_name, key, weights)
            if name is not None:
                tensors.append((name, shapes[key], lambda key=key: source.get_tensor(key).float().numpy()))
        for fused, parts in sorted(codebooks.items()):
            sums, usage = parts["embedding_sum"], parts["cluster_usage"]
            tensors.append((fused, shapes[sums], lambda s=sums, u=usage: _codebook(source, s, u)))
        _write(target, CODEC_ARCH, codec_metadata(config, shapes), tensors)
    return target


def _layer(fused: str) -> int:
    return int(fused.split(".")[-2])


def _codebook(source, sums: str, usage: str) -> np.ndarray:
    total = source.get_tensor(sums).float().numpy()  # (codebook_size, dim)
    count = np.clip(source.get_tensor(usage).float().numpy(), CODEBOOK_EPSILON, None)  # (codebook_size,)
    return total / count[:, None]


def check_codec(speech_tokenizer: Path) -> None:
    """Refuse a speech tokenizer qwentts.cpp would abort on, before anything is written."""
    path = Path(speech_tokenizer) / "config.json"
    problem = codec_problem(json.loads(_read(path)))
    if problem is not None:
        raise UserError(f"{path}: {problem}")


def write_gguf_pair(custom_voice: Path, out: Path) -> tuple[Path, Path]:
    """A custom_voice export folder as ``out/talker.gguf`` and ``out/codec.gguf``."""
    custom_voice = Path(custom_voice)
    check_codec(custom_voice / SPEECH_TOKENIZER_DIR)
    talker = write_talker(custom_voice, Path(out) / TALKER_FILE)
    codec = write_codec(custom_voice / SPEECH_TOKENIZER_DIR, Path(out) / CODEC_FILE)
    return talker, codec


def write_gguf_export(loaded, scale: float, name: str | None, out: Path, preset) -> tuple[Path, Path]:
    """``export --format gguf``: the custom_voice checkpoint written into a folder inside ``out`` (the staging
    folder), converted, then removed, so ``out`` holds the two GGUF files (and the card and metadata)."""
    from qwen_tts_lit.export.custom_voice import write_custom_voice
    from qwen_tts_lit.export_folder import MODEL_CONFIG_FILE
    from qwen_tts_lit.upstream.loading import checkpoint_file

    _gguf()  # what can refuse is checked before the custom_voice is written: the package, the codec
    check_codec(checkpoint_file(loaded.base_model, MODEL_CONFIG_FILE).parent / SPEECH_TOKENIZER_DIR)
    checkpoint = out / ".custom_voice"
    checkpoint.mkdir()
    try:
        write_custom_voice(loaded, scale, name, checkpoint, False, preset)
        return write_gguf_pair(checkpoint, out)
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)
