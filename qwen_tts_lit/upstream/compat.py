"""The only place that works around upstream packaging.

1. ``qwen_tts`` imports ``torchaudio.compliance.kaldi`` at module level for its 25 Hz tokenizer, which the 12 Hz
   path never calls. PyPI's torchaudio is a CUDA build that cannot load beside CPU torch, so when the real module
   fails to import we register an empty stand-in; calling into it raises a clear error instead of a mystery.
2. ``save_pretrained`` writes ``model_type`` (and under transformers 5 ``dtype``) into ``speaker_encoder_config``,
   which ``Qwen3TTSSpeakerEncoderConfig`` then refuses on reload; :func:`clean_saved_config` removes them.
3. Transformers 5: :mod:`qwen_tts_lit.upstream.transformers5` patches what 5.x breaks, around the import below.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

from qwen_tts_lit.upstream import transformers5

_STUB_MODULES = ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi")


def _torchaudio_loads() -> bool:
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
        return False
    return True


def _unavailable(*_args, **_kwargs):
    raise RuntimeError(
        "torchaudio is not loadable in this environment; qwen_tts_lit only uses the 12 Hz tokenizer, which never "
        "needs it. Install a torchaudio build that matches your torch to use the 25 Hz tokenizer."
    )


def _install_torchaudio_stub() -> None:
    for name in _STUB_MODULES:
        is_package = name != _STUB_MODULES[-1]
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=is_package)
        if is_package:
            module.__path__ = []
        module.__getattr__ = _stub_attribute(name)
        sys.modules[name] = module
    sys.modules["torchaudio"].compliance = sys.modules["torchaudio.compliance"]
    sys.modules["torchaudio.compliance"].kaldi = sys.modules["torchaudio.compliance.kaldi"]


def _stub_attribute(module_name: str):
    def getattr_(attr: str):
        if attr.startswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {attr!r}")
        return _unavailable

    return getattr_


def ensure_qwen_tts_importable() -> None:
    """Make ``import qwen_tts`` work on machines where torchaudio cannot load. Idempotent."""
    if "torchaudio" in sys.modules:
        return
    if importlib.util.find_spec("torchaudio") is not None and _torchaudio_loads():
        return
    _install_torchaudio_stub()


def import_qwen_tts():
    """Import and return the ``qwen_tts`` package, quieting its flash-attn banner."""
    ensure_qwen_tts_importable()
    transformers5.before_import()
    with open(os.devnull, "w") as devnull:
        saved, sys.stdout = sys.stdout, devnull
        try:
            import qwen_tts
        finally:
            sys.stdout = saved
    transformers5.after_import()
    return qwen_tts


def clean_saved_config(model_dir: str | Path) -> None:
    """Drop the keys of ``speaker_encoder_config`` that break reloading a saved checkpoint: ``model_type`` (every
    version writes it) and ``dtype`` (transformers 5 writes the loading dtype into each sub-config of a loaded
    model); ``Qwen3TTSSpeakerEncoderConfig`` takes neither."""
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text())
    speaker = config.get("speaker_encoder_config", {})
    if [speaker.pop(key) for key in ("model_type", "dtype") if key in speaker]:
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
