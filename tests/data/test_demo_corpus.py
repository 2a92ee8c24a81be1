"""Checks on the committed demo corpus in ``data/demo/`` (made by ``scripts/make_demo_corpus.py``; no espeak needed)."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
RAW = DEMO / "raw"
MANIFEST_KEYS = {"audio", "text", "ref_audio", "language"}
TAG_RE = re.compile(r"<[^>]+>|\[[^\]]+\]|\([^)]+\)|\*[^*]+\*")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def norm(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower().replace("\u2019", "'")
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


@pytest.fixture(scope="module")
def manifest() -> list[dict]:
    return read_jsonl(RAW / "train_raw.jsonl")


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return read_jsonl(DEMO / "heldout.jsonl")


def check_audio(path: Path) -> None:
    assert path.is_file(), path
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    assert audio.shape[0] / sr > 0.5, path
    assert np.isfinite(audio).all(), path
    assert np.abs(audio).max() > 0.01, f"{path} is silent"


def test_manifest_rows(manifest: list[dict]) -> None:
    assert len(manifest) == 48
    for row in manifest:
        assert set(row) == MANIFEST_KEYS
        assert row["language"] == "english"
        assert row["text"].strip()
        assert not Path(row["audio"]).is_absolute() and not Path(row["ref_audio"]).is_absolute()
    assert len({row["audio"] for row in manifest}) == len(manifest)


def test_manifest_audio_reads(manifest: list[dict]) -> None:
    for path in sorted({RAW / row["audio"] for row in manifest} | {RAW / row["ref_audio"] for row in manifest}):
        check_audio(path)


def test_dirt_is_present(manifest: list[dict]) -> None:
    infos = [sf.info(RAW / row["audio"]) for row in manifest]
    assert len({i.samplerate for i in infos}) >= 4
    for sr in (16000, 22050, 44100, 48000):
        assert sum(i.samplerate == sr for i in infos) >= 3, sr
    assert sum(i.channels == 2 for i in infos) == 1
    subtypes = {(i.format, i.subtype) for i in infos}
    for fmt_subtype in (("WAV", "PCM_16"), ("WAV", "PCM_24"), ("WAV", "FLOAT"), ("WAV", "PCM_U8"), ("FLAC", "PCM_16")):
        assert fmt_subtype in subtypes, fmt_subtype
    tagged = [row["text"] for row in manifest if TAG_RE.search(row["text"])]
    assert 4 <= len(tagged) <= 6, tagged
    assert any(unicodedata.normalize("NFC", row["text"]) != row["text"] for row in manifest)
    assert any(row["text"] != " ".join(row["text"].split()) for row in manifest)


def test_heldout(heldout: list[dict], manifest: list[dict]) -> None:
    assert len(heldout) == 8
    assert [row["id"] for row in heldout] == [f"heldout_{i:02d}" for i in range(1, 9)]
    train = [norm(TAG_RE.sub(" ", row["text"])) for row in manifest]
    for row in heldout:
        check_audio(DEMO / row["audio"])
        info = sf.info(DEMO / row["audio"])
        assert (info.samplerate, info.channels, info.format, info.subtype) == (24000, 1, "WAV", "PCM_16")
        assert not TAG_RE.search(row["text"])
        held = norm(row["text"])
        assert held and not any(held in t or t in held for t in train), row["text"]


def test_corpus_is_small() -> None:
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert total < 4_000_000, total
