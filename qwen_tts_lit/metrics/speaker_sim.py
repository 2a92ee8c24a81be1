"""Speaker similarity: cosine between speaker embeddings of a synthesized clip and of the target voice.

Two judges with one interface (``embed``, ``similarity``): :class:`SpeakerSimilarity` uses resemblyzer's
GE2E encoder, independent of the model being trained (the fair judge); :class:`EmbeddingSimilarity` wraps any
embedding function, e.g. the model's own speaker encoder, which tells whether the model reproduces the voice it
was conditioned on. A silent clip has no speaker: its embedding is all zeros and its similarity 0.0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qwen_tts_lit.audio import resample
from qwen_tts_lit.metrics.audio import is_silent

RESEMBLYZER_RATE = 16000
RESEMBLYZER_DIM = 256
PARTIAL_RATE, MIN_COVERAGE = 1.3, 0.75  # resemblyzer's embed_utterance defaults: partial windows per second, last one
PARTIALS_PER_FORWARD = 256  # 1.6 s partial windows per encoder call (memory bound for very long clips)


def to_vector(embedding: Any) -> np.ndarray:
    """A 1-D float64 numpy vector from a numpy array, list or torch tensor (any device/dtype, e.g. bf16 on GPU)."""
    if hasattr(embedding, "detach"):
        embedding = embedding.detach().float().cpu().numpy()
    return np.asarray(embedding, dtype=np.float64).reshape(-1)


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine of two embeddings; 0.0 when either is all zeros (a silent clip resembles no one)."""
    a, b = to_vector(a), to_vector(b)
    if a.shape != b.shape:
        raise ValueError(f"embedding sizes differ: {a.shape} vs {b.shape}")
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


def mean_embedding(embeddings: list[np.ndarray]) -> np.ndarray:
    """Unit-length mean of several clips' embeddings: a steadier reference than any single clip."""
    mean = np.mean([to_vector(e) for e in embeddings], axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else mean


class SpeakerSimilarity:
    """resemblyzer (GE2E, 256-d) speaker similarity; the encoder loads on first use, once per instance."""

    def __init__(self, device: str = "cpu") -> None:
        """device: torch device for the encoder ("cpu" or "cuda")."""
        self.device = device
        self._encoder = None

    @property
    def encoder(self):
        """The ``resemblyzer.VoiceEncoder`` (its 17 MB weights ship with the package)."""
        if self._encoder is None:
            from resemblyzer import VoiceEncoder

            self._encoder = VoiceEncoder(device=self.device, verbose=False)
        return self._encoder

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Unit-length 256-d embedding of one clip (any rate); zeros for a silent clip."""
        return self.embed_batch([wav], sr)[0]

    def embed_batch(self, wavs: Sequence[np.ndarray], sr: int) -> list[np.ndarray]:
        """Embeddings of several clips (any rate), their partial windows through the encoder together.

        resemblyzer's ``embed_utterance`` for a batch (its own TODO): each clip cut into the same 1.6 s partial
        windows, all windows in one forward pass, each clip's embedding the unit-length mean of its windows'."""
        from resemblyzer import preprocess_wav
        from resemblyzer.audio import wav_to_mel_spectrogram

        windows, owners = [], []
        embeddings = [np.zeros(RESEMBLYZER_DIM, dtype=np.float32) for _ in wavs]
        for index, wav in enumerate(wavs):
            audio = resample(wav, sr, RESEMBLYZER_RATE)
            if is_silent(audio):  # preprocess_wav would divide by a zero RMS and return NaNs
                continue
            audio = preprocess_wav(audio)  # volume normalisation and long-silence trimming, as the encoder was trained
            if audio.size == 0:
                continue
            wav_slices, mel_slices = self.encoder.compute_partial_slices(len(audio), PARTIAL_RATE, MIN_COVERAGE)
            audio = np.pad(audio, (0, max(0, wav_slices[-1].stop - len(audio))))
            mel = wav_to_mel_spectrogram(audio)
            windows += [mel[s] for s in mel_slices]
            owners += [index] * len(mel_slices)
        if not windows:
            return embeddings
        partials = np.concatenate([self._forward(windows[i : i + PARTIALS_PER_FORWARD])
                                   for i in range(0, len(windows), PARTIALS_PER_FORWARD)])  # fmt: skip
        owners_array = np.asarray(owners)
        for index in sorted(set(owners)):
            mean = partials[owners_array == index].mean(axis=0)
            embeddings[index] = mean / np.linalg.norm(mean, 2)
        return embeddings

    def _forward(self, windows: list[np.ndarray]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.encoder(torch.from_numpy(np.array(windows)).to(self.device)).cpu().numpy()

    def similarity(self, wav: np.ndarray, sr: int, reference_embedding: Any) -> float:
        """Cosine between this clip's embedding and the reference speaker's."""
        return cosine_similarity(self.embed(wav, sr), reference_embedding)

    def similarities(self, wavs: Sequence[np.ndarray], sr: int, reference_embedding: Any) -> list[float]:
        """Cosine of each clip's embedding with the reference speaker's (clips embedded together)."""
        return [cosine_similarity(e, reference_embedding) for e in self.embed_batch(wavs, sr)]


class EmbeddingSimilarity:
    """Cosine similarity with any speaker encoder given as ``embed_fn(wav_float32, sample_rate) -> vector``.

    For Qwen3-TTS's own encoder: ``EmbeddingSimilarity(wrapper.model.extract_speaker_embedding, 24000)``.
    """

    def __init__(self, embed_fn: Callable[[np.ndarray, int], Any], sample_rate: int = 24000) -> None:
        """embed_fn: maps mono float32 audio at ``sample_rate`` to an embedding (numpy, list or torch tensor).
        sample_rate: the only rate ``embed_fn`` accepts; clips are resampled to it."""
        self.embed_fn, self.sample_rate = embed_fn, sample_rate

    def embed(self, wav: np.ndarray, sr: int) -> np.ndarray:
        """Embedding of one clip as a float64 numpy vector; zeros for a silent clip."""
        audio = resample(wav, sr, self.sample_rate)
        vector = to_vector(self.embed_fn(np.ascontiguousarray(audio), self.sample_rate))
        return np.zeros_like(vector) if is_silent(audio) else vector

    def similarity(self, wav: np.ndarray, sr: int, reference_embedding: Any) -> float:
        """Cosine between this clip's embedding and the reference speaker's; 0.0 for a silent clip, whose
        embedding would be zeros (the encoder is then not run)."""
        if is_silent(resample(wav, sr, self.sample_rate)):
            return 0.0
        return cosine_similarity(self.embed(wav, sr), reference_embedding)
