"""Speech rate: how long the synthesized speech lasts compared with a real recording of the same sentence.

Durations are VAD speech seconds (silero-vad), so leading/trailing silence and long pauses do not count: a model
that pads its output with silence is not "slower". ``rate_ratio`` > 1 means slower than the real speaker, < 1
faster; this is the metric that catches the double-shift bug (speech getting faster every epoch).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qwen_tts_lit.audio import resample
from qwen_tts_lit.metrics.audio import is_silent
from qwen_tts_lit.metrics.text_norm import normalize_text

VAD_RATE = 16000  # silero-vad runs at 16 kHz (or 8 kHz)
VAD_FRAME = 512  # samples per speech probability at 16 kHz (32 ms)
VAD_CONTEXT = 64  # samples of the previous frame the model sees before each frame
VAD_BATCH = 512  # frames per ONNX call (16 s of audio)


def _import_silero_vad():
    """``import silero_vad`` without its side effect: its module calls ``torch.set_num_threads(1)`` on import, which
    left a training run that had evaluated once on one CPU thread (slower, and with other float rounding than a run
    resumed from a checkpoint: resume was no longer bit-exact). The caller's thread count is restored."""
    import torch

    threads = torch.get_num_threads()
    try:
        import silero_vad
    finally:
        torch.set_num_threads(threads)
    return silero_vad


class SpeechDetector:
    """silero-vad speech seconds; the (bundled, 2 MB) model loads on first use, once per instance."""

    def __init__(
        self, threshold: float = 0.5, min_speech_ms: int = 250, min_silence_ms: int = 100, speech_pad_ms: int = 30
    ) -> None:
        """threshold: speech probability above which a 32 ms frame is speech. min_speech_ms: shorter bursts are
        ignored. min_silence_ms: shorter gaps do not split speech. speech_pad_ms: kept around each segment.
        (silero-vad's own defaults.)"""
        self.threshold, self.min_speech_ms = threshold, min_speech_ms
        self.min_silence_ms, self.speech_pad_ms = min_silence_ms, speech_pad_ms
        self._model = None
        self._sequence_model = None

    @property
    def model(self):
        """The silero-vad TorchScript model."""
        if self._model is None:
            self._model = _import_silero_vad().load_silero_vad()
        return self._model

    def stream(self) -> VadStream:
        """A fresh :class:`VadStream` (its own recurrent state) over the bundled batched ONNX model, loaded once."""
        if self._sequence_model is None:
            self._sequence_model = _import_silero_vad().load_silero_vad(sequence=True)
        return VadStream(self._sequence_model.session)

    def segments(self, wav: np.ndarray, sr: int) -> list[tuple[float, float]]:
        """(start_s, end_s) of each speech segment in one clip (any rate)."""
        return self.segments_batch([wav], sr)[0]

    def segments_batch(self, wavs: Sequence[np.ndarray], sr: int) -> list[list[tuple[float, float]]]:
        """Speech segments of several clips (any rate): the speech probabilities of all clips come from one batched
        pass of the model (``audio_forward``: each row its own state, zero padding after a clip's end as silero pads
        its last window), then silero-vad's own ``get_speech_timestamps_from_probs`` turns each clip's into segments,
        exactly as its per-clip ``get_speech_timestamps`` does. A clip below -80 dBFS has none (the model not run)."""
        import torch

        audio = [resample(wav, sr, VAD_RATE) for wav in wavs]
        heard = [i for i, clip in enumerate(audio) if not is_silent(clip)]
        found: list[list[tuple[float, float]]] = [[] for _ in wavs]
        if not heard:
            return found
        longest = max(len(audio[i]) for i in heard)
        batch = torch.from_numpy(np.stack([np.pad(audio[i], (0, longest - len(audio[i]))) for i in heard]))
        probabilities = self.model.audio_forward(batch, VAD_RATE)  # (clips, windows of VAD_FRAME samples)
        to_segments = _import_silero_vad().get_speech_timestamps_from_probs
        for row, index in enumerate(heard):
            windows = -(-len(audio[index]) // VAD_FRAME)
            stamps = to_segments(
                probabilities[row, :windows].tolist(),
                sampling_rate=VAD_RATE,
                threshold=self.threshold,
                min_speech_duration_ms=self.min_speech_ms,
                min_silence_duration_ms=self.min_silence_ms,
                speech_pad_ms=self.speech_pad_ms,
                audio_length_samples=len(audio[index]),
            )
            found[index] = [(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in stamps]
        return found

    def speech_seconds(self, wav: np.ndarray, sr: int) -> float:
        """Total speech seconds in one clip; 0.0 for silence or noise without speech."""
        return self.speech_seconds_batch([wav], sr)[0]

    def speech_seconds_batch(self, wavs: Sequence[np.ndarray], sr: int) -> list[float]:
        """Total speech seconds of each clip (clips scored together)."""
        return [float(sum(end - start for start, end in segments)) for segments in self.segments_batch(wavs, sr)]


class VadStream:
    """Speech probabilities of consecutive 32 ms frames of one long recording, fed in pieces of any size.

    silero-vad's batched ("sequence") ONNX model runs many frames per call; the LSTM state and the 64-sample context
    are carried from one call to the next, so feeding a recording in pieces gives the probabilities of feeding it
    whole (silero's own per-frame loop gives the same within float rounding: tests/metrics/test_judges.py). Memory is
    one call's frames, whatever the length: this is how ``segment`` reads hours of audio.
    """

    def __init__(self, session) -> None:
        """session: the onnxruntime session of ``silero_vad.load_silero_vad(sequence=True)``."""
        self.session = session
        self.hidden = np.zeros((1, 1, 128), dtype=np.float32)
        self.cell = np.zeros((1, 1, 128), dtype=np.float32)
        self.context = np.zeros(VAD_CONTEXT, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(k, 512) float32 frames at 16 kHz, the next ones of the recording -> (k,) speech probabilities."""
        frames = np.ascontiguousarray(frames, dtype=np.float32).reshape(-1, VAD_FRAME)
        out = []
        for first in range(0, len(frames), VAD_BATCH):
            batch = frames[first : first + VAD_BATCH]
            contexts = np.concatenate([self.context[None], batch[:-1, -VAD_CONTEXT:]])
            feed = {"input": np.concatenate([contexts, batch], axis=1), "h": self.hidden, "c": self.cell}
            probabilities, self.hidden, self.cell = self.session.run(["speech_probs", "hn", "cn"], feed)
            self.context = batch[-1, -VAD_CONTEXT:].copy()
            out.append(np.asarray(probabilities, dtype=np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def rate_ratio(synth_speech_s: float, real_speech_s: float) -> float:
    """synth / real speech seconds; 0.0 for a silent synthesis (fails any rate tolerance rather than being NaN).

    Raises ValueError when the real recording has no speech: that is bad evaluation data, not a model failure.
    """
    if real_speech_s <= 0:
        raise ValueError(f"the real recording has no detected speech ({real_speech_s} s): cannot compare rates")
    return max(float(synth_speech_s), 0.0) / float(real_speech_s)


def count_words(text: str, language: str | None = "en") -> int:
    """Spoken words in normalised text (numbers spelled out in English); each CJK character counts as one."""
    return len(normalize_text(text, language).split())


def words_per_second(text: str, speech_s: float, language: str | None = "en") -> float:
    """Words of ``text`` per VAD speech second; 0.0 when there is no speech (no rate rather than infinity)."""
    return count_words(text, language) / speech_s if speech_s > 0 else 0.0
