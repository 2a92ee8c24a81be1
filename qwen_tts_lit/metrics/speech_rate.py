"""Speech rate: the pace of the synthesized speech compared with a real recording of the same sentence.

The pace is an articulation rate (:func:`units_per_second`): the sentence's spoken units (``languages.count_words``:
words, or characters in the scripts written without spaces) per second of articulated speech
(:func:`articulated_seconds`: where the ASR judge's words are and the VAD hears speech, each pause of ``PAUSE_S`` or
more cut out). The units are counted in the text that was spoken, not in the ASR's transcript: both clips of a
comparison say the same sentence, so the count cancels, and an ASR that splits or merges a word (tiny.en does, more
on fast speech) does not move the rate; a synthesis that leaves words out is the error rate's to catch.
:func:`pace_ratio` compares a synthesis with its real recording as seconds per unit (> 1 slower, < 1 faster, as the
VAD ratio always did); this is the metric that catches the double-shift bug (speech getting faster every epoch).
docs/speech_rate.md has the definition, why pauses are cut out, and what it reads on known paces.

The older figure, VAD speech seconds (silero-vad) over those of the real recording (:func:`rate_ratio`), is kept as a
cross-check: it under-reads pace (silero pads each speech segment by a constant 30 ms and keeps gaps under 100 ms,
so pauses that grow with slower speech are cut out or kept by their length), and read 2.0x slower espeak-ng as 1.80.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qwen_tts_lit.audio import resample
from qwen_tts_lit.languages import DEFAULT_LANGUAGE, count_words
from qwen_tts_lit.metrics.asr import Word
from qwen_tts_lit.metrics.audio import is_silent

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
        return [span_seconds(segments) for segments in self.segments_batch(wavs, sr)]


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


def span_seconds(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by (start, end) spans that do not overlap: a clip's VAD speech segments, or its bridged words."""
    return float(sum(end - start for start, end in spans))


def rate_ratio(synth_speech_s: float, real_speech_s: float) -> float:
    """synth / real speech seconds; 0.0 for a silent synthesis (fails any rate tolerance rather than being NaN).

    Raises ValueError when the real recording has no speech: that is bad evaluation data, not a model failure.
    """
    if real_speech_s <= 0:
        raise ValueError(f"the real recording has no detected speech ({real_speech_s} s): cannot compare rates")
    return max(float(synth_speech_s), 0.0) / float(real_speech_s)


def words_per_second(text: str, speech_s: float, language: str | None = DEFAULT_LANGUAGE) -> float:
    """Spoken words of ``text`` (``count_words``) per VAD speech second; 0.0 when there is no speech (no rate
    rather than infinity)."""
    return count_words(text, language) / speech_s if speech_s > 0 else 0.0


# A silence of at least this long is a pause, not articulation. Measured (benchmarks/speech_rate.py): espeak-ng's
# silences inside a sentence are 10-70 ms and scale with its speed, as articulation does; its sentence pauses (190-780
# ms) grow faster than 1 / speed; Whisper joins words within a sentence end to end and reads a sentence pause 0.1 s
# long or more, silero-vad 60 ms short (its 30 ms padding each side). Of 0.1, 0.15, 0.2 and 0.25 s, 0.1 read the known
# paces closest: at 0.2 s and above, sentence pauses of fast speech fall under the threshold and count as speech
# (sox tempo 1.25 of two sentences read +7.8 % at 0.2 s, +3.9 % at 0.1 s). Studies of human articulation rate use
# 0.25 s for pauses measured by hand; these are measured by models that shorten and lengthen them.
PAUSE_S = 0.1


def bridged(spans: Sequence[tuple[float, float]], pause_s: float = PAUSE_S) -> list[tuple[float, float]]:
    """``spans`` (start, end) merged where they overlap or are less than ``pause_s`` apart: articulation with its
    pauses cut out, as sorted disjoint intervals."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] < pause_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap_seconds(first: Sequence[tuple[float, float]], second: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by both of two lists of sorted disjoint intervals."""
    total, i, j = 0.0, 0, 0
    while i < len(first) and j < len(second):
        total += max(0.0, min(first[i][1], second[j][1]) - max(first[i][0], second[j][0]))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return total


def articulated_seconds(
    words: Sequence[Word], speech: Sequence[tuple[float, float]] | None = None, pause_s: float = PAUSE_S
) -> float:
    """Seconds of articulated speech in a clip: where the ASR's words are (each silence of ``pause_s`` or more
    between one word and the next cut out) and, given the VAD's ``speech`` segments of the same clip, where the VAD
    hears speech too (its silences of ``pause_s`` or more cut out likewise). Each judge corrects the other's known
    failure: Whisper stretches the first word over leading silence (1 s of it read as 0.6-0.9 s of speech) and,
    where it misses a sentence end, a pause into the word before it; silero-vad hears breaths and noise as speech.
    0.0 for no words."""
    heard = bridged([(word.start, word.end) for word in words], pause_s)
    if speech is None:
        return span_seconds(heard)
    return overlap_seconds(heard, bridged(speech, pause_s))


def units_per_second(units: int, seconds: float) -> float:
    """Articulation rate; 0.0 without articulated speech (no rate rather than infinity)."""
    return units / seconds if seconds > 0 and units > 0 else 0.0


def pace_ratio(synth: tuple[int, float], real: tuple[int, float]) -> float:
    """Seconds per unit of the synthesis over those of the real recording, each given as (units, articulated
    seconds):
    the real speaker's articulation rate over the synthesis's, so > 1 is slower and < 1 faster, and ``rate_tolerance``
    bounds |pace_ratio - 1| as it bounded the VAD ratio. 0.0 when the synthesis has no words (fails any tolerance).

    Raises ValueError when the real recording has none: that is bad evaluation data, not a model failure."""
    real_rate = units_per_second(*real)
    if real_rate <= 0:
        raise ValueError(f"the real recording has no timed words ({real[0]} units, {real[1]} s): cannot compare rates")
    synth_rate = units_per_second(*synth)
    return real_rate / synth_rate if synth_rate > 0 else 0.0
