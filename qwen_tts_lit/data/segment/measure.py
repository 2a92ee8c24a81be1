"""What the judge models say about each clip: the faster-whisper transcript (words with time stamps, confidences,
language) and the resemblyzer embedding, and for each cut made inside speech the words heard across it; cached by
the clips' bytes and the ASR settings, so a re-run (after an edit of the review sheet, or after a kill) never
transcribes anything twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.metrics import ASR, SpeakerSimilarity

MEASURE_VERSION = 1  # bump when what a measurement holds changes


def asr_fingerprint(asr: ASR) -> str:
    """Everything about the ASR that changes a transcript, hashed: a cached measurement is valid only for it."""
    settings = [MEASURE_VERSION, asr.model_path, asr.compute_type, asr.beam_size, asr.language, asr.temperature]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()


def measure_clip(audio: np.ndarray, rate: int, asr: ASR, speaker: SpeakerSimilarity) -> dict:
    """The judges' view of one clip, JSON-ready."""
    transcript = asr.transcribe_words(audio, rate)
    return {
        "text": transcript.text,
        "words": [[w.text, round(w.start, 3), round(w.end, 3), round(w.probability, 4)] for w in transcript.words],
        "avg_logprob": round(transcript.avg_logprob, 4),
        "no_speech_prob": round(transcript.no_speech_prob, 4),
        "compression_ratio": round(transcript.compression_ratio, 4),
        "language": transcript.language,
        "language_probability": round(transcript.language_probability, 4),
        "embedding": [float(x) for x in np.asarray(speaker.embed(audio, rate), dtype=np.float32)],
    }


CUT_WINDOW_S = 3.0  # of each side of a forced cut transcribed together to see whether a word spans it


def measure_cut(before: np.ndarray, after: np.ndarray, rate: int, asr: ASR) -> dict:
    """Words heard in the last seconds of ``before`` joined to the first of ``after`` (two clips that meet at a cut
    inside speech), and where the cut is in that window: whether a word spans it is :func:`filters.word_across`."""
    window = round(CUT_WINDOW_S * rate)
    head = before[-window:]
    transcript = asr.transcribe_words(np.concatenate([head, after[:window]]), rate)
    words = [[w.text, round(w.start, 3), round(w.end, 3), round(w.probability, 4)] for w in transcript.words]
    return {"cut": round(len(head) / rate, 3), "words": words}


def cut_key(before_digest: str, after_digest: str) -> str:
    """The cache key of a cut: the two clips' bytes."""
    return hashlib.sha256(f"cut:{before_digest}:{after_digest}".encode()).hexdigest()


class MeasureCache:
    """One JSON file per (clip bytes, ASR settings) under ``folder``."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder, self.fingerprint = folder, fingerprint

    def path(self, clip_digest: str) -> Path:
        return self.folder / f"{clip_digest[:32]}-{self.fingerprint[:16]}.json"

    def get(self, clip_digest: str) -> dict | None:
        try:
            return json.loads(self.path(clip_digest).read_text())
        except (OSError, ValueError):
            return None  # missing, or damaged by something other than us: measured again

    def put(self, clip_digest: str, measured: dict) -> None:
        write_atomic(self.path(clip_digest), json.dumps(measured, ensure_ascii=False) + "\n")
