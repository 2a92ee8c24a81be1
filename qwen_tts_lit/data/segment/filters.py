"""Each clip's status (keep / review / drop) and the reasons: pure functions of what the scan and the judges
measured, so the rules are tested on hand-made numbers and re-applied on every run without any model.

A clip is dropped when it is not usable speech, sent to review when it may be fine but a person should listen,
and kept otherwise. :data:`REASONS` is the one table of reasons (docs/segment.md prints it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from qwen_tts_lit.languages import QWEN_LANGUAGES, count_words, normalize_text, resolve_language
from qwen_tts_lit.metrics import cosine_similarity, mean_embedding

KEEP, REVIEW, DROP = "keep", "review", "drop"
STATUSES = (KEEP, REVIEW, DROP)
REASONS: dict[str, tuple[str, str]] = {
    "no_speech": (DROP, "no words heard, or the ASR's no-speech probability is above --max_no_speech_prob (music, "
                        "noise, silence)"),
    "repetitive": (DROP, "the transcript repeats itself (compression ratio above --max_compression_ratio): Whisper "
                         "hallucinating over noise or music"),
    "too_short": (DROP, "shorter than --min_seconds and no neighbour to merge with (an isolated word or a burst)"),
    "duplicate": (DROP, "the same words as an earlier clip (a repeated intro, or the same recording given twice)"),
    "unsupported_language": (DROP, "spoken in a language Qwen3-TTS does not speak"),
    "other_speaker": (REVIEW, "speaker similarity to the dominant voice (or --speaker_reference) below "
                              "--min_speaker_similarity: another voice, or voices over each other"),
    "other_language": (REVIEW, "detected language differs from the recording set's main language"),
    "low_confidence": (REVIEW, "ASR mean token log-probability below --min_avg_logprob: the transcript may be wrong"),
    "rate_outlier": (REVIEW, "words per second more than --rate_factor away from the median clip: a transcript "
                             "that misses or invents words, or unusual speech"),
    "too_quiet": (REVIEW, "speech quieter than --quiet_db"),
    "clipped": (REVIEW, "more than --max_clipped_fraction of the samples at full scale (distorted)"),
    "forced_cut": (REVIEW, "cut inside speech (no pause within --max_seconds): listen to its ends"),
    "word_at_cut": (REVIEW, "transcribing across a cut made inside speech, the ASR hears a word that spans it: the "
                            "word is split between two clips"),
}  # fmt: skip
DUPLICATE_MIN_WORDS = 3  # "yes, thank you" may well be said twice; longer identical texts are repeats
RATE_MIN_CLIPS = 5  # a median over fewer clips means little
# Whisper's word time stamps are off by tens of milliseconds: a word crosses a cut only when it starts and ends at
# least this far on either side of it (measured on tiny.en: cuts between two words showed overlaps of 0.02-0.04 s).
WORD_CROSS_S = 0.08


@dataclass(frozen=True)
class FilterSettings:
    """The thresholds (``SegmentRequest`` owns their defaults and documents them)."""

    min_seconds: float
    margin_seconds: float
    min_speaker_similarity: float
    min_avg_logprob: float
    max_no_speech_prob: float
    max_compression_ratio: float
    rate_factor: float
    quiet_db: float
    max_clipped_fraction: float
    language: str | None = None
    """The language given (ISO code); None when the ASR detected it per clip."""


@dataclass(frozen=True)
class Evidence:
    """What was measured about one clip (clips of a recording are consecutive, in time order)."""

    id: str
    seconds: float
    speech_span: float
    """Seconds from the first to the last speech frame."""
    speech_seconds: float
    level_db: float
    clipped_fraction: float
    forced_start: bool
    forced_end: bool
    text: str
    words: tuple = ()
    """(word, start, end, probability) rows."""
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    language: str = ""
    digest: str = ""
    embedding: np.ndarray | None = None
    word_across_end: str | None = None
    """For a clip with a forced end: the word the ASR hears spanning that cut (see :func:`word_across`), if any."""


@dataclass(frozen=True)
class Verdict:
    status: str
    reasons: tuple[str, ...]
    notes: tuple[str, ...]
    """One line per reason, with the numbers that triggered it."""
    speaker_similarity: float | None = None
    words_per_second: float | None = None


def status_of(reasons: list[str] | tuple[str, ...]) -> str:
    """drop if any reason drops, review if any asks for review, keep when there is none."""
    statuses = {REASONS[reason][0] for reason in reasons}
    return DROP if DROP in statuses else REVIEW if REVIEW in statuses else KEEP


def dominant_speaker(embeddings: list[np.ndarray], threshold: float, rounds: int = 3) -> np.ndarray:
    """The voice of most clips. The mean embedding is pulled aside by a minority of other voices, so: repeatedly the
    mean of the more similar half (the majority's), then the mean of every clip at least ``threshold`` similar to
    that: the whole cluster the rule will accept as the voice, not just its most typical half."""
    reference = mean_embedding(embeddings)
    for _ in range(rounds):
        similarities = np.array([cosine_similarity(e, reference) for e in embeddings])
        reference = mean_embedding([e for e, s in zip(embeddings, similarities, strict=True) if s >= np.median(s)])
    cluster = [e for e in embeddings if cosine_similarity(e, reference) >= threshold]
    return mean_embedding(cluster) if cluster else reference


def _spoken(clip: Evidence, settings: FilterSettings) -> str:
    """The code of the language a clip's text is counted in: the one given, else the one the ASR detected."""
    return resolve_language(settings.language, clip.language).code


def _intrinsic(clip: Evidence, settings: FilterSettings) -> list[tuple[str, str]]:
    """Reasons that depend on the clip alone."""
    found = []
    words = normalize_text(clip.text, _spoken(clip, settings)).split()
    if not words or clip.no_speech_prob > settings.max_no_speech_prob:
        found.append(("no_speech", f"no-speech probability {clip.no_speech_prob:.2f}, {len(words)} word(s) heard"))
    if clip.compression_ratio > settings.max_compression_ratio:
        found.append(("repetitive", f"compression ratio {clip.compression_ratio:.2f}"))
    if clip.speech_span + 2 * settings.margin_seconds < settings.min_seconds - 1e-6:
        found.append(("too_short", f"{clip.speech_span:.2f} s of speech"))
    if settings.language is None and clip.language and clip.language not in QWEN_LANGUAGES:
        found.append(("unsupported_language", f"heard as {clip.language!r}"))
    if clip.avg_logprob < settings.min_avg_logprob:
        found.append(("low_confidence", f"mean log-probability {clip.avg_logprob:.2f}"))
    if clip.level_db < settings.quiet_db:
        found.append(("too_quiet", f"speech at {clip.level_db:.1f} dBFS"))
    if clip.clipped_fraction > settings.max_clipped_fraction:
        found.append(("clipped", f"{clip.clipped_fraction:.2%} of samples at full scale"))
    if clip.forced_start or clip.forced_end:
        found.append(("forced_cut", "cut inside speech at its " + " and ".join(
            side for side, forced in (("start", clip.forced_start), ("end", clip.forced_end)) if forced)))  # fmt: skip
    return found


def decide(clips: list[Evidence], settings: FilterSettings, reference: np.ndarray | None = None) -> list[Verdict]:
    """The verdict of every clip. ``reference``: the target voice's embedding (default: the dominant speaker's)."""
    found = [_intrinsic(clip, settings) for clip in clips]
    usable = [i for i, reasons in enumerate(found) if status_of([r for r, _ in reasons]) != DROP]
    similarities = _speaker_similarities(clips, usable, reference, settings.min_speaker_similarity)
    for i in usable:
        if similarities[i] is not None and similarities[i] < settings.min_speaker_similarity:
            found[i].append(("other_speaker", f"similarity {similarities[i]:.2f} to the target voice"))
    rates = _rates(clips, settings)
    rated = [rates[i] for i in usable if rates[i]]
    if len(rated) >= RATE_MIN_CLIPS:
        median = float(np.median(rated))
        for i in usable:
            if rates[i] is not None and not median / settings.rate_factor <= rates[i] <= median * settings.rate_factor:
                found[i].append(("rate_outlier", f"{rates[i]:.2f} words/s, median {median:.2f}"))
    if settings.language is None:
        spoken = Counter()
        for i in usable:
            spoken[clips[i].language] += clips[i].speech_seconds
        main = max(sorted(spoken), key=spoken.get) if spoken else ""
        for i in usable:
            if clips[i].language and clips[i].language != main:
                found[i].append(("other_language", f"heard as {clips[i].language!r}, most clips {main!r}"))
    _mark_duplicates(clips, usable, found, settings)
    _mark_words_at_cuts(clips, found)
    verdicts = []
    for i, reasons in enumerate(found):
        names = tuple(dict.fromkeys(r for r, _ in reasons))
        notes = tuple(f"{r}: {note}" for r, note in reasons)
        verdicts.append(Verdict(status_of(names), names, notes, similarities[i], rates[i]))
    return verdicts


def _speaker_similarities(clips: list[Evidence], usable: list[int], reference, threshold: float) -> list[float | None]:
    embedded = [i for i in usable if clips[i].embedding is not None and np.any(clips[i].embedding)]
    if reference is None:
        if not embedded:
            return [None] * len(clips)
        reference = dominant_speaker([clips[i].embedding for i in embedded], threshold)
    return [
        round(cosine_similarity(clip.embedding, reference), 4)
        if clip.embedding is not None and np.any(clip.embedding) else None
        for clip in clips
    ]  # fmt: skip


def _rates(clips: list[Evidence], settings: FilterSettings) -> list[float | None]:
    rates: list[float | None] = [None] * len(clips)
    for i, clip in enumerate(clips):
        words = count_words(clip.text, _spoken(clip, settings))
        if words and clip.speech_seconds > 0:
            rates[i] = round(words / clip.speech_seconds, 3)
    return rates


def _mark_duplicates(clips, usable, found, settings) -> None:
    first_by_text: dict[str, str] = {}
    first_by_audio: dict[str, str] = {}
    for i in usable:
        clip = clips[i]
        text = normalize_text(clip.text, _spoken(clip, settings))
        earlier = first_by_audio.get(clip.digest) if clip.digest else None
        if earlier is None and len(text.split()) >= DUPLICATE_MIN_WORDS:
            earlier = first_by_text.get(text)
        if earlier is not None:
            found[i].append(("duplicate", f"same as {earlier}"))
            continue
        first_by_text.setdefault(text, clip.id)
        if clip.digest:
            first_by_audio.setdefault(clip.digest, clip.id)


def word_across(words: list | tuple, cut: float, tolerance: float = WORD_CROSS_S) -> str | None:
    """The first of ``words`` ((word, start, end, ...) rows, seconds) that starts before ``cut - tolerance`` and ends
    after ``cut + tolerance``: a word the cut splits. None when every word ends or starts near enough to it."""
    for word in words:
        if word[1] < cut - tolerance and word[2] > cut + tolerance:
            return str(word[0])
    return None


def _mark_words_at_cuts(clips: list[Evidence], found: list) -> None:
    """A word heard across the forced cut between clip i and i + 1 flags both."""
    for i, clip in enumerate(clips[:-1]):
        if clip.forced_end and clip.word_across_end:
            note = f"'{clip.word_across_end}' spans the cut between {clip.id} and {clips[i + 1].id}"
            found[i].append(("word_at_cut", note))
            found[i + 1].append(("word_at_cut", note))
