"""Load a Qwen3-TTS checkpoint (local directory or hub id) through the official ``qwen_tts`` classes."""

from __future__ import annotations

from pathlib import Path

import torch

from qwen_tts_lit.compat import import_qwen_tts
from qwen_tts_lit.errors import UserError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


TINY = "tiny"  # model source that names the tiny random checkpoint, built into the cache on first use


def resolve_model_source(model: str) -> str:
    """A checkpoint directory or hub id; ``"tiny"`` becomes the cached tiny checkpoint (built if missing)."""
    if model == TINY:
        from qwen_tts_lit.tiny import default_tiny_dir, make_tiny

        return str(make_tiny(default_tiny_dir()))
    return model


def check_model_source(model: str) -> None:
    """Fail before any heavy work when a local checkpoint cannot be a Qwen3-TTS 12 Hz checkpoint."""
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1
    if not looks_local:
        return  # a hub id: resolved (and, offline, refused with transformers' own message) at load time
    if not path.is_dir():
        raise UserError(f"{model}: model directory not found (give a checkpoint directory or a hub id like org/name)")
    for required in ("config.json", "speech_tokenizer/config.json"):
        if not (path / required).is_file():
            raise UserError(f"{path / required}: missing; a Qwen3-TTS checkpoint needs it (is this the model root?)")


def resolve_device(device: str) -> str:
    """``"auto"``: cuda when a GPU is visible, else cpu; any other name as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def load_qwen3_tts(model: str, dtype: str = "float32", attn_implementation: str = "sdpa", device: str = "cpu"):
    """Return the official ``qwen_tts.Qwen3TTSModel`` wrapper with weights on ``device``."""
    if dtype not in DTYPES:
        raise UserError(f"dtype {dtype!r}: choose one of {sorted(DTYPES)}")
    model = resolve_model_source(model)
    check_model_source(model)
    qwen_tts = import_qwen_tts()
    wrapper = qwen_tts.Qwen3TTSModel.from_pretrained(
        str(Path(model).expanduser()) if Path(model).expanduser().exists() else model,
        dtype=DTYPES[dtype],
        attn_implementation=attn_implementation,
    )
    wrapper.model.to(device)
    wrapper.device = torch.device(device)
    return wrapper
