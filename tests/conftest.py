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


@pytest.fixture(scope="session")
def prepared_demo(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped demo corpus prepared for the tiny checkpoint, once per session (about 25 s)."""
    from qwen_tts_lit.data.options import PrepareOptions
    from qwen_tts_lit.data.prepare import prepare

    output = tmp_path_factory.mktemp("prepared") / "demo"
    raw = REPO_ROOT / "data/demo/raw/train_raw.jsonl"
    return prepare(PrepareOptions(input=raw, output=output, model=str(tiny_dir)))


@pytest.fixture(scope="session")
def fit_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """QWEN_TTS_LIT_CACHE for subprocess runs: the tiny checkpoint and the prepared demo are built once per session."""
    return tmp_path_factory.mktemp("qwen_tts_lit_cache")


@pytest.fixture(scope="session")
def demo_run(fit_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch ``fit --config configs/demo.yaml`` run folder (checkpoints, metrics, eval outputs)."""
    from helpers.fit import latest_run, run_demo_fit

    workdir = tmp_path_factory.mktemp("demo_fit")
    run_demo_fit(workdir, "--trainer.max_epochs", "2", cache=fit_cache)
    return latest_run(workdir)


@pytest.fixture(scope="module")
def run_cache(fit_cache: Path):
    """In-process code that resolves a run's base model "tiny" finds the cache the demo fit built (no second build)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TTS_LIT_CACHE", str(fit_cache))
        yield


@pytest.fixture(scope="module")
def demo_run_copy(demo_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module's own copy of the demo run without best.json (its tests say which epoch and scale)."""
    from helpers.runs import copy_run

    return copy_run(demo_run, tmp_path_factory.mktemp("run") / "version_0")
