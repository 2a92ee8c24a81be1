"""Long recordings with a known truth, made from espeak-ng speech: where every sentence is, who says it, what is
not speech. ``build_long_recordings(folder)`` writes them and returns the truth (also stored as truth.json).

- ``interview.mp3`` (stereo, 44.1 kHz): four sentences of the main voice with pauses of 0.45-1.2 s, a music-like
  arpeggio, two sentences of a second voice, a noise burst, then a 30 s passage spoken without a single pause.
- ``memo.flac`` (mono, 48 kHz, 24-bit): two more sentences, a repeat of the first sentence, a very fast one, a
  clipped one and a quiet one.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_tts_lit.audio import resample

MAIN_VOICE = ("-v", "en-us", "-s", "165")
OTHER_VOICE = ("-v", "en-us+f3", "-s", "165")  # resemblyzer similarity to the main voice about 0.67 (same voice 0.92)
FAST_VOICE = ("-v", "en-us", "-s", "300")
TRUTH_DB = -50.0  # a sentence spans from its first to its last sample louder than this (dBFS)
SENTENCES = {
    "a1": "The morning train was late again because of the heavy snow.",
    "a2": "She left her blue umbrella on the bus near the old station.",
    "a3": "Please close the window before the rain starts to fall.",
    "a4": "We planted three apple trees behind the barn last spring.",
    "b1": "Thank you for having me on the show today.",
    "b2": "I think the results will surprise a lot of people.",
    "a5": "My brother fixed the bicycle with a borrowed wrench.",
    "a6": "The library opens early on every weekday morning.",
    "a7": "The small dog barked at the mail carrier for an hour until the neighbours came out to see what was wrong.",
    "a8": "Fresh bread and warm soup make a fine supper.",
    "a9": "The children walked home slowly after school.",
}
PASSAGE = (
    "the old lighthouse keeper walked along the narrow path every evening and counted the boats coming home while "
    "the gulls circled above the harbour and the wind carried the smell of salt and tar across the quiet village "
    "where children played near the water and their parents mended nets beside the wooden sheds that lined the "
    "shore until the lamps were lit and the long day finally came to a peaceful end for everyone who lived there"
)


def espeak(text: str, voice: tuple[str, ...], rate: int) -> np.ndarray:
    """espeak-ng speech at ``rate``, its leading and trailing silence cut off (mono float32)."""
    wav = subprocess.run(["espeak-ng", *voice, "--stdout", text], capture_output=True, check=True).stdout
    audio, source_rate = sf.read(io.BytesIO(wav), dtype="float32")
    audio = resample(audio, source_rate, rate)
    loud = np.flatnonzero(np.abs(audio) > 10 ** (TRUTH_DB / 20))
    return audio[loud[0] : loud[-1] + 1]


def arpeggio(seconds: float, rate: int) -> np.ndarray:
    """Music-like: plucked notes with harmonics."""
    note = int(rate * 0.25)
    t = np.arange(note) / rate
    notes = [261.6, 329.6, 392.0, 523.3] * int(np.ceil(seconds / 1.0))
    parts = [np.exp(-3 * t) * sum(0.15 / k * np.sin(2 * np.pi * f * k * t) for k in range(1, 5)) for f in notes]
    return np.concatenate(parts)[: int(seconds * rate)].astype(np.float32)


def noise(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.03).astype(np.float32)


class Timeline:
    """Pieces of audio laid end to end, remembering where each known piece is."""

    def __init__(self, rate: int) -> None:
        self.rate, self.parts, self.length, self.truth = rate, [], 0, []

    def pause(self, seconds: float) -> None:
        self.add(np.zeros(int(seconds * self.rate), dtype=np.float32))

    def add(self, audio: np.ndarray, **truth) -> None:
        """Append ``audio``; with ``truth``, record where it is: speech from its first to its last sample above
        -50 dBFS (where it is audible, after any gain), music and noise whole."""
        if truth:
            loud = np.flatnonzero(np.abs(audio) > 10 ** (TRUTH_DB / 20))
            first, last = (loud[0], loud[-1] + 1) if truth["kind"] in ("sentence", "passage") else (0, len(audio))
            where = {"start": (self.length + first) / self.rate, "end": (self.length + last) / self.rate}
            self.truth.append(truth | where)
        self.parts.append(audio)
        self.length += len(audio)

    def audio(self) -> np.ndarray:
        return np.concatenate(self.parts)


def interview(rate: int = 44100) -> Timeline:
    line = Timeline(rate)
    line.pause(0.6)
    for key, pause in (("a1", 0.5), ("a2", 1.2), ("a3", 0.45), ("a4", 0.8)):
        line.add(espeak(SENTENCES[key], MAIN_VOICE, rate), kind="sentence", key=key, voice="main")
        line.pause(pause)
    line.add(arpeggio(3.0, rate), kind="music")
    line.pause(0.8)
    for key, pause in (("b1", 0.6), ("b2", 1.0)):
        line.add(espeak(SENTENCES[key], OTHER_VOICE, rate), kind="sentence", key=key, voice="other")
        line.pause(pause)
    line.add(noise(3.0, rate), kind="noise")
    line.pause(1.0)
    line.add(espeak(PASSAGE, ("-v", "en-us", "-s", "125"), rate), kind="passage", key="passage", voice="main")
    line.pause(0.8)
    return line


def memo(rate: int = 48000) -> Timeline:
    line = Timeline(rate)
    line.pause(0.5)
    for key, pause in (("a5", 0.7), ("a6", 2.0)):
        line.add(espeak(SENTENCES[key], MAIN_VOICE, rate), kind="sentence", key=key, voice="main")
        line.pause(pause)
    line.add(espeak(SENTENCES["a1"], MAIN_VOICE, rate), kind="sentence", key="a1_again", voice="main")
    line.pause(0.6)
    line.add(espeak(SENTENCES["a7"], FAST_VOICE, rate), kind="sentence", key="a7", voice="main", fast=True)
    line.pause(0.9)
    clipped = np.clip(espeak(SENTENCES["a8"], MAIN_VOICE, rate) * 8.0, -1.0, 1.0)
    line.add(clipped, kind="sentence", key="a8", voice="main", clipped=True)
    line.pause(0.7)
    line.add(espeak(SENTENCES["a9"], MAIN_VOICE, rate) * 0.03, kind="sentence", key="a9", voice="main", quiet=True)
    line.pause(0.6)
    return line


def build_long_recordings(folder: Path) -> dict:
    """Write interview.mp3 and memo.flac into ``folder``; return (and store as truth.json) where everything is."""
    folder.mkdir(parents=True, exist_ok=True)
    first, second = interview(), memo()
    stereo = np.stack([first.audio(), first.audio() * 0.8], axis=1)
    sf.write(str(folder / "interview.mp3"), stereo, first.rate, format="MP3")
    sf.write(str(folder / "memo.flac"), second.audio(), second.rate, subtype="PCM_24")
    truth = {
        "interview": {"file": "interview.mp3", "seconds": first.length / first.rate, "pieces": first.truth},
        "memo": {"file": "memo.flac", "seconds": second.length / second.rate, "pieces": second.truth},
        "sentences": SENTENCES | {"a1_again": SENTENCES["a1"], "passage": PASSAGE},
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def evaluate(truth: dict, records: list[dict]) -> dict:
    """How a segment run did against the truth: for every sentence the clips that contain it whole and the clips
    that overlap it (a clean cut: exactly one of each, the same), its transcript's WER; the passage's clips and the
    WER of their joined transcripts; corpus WERs (errors / reference words)."""
    from qwen_tts_lit.metrics.error_rates import edit_counts

    sentences, passage = {}, None
    for recording in ("interview", "memo"):
        mine = [r for r in records if r["recording"] == recording]
        for piece in truth[recording]["pieces"]:
            overlapping = [r for r in mine if r["start"] < piece["end"] and r["end"] > piece["start"]]
            if piece["kind"] in ("music", "noise"):
                sentences[piece["kind"]] = {"overlapping": [r["id"] for r in overlapping], "piece": piece}
                continue
            text = truth["sentences"][piece["key"]]
            inside = [r for r in mine if r["start"] <= piece["start"] and piece["end"] <= r["end"]]
            heard = " ".join(r["asr_text"] for r in overlapping)
            errors, words = edit_counts(text, heard, "word")
            facts = {"piece": piece, "inside": [r["id"] for r in inside], "overlapping": [r["id"] for r in overlapping],
                     "errors": errors, "words": words, "heard": heard}  # fmt: skip
            if piece["kind"] == "passage":
                passage = facts
            else:
                sentences[piece["key"]] = facts
    spoken = {k: v for k, v in sentences.items() if "inside" in v}
    whole = [k for k, v in spoken.items() if len(v["inside"]) == 1 and v["overlapping"] == v["inside"]]
    clean = [k for k, v in spoken.items() if v["piece"]["voice"] == "main" and len(v["piece"]) == 5]  # no dirt
    clean = [k for k in clean if k != "a1_again"]

    def corpus(keys):
        return sum(spoken[k]["errors"] for k in keys) / max(1, sum(spoken[k]["words"] for k in keys))

    return {
        "sentences": sentences,
        "passage": passage,
        "whole_sentences": len(whole),
        "total_sentences": len(spoken),
        "wer_clean": corpus(clean),
        "wer_all_sentences": corpus(list(spoken)),
        "wer_passage": passage["errors"] / passage["words"],
    }
