"""Helpers shared by the prepare tests (tests/test_prepare*.py): real audio files and manifests in tmp dirs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_RAW = REPO_ROOT / "data" / "demo" / "raw"


def demo_rows() -> list[dict]:
    """The demo manifest's rows with absolute paths, so a test manifest anywhere can point at the demo clips."""
    rows = [json.loads(line) for line in (DEMO_RAW / "train_raw.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["audio"] = str(DEMO_RAW / row["audio"])
        row["ref_audio"] = str(DEMO_RAW / row["ref_audio"])
    return rows


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    """One line per row; a str row is written verbatim (to make syntax errors)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def tone(seconds: float, rate: int = 24000, db: float = -12.0, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = 24000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, rate, subtype=subtype)
    return path


def tree_bytes(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones included) by relative path."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
