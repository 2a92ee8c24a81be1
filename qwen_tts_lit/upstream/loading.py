"""Load a Qwen3-TTS checkpoint (local directory, hub id, or ``"tiny"``) through the official ``qwen_tts`` classes.

The model source ``"tiny"`` names the tiny random checkpoint, built into the cache on first use (``"tiny_custom_voice"``
and ``"tiny_voice_design"`` the tiny checkpoints of the other two releases); every function here accepts them, so no
other module needs to know about them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.languages import AUTO, model_languages
from qwen_tts_lit.upstream.compat import import_qwen_tts

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TINY = "tiny"
TINY_SOURCES = {TINY: "base", "tiny_custom_voice": "custom_voice", "tiny_voice_design": "voice_design"}


def resolve_model_source(model: str) -> str:
    """A checkpoint directory or hub id; ``"tiny"`` (or ``"tiny_custom_voice"``, ``"tiny_voice_design"``) becomes
    the cached tiny checkpoint of that kind (built if missing)."""
    if model in TINY_SOURCES:
        from qwen_tts_lit.upstream.tiny import default_tiny_dir, make_tiny

        kind = TINY_SOURCES[model]
        return str(make_tiny(default_tiny_dir(kind), kind))
    return model


def check_model_source(model: str, needs: tuple[str, ...] = ("config.json", "speech_tokenizer/config.json")) -> None:
    """Fail before any heavy work when a local checkpoint cannot be a Qwen3-TTS 12 Hz checkpoint (lacks ``needs``)."""
    if model in TINY_SOURCES:
        return  # built on first use
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1
    if not looks_local:
        return  # a hub id: resolved (and, offline, refused with transformers' own message) at load time
    if not path.is_dir():
        raise UserError(f"{model}: model directory not found (give a checkpoint directory or a hub id like org/name)")
    for required in needs:
        if not (path / required).is_file():
            raise UserError(f"{path / required}: missing; a Qwen3-TTS checkpoint needs it (is this the model root?)")


def _local_or_hub(model: str, needs: tuple[str, ...] | None = None) -> str:
    model = resolve_model_source(model)
    check_model_source(model, *([needs] if needs else []))
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


def resolve_device(device: str) -> str:
    """``"auto"``: cuda when a GPU is visible, else cpu; any other name as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def load_qwen3_tts(model: str, dtype: str = "float32", attn_implementation: str = "sdpa", device: str = "cpu"):
    """Return the official ``qwen_tts.Qwen3TTSModel`` wrapper with weights on ``device``."""
    if dtype not in DTYPES:
        raise UserError(f"dtype {dtype!r}: choose one of {sorted(DTYPES)}")
    source = _local_or_hub(model)
    wrapper = import_qwen_tts().Qwen3TTSModel.from_pretrained(
        source, dtype=DTYPES[dtype], attn_implementation=attn_implementation
    )
    wrapper.model.to(device)
    wrapper.device = torch.device(device)
    return wrapper


def load_config(model: str):
    """The checkpoint's ``Qwen3TTSConfig`` alone (milliseconds), to check inputs before the weights load."""
    import_qwen_tts()
    from qwen_tts.core.models import Qwen3TTSConfig

    return Qwen3TTSConfig.from_pretrained(_local_or_hub(model, needs=("config.json",)))


def load_text_tokenizer(model: str):
    """The checkpoint's text tokenizer (what ``Qwen3TTSModel.processor`` tokenizes prompts with)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_local_or_hub(model, needs=("config.json",)))


def supported_languages(config) -> list[str]:
    """What ``Qwen3TTSForConditionalGeneration.get_supported_languages`` returns, from the config alone."""
    return [AUTO, *model_languages(config.talker_config.codec_language_id)]


def checkpoint_file(model: str, name: str) -> Path:
    """One file of a checkpoint: from its local folder, or from the HF cache for a hub id already downloaded."""
    source = resolve_model_source(model)
    local = Path(source).expanduser() / name
    if local.is_file():
        return local
    from transformers.utils import cached_file

    found = cached_file(source, name)
    if found is None:
        raise UserError(f"{source}: has no {name}")
    return Path(found)


def checkpoint_dtype(model: str) -> torch.dtype:
    """The dtype a checkpoint ships in (float32 for tiny, bfloat16 for the released models)."""
    config = json.loads(checkpoint_file(model, "config.json").read_text())
    return getattr(torch, config.get("dtype") or config.get("torch_dtype") or "float32")
