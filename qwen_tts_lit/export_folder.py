"""The file names of an export folder (``export``'s output, ``synthesize --model EXPORT``'s input) and its metadata
file.

An export is the official checkpoint layout (:data:`MODEL_CONFIG_FILE`, model.safetensors, ...), a PEFT adapter
folder (:data:`ADAPTER_CONFIG_FILE`, ...) or qwentts.cpp's GGUF pair, plus this project's metadata (provenance, the
scale, metrics, the command; :data:`EXPORT_METADATA_FILE`, which also marks a folder as an export ``--force`` may
replace), the model card and, for an adapter, the speaker file. ``export/`` writes it and ``synthesis/`` reads it
back, so the names sit in the lowest layer, which both may import (a module of ``export/`` is above ``synthesis/``);
the names only ``export/`` uses (the GGUF files, generation_config.json) stay in their writers.
"""

from __future__ import annotations

import json
from pathlib import Path

from qwen_tts_lit.files import write_atomic

EXPORT_METADATA_FILE = "qwen_tts_lit.json"
EXPORT_CARD_FILE = "README.md"
ADAPTER_CONFIG_FILE = "adapter_config.json"  # peft's name
MODEL_CONFIG_FILE = "config.json"  # the official checkpoint layout's name


def write_metadata(folder: Path, metadata: dict) -> Path:
    """Write ``folder/qwen_tts_lit.json`` atomically (what marks the folder as an export of this project)."""
    return write_atomic(Path(folder) / EXPORT_METADATA_FILE, json.dumps(metadata, indent=2) + "\n")


def read_metadata(folder: Path) -> dict:
    """An export's metadata ({} for a folder this project did not write, e.g. an official checkpoint)."""
    path = Path(folder) / EXPORT_METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}
