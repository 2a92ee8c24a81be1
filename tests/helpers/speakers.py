"""A small corpus of several voices, spoken by espeak-ng with different voices: what the multi-speaker tests prepare,
train on and export. ``write_speaker_corpus(folder)`` writes ``manifest.jsonl`` (a ``speaker`` field per row) and
the same clips as a folder per speaker (``by_folder/<speaker>/<n>.wav`` + ``.txt``)."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from helpers.long_recordings import espeak

RATE = 24000
VOICES = {
    "ann": ("-v", "en-us", "-s", "160"),
    "bob": ("-v", "en-gb", "-s", "150"),
    "cleo": ("-v", "en-us+f3", "-s", "170"),
}
SENTENCES = (
    "The morning train was late again.",
    "She left her blue umbrella on the bus.",
    "Please close the window before it rains.",
    "We planted three apple trees last spring.",
)


def write_speaker_corpus(folder: Path, speakers: tuple[str, ...] = ("ann", "bob", "cleo")) -> Path:
    """Four clips per speaker (at the default --val_fraction each speaker has one held out); returns the manifest."""
    rows = []
    for name in speakers:
        for i, text in enumerate(SENTENCES):
            wav = folder / "by_folder" / name / f"{i:03d}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), espeak(text, VOICES[name], RATE), RATE, subtype="PCM_16")
            wav.with_suffix(".txt").write_text(text + "\n")
            rows.append({"audio": str(wav.relative_to(folder)), "text": text, "speaker": name, "id": f"{name}_{i:03d}"})
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
