"""Shared fixtures. Everything runs offline on CPU against the real qwen_tts classes and a tiny checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Prove that nothing reaches for a model hub: these make transformers/huggingface_hub fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny checkpoint for the whole session (about 5 s to build)."""
    from qwen_tts_lit.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny") / "ckpt")


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path):
    """The tiny checkpoint loaded through the official wrapper, ``qwen_tts.Qwen3TTSModel``."""
    from qwen_tts_lit.compat import import_qwen_tts

    return import_qwen_tts().Qwen3TTSModel.from_pretrained(str(tiny_dir))
