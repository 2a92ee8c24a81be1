"""Row checks: every problem of every row, found before anything is written.

:func:`check_rows` turns parsed rows into :class:`Clip` plans plus a list of problems (errors and the warnings of the
safe fixes that cleaning will apply). Audio is read and measured here but not kept: the write phase reads and cleans
each clip again, so memory stays bounded by one batch whatever the corpus size.
"""

from __future__ import annotations

import statistics
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwen_tts_lit.audio import as_mono, decoder_quiet
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, SILENT_DB, peak_db, speech_bounds
from qwen_tts_lit.data.prepare.ids import id_problem, safe_id
from qwen_tts_lit.data.prepare.options import MAX_FILE_SECONDS, PrepareOptions
from qwen_tts_lit.data.prepare.problems import Problem
from qwen_tts_lit.data.prepare.sources import RawRow
from qwen_tts_lit.data.prepare.text import clean_text, compile_tag_patterns
from qwen_tts_lit.languages import count_words, has_speakable, resolve_language
from qwen_tts_lit.model.layout import spoken_instruct
from qwen_tts_lit.speaker_file import speaker_key, speaker_name_problem

TRIM_WARN_S = 0.5  # trimming less than this is ordinary edge silence, not worth a warning
WIDEBAND_RATE = 16000  # below it a recording is telephone band (8 kHz: nothing above 4 kHz)
RATE_CHECK_MIN_CLIPS = 5  # a median over fewer clips (of one language) means little


@dataclass
class Clip:
    """A row that passed its checks: what the write phase needs to clean, encode and list it."""

    row: int
    id: str
    text: str
    language: str
    audio_path: Path
    source_audio: str
    source_file: str
    source_line: int
    speaker: str | None
    ref_audio: str | None
    ref_audio_path: Path | None
    speech_s: float
    duration_s: float
    words: int
    """Spoken words of the cleaned text (``languages.count_words`` in the row's language): the rates' unit."""
    instruct: str | None = None
    """The row's instruction, stripped (None: none, also for an empty one, as upstream reads it)."""


@dataclass
class AudioFacts:
    rate: int
    channels: int
    subtype: str
    speech_s: float
    trimmed_s: float
    peak_db: float


def wav_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes the data chunk announces, bytes present) of a RIFF/WAVE file cut short, else None (libsndfile
    silently reads such a file as a shorter clip)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                present = size - handle.tell()
                return (length, present) if length not in (0, 0xFFFFFFFF) and length > present else None
            handle.seek(length + (length & 1), 1)  # chunks are word-aligned


def probe_audio(path: Path, opts: PrepareOptions) -> tuple[AudioFacts | None, list[tuple[str, str, bool]]]:
    """Read one file and say what is wrong with it: (facts or None, [(kind, message, fixable), ...]). A file too
    long to clean and encode in one piece is refused from its header, before its samples are read."""
    import soundfile as sf

    if not path.is_file():
        return None, [("missing_audio", f"file not found: {path}", False)]
    try:
        shortfall = wav_shortfall(path)
        if shortfall is not None:
            announced, present = shortfall
            message = (f"{path} is truncated: its header announces {announced} bytes of audio, the file holds "
                       f"{present} (an interrupted copy or download?)")  # fmt: skip
            return None, [("truncated_audio", message, False)]
        with decoder_quiet():  # libmpg123 prints its own lines about mp3 frames it decodes anyway
            info = sf.info(str(path))
        if info.duration > MAX_FILE_SECONDS:
            message = (f"{path} is {info.duration / 60:.1f} min long: prepare reads and encodes a clip in one piece "
                       f"(memory grows with its length), so files over {MAX_FILE_SECONDS:.0f} s are refused; split "
                       "it into clips")  # fmt: skip
            return None, [("too_long", message, False)]
        with decoder_quiet():
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, struct.error) as error:
        return None, [("unreadable_audio", f"cannot read {path}: {error}", False)]
    if len(data) == 0:
        return None, [("unreadable_audio", f"{path} holds no samples", False)]
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        return None, [("nonfinite_audio", f"{path} has {bad} NaN/inf sample(s)", False)]
    mono = as_mono(data)
    bounds = speech_bounds(mono, rate, opts.trim_threshold_db, opts.trim_margin_s)
    if bounds is None:
        peak = peak_db(mono)
        level = "every sample is zero" if peak == SILENT_DB else f"peak {peak:.1f} dBFS"
        message = f"silent: no 10 ms block above {opts.trim_threshold_db} dBFS ({level}) in {path}"
        return None, [("silent_audio", message, False)]
    facts = AudioFacts(
        rate,
        data.shape[1],
        info.subtype,
        (bounds[1] - bounds[0]) / rate,
        (len(mono) - bounds[1] + bounds[0]) / rate,
        peak_db(mono),
    )
    return facts, _fix_notes(facts, opts)


def _fix_notes(facts: AudioFacts, opts: PrepareOptions) -> list[tuple[str, str, bool]]:
    notes = []
    if facts.rate < WIDEBAND_RATE:
        message = (
            f"{facts.rate} Hz is telephone band: nothing above {facts.rate / 2000:g} kHz, so the voice (and an "
            f"x-vector from it) sounds muffled; use a recording of {WIDEBAND_RATE // 1000} kHz or more"
        )
        notes.append(("narrowband", message, True))
    if facts.rate != opts.sample_rate:
        notes.append(("resampled", f"{facts.rate} Hz, resampled to {opts.sample_rate} Hz", True))
    if facts.channels > 1:
        notes.append(("downmixed", f"{facts.channels} channels, downmixed to mono", True))
    if facts.subtype != "PCM_16":
        notes.append(("sample_format", f"{facts.subtype} samples, converted to 16-bit PCM", True))
    if facts.trimmed_s > TRIM_WARN_S:
        notes.append(("trimmed", f"{facts.trimmed_s:.2f} s of leading/trailing silence trimmed", True))
    if facts.peak_db > 0:
        notes.append(("scaled", f"peak {facts.peak_db:+.1f} dBFS is above full scale, scaled down", True))
    return notes


def cleaned_duration(speech_s: float, opts: PrepareOptions) -> float:
    """Duration after resampling, padding and rounding up to whole codec frames (what the write phase produces)."""
    samples = round(speech_s * opts.sample_rate) + round(opts.trailing_silence_s * opts.sample_rate)
    return -(-samples // FRAME_SAMPLES) * FRAME_SAMPLES / opts.sample_rate


def _clip_id(raw: RawRow) -> tuple[str | None, Problem | None]:
    if raw.id is not None:
        value = unicodedata.normalize("NFC", raw.id)
        reason = id_problem(value)
        if reason is not None:
            message = f"{raw.id!r} is not usable as a file name ({reason})"
            return None, Problem(raw.file, raw.line, "id", message, "bad_id")
        if value != raw.id:
            message = f"id {raw.id!r} normalised to Unicode NFC (ids become file names)"
            return value, Problem(raw.file, raw.line, "id", message, "id_sanitized", fixable=True)
        return value, None
    if raw.audio_path is None:
        return None, None  # the missing audio is reported already
    stem = raw.audio_path.stem
    clean = safe_id(stem)
    if clean == stem:
        return clean, None
    message = f"id derived from the file name {stem!r} changed to {clean!r} (ids become file names)"
    return clean, Problem(raw.file, raw.line, "id", message, "id_sanitized", fixable=True)


def _check_text(raw: RawRow, opts: PrepareOptions, tags) -> tuple[str | None, list[Problem]]:
    at = (raw.file, raw.line, "text")
    if raw.text is None or not raw.text.strip():
        return None, [Problem(*at, "empty transcript", "empty_text")]
    cleaned = clean_text(raw.text, tags, opts.ascii_quotes)
    problems = []
    if cleaned.tags:
        problems.append(Problem(*at, f"removed non-speech tag(s) {' '.join(cleaned.tags)}", "tags", fixable=True))
    if cleaned.unicode_changed:
        message = "normalised Unicode (NFC, quotes, invisible characters)"
        problems.append(Problem(*at, message, "unicode", fixable=True))
    if cleaned.whitespace_changed:
        problems.append(Problem(*at, "normalised whitespace", "whitespace", fixable=True))
    if not has_speakable(cleaned.text):
        message = f"transcript {raw.text.strip()!r} has no words left after removing tags and normalising"
        return None, [Problem(*at, message, "empty_after_cleaning")]
    return cleaned.text, problems


def _check_language(
    raw: RawRow, opts: PrepareOptions, languages: list[str] | None
) -> tuple[str | None, Problem | None]:
    language = (raw.language or opts.default_language).strip().lower()  # upstream compares languages lowercased
    if languages is None or language in languages:  # None: the model config is unreadable, reported elsewhere
        return language, None
    field = "language" if raw.language else "--default_language"
    message = f"{language!r} is not supported by the model (one of {', '.join(languages)})"
    return None, Problem(raw.file, raw.line, field, message, "bad_language")


def check_row(
    index: int, raw: RawRow, opts: PrepareOptions, languages: list[str] | None, tags
) -> tuple[Clip | None, list]:
    """Every problem of one row, and its plan when nothing is fatal."""
    problems: list[Problem] = []
    clip_id, id_problem = _clip_id(raw)
    text, text_problems = _check_text(raw, opts, tags)
    language, language_problem = _check_language(raw, opts, languages)
    problems += [p for p in (id_problem, *text_problems, language_problem) if p is not None]
    facts = None
    if raw.audio_path is not None:
        facts, notes = probe_audio(raw.audio_path, opts)
        problems += [Problem(raw.file, raw.line, "audio", m, kind, fixable) for kind, m, fixable in notes]
    if facts is not None:
        problems += _duration_problems(raw, facts.speech_s, opts)
    problems = [Problem(p.file, p.line, p.field, p.message, p.kind, p.fixable, index) for p in problems]
    if any(not p.fixable for p in problems) or facts is None or None in (clip_id, text, language):
        return None, problems
    clip = Clip(
        index, clip_id, text, language, raw.audio_path, raw.source_audio, raw.file, raw.line, raw.speaker,
        raw.ref_audio, raw.ref_audio_path, facts.speech_s, cleaned_duration(facts.speech_s, opts),
        count_words(text, resolve_language(language).code), spoken_instruct(raw.instruct),
    )  # fmt: skip
    return clip, problems


def _duration_problems(raw: RawRow, speech_s: float, opts: PrepareOptions) -> list[Problem]:
    at, duration = (raw.file, raw.line, "audio"), cleaned_duration(speech_s, opts)
    if speech_s < opts.min_seconds:
        return [Problem(*at, f"too short: {speech_s:.2f} s of speech (--min_seconds {opts.min_seconds})", "too_short")]
    if duration > opts.max_seconds:
        message = f"too long: {duration:.1f} s after cleaning (--max_seconds {opts.max_seconds}); split it"
        return [Problem(*at, message, "too_long")]
    if duration > opts.long_warning_seconds:
        message = f"{duration:.1f} s after cleaning: the 12 Hz decoder drops samples past about 24 s"
        return [Problem(*at, message, "long", fixable=True)]
    return []


def check_rows(
    rows: list[RawRow], opts: PrepareOptions, languages: list[str] | None, progress=None
) -> tuple[list, list]:
    """(clips that passed, all problems) for every row, plus the checks across rows."""
    tags = compile_tag_patterns(opts.tag_patterns)
    clips, problems = [], []
    for index, raw in enumerate(rows):
        clip, found = check_row(index, raw, opts, languages, tags)
        problems += found
        clips += [clip] if clip else []
        if progress is not None:
            progress.update(1)
    problems += duplicate_ids(rows, clips) + speaker_problems(rows) + rate_outliers(clips, opts.rate_outlier_factor)
    return clips, problems


def duplicate_ids(rows: list[RawRow], clips: list[Clip]) -> list[Problem]:
    """Ids that name the same file: equal, or equal but for case (one file on macOS and Windows)."""
    first: dict[str, Clip] = {}
    problems = []
    for clip in clips:
        key = clip.id.casefold()
        if key in first:
            other = first[key]
            same = repr(clip.id) if other.id == clip.id else f"{clip.id!r} (the same file name as {other.id!r})"
            message = f"duplicate id {same} (also at {other.source_file}:{other.source_line}); give rows an 'id'"
            problems.append(Problem(clip.source_file, clip.source_line, "id", message, "duplicate_id", row=clip.row))
        else:
            first[key] = clip
    return problems


def speaker_problems(rows: list[RawRow]) -> list[Problem]:
    """Speaker names of an input that names several speakers (one name, whatever its form, is one voice as before):
    every row names one, each name is a valid speaker id once lower-cased (a warning says so), and two spellings
    that meet in one lower-cased name are refused (they would be one speaker of the export)."""
    given = sorted({raw.speaker for raw in rows if raw.speaker})
    if len(given) < 2:
        return []
    problems, spellings = [], {}
    for name in given:
        spellings.setdefault(speaker_key(name), []).append(name)
    for index, raw in enumerate(rows):
        at = (raw.file, raw.line, "speaker")
        if not raw.speaker:
            message = f"missing: the other rows name {len(given)} speakers, so every row must name its speaker"
            problems.append(Problem(*at, message, "missing_speaker", row=index))
            continue
        key = speaker_key(raw.speaker)
        reason = speaker_name_problem(key)
        if reason is not None:
            message = f"{raw.speaker!r} cannot be a speaker name: {reason}"
            problems.append(Problem(*at, message, "bad_speaker", row=index))
        elif len(spellings[key]) > 1:
            names = " and ".join(repr(n) for n in spellings[key])
            message = f"{names} are one speaker {key!r} once lower-cased (upstream's lookup); use one spelling"
            problems.append(Problem(*at, message, "speaker_collision", row=index))
        elif key != raw.speaker:
            message = f"speaker {raw.speaker!r} stored as {key!r} (speakers are looked up lower-cased)"
            problems.append(Problem(*at, message, "speaker_lowercased", fixable=True, row=index))
    return problems


def rate_outliers(clips: list[Clip], factor: float) -> list[Problem]:
    """Warn on clips whose speech rate is far from the median of the clips of their language: usually a transcript
    of another clip. Words are counted as every rate counts them (``languages.count_words``: numbers as spoken, one
    per CJK character or Hangul syllable), and each clip is compared with clips of its own language only, since a
    character of Chinese and a word of English are not the same unit: the factor is a ratio within one language."""
    if not factor:
        return []
    by_language: dict[str, list[Clip]] = {}
    for clip in clips:
        by_language.setdefault(resolve_language(clip.language).code, []).append(clip)
    problems = []
    for own in by_language.values():
        if len(own) < RATE_CHECK_MIN_CLIPS:
            continue
        rates = {clip.id: clip.words / clip.speech_s for clip in own}
        median = statistics.median(rates.values())
        for clip in own:
            ratio = rates[clip.id] / median
            if ratio > factor or ratio < 1 / factor:
                message = (f"{rates[clip.id]:.2f} words/s is {ratio:.2f}x the median {median:.2f}"
                           f"{_of_language(clip, by_language)}: does the transcript match?")  # fmt: skip
                problems.append(Problem(clip.source_file, clip.source_line, "text", message, "speech_rate", True,
                                        clip.row))  # fmt: skip
    return sorted(problems, key=lambda problem: problem.row)


def _of_language(clip: Clip, by_language: dict[str, list[Clip]]) -> str:
    """The message's " of the english clips" where several languages were compared each with their own; else ""."""
    return f" of the {resolve_language(clip.language).name} clips" if len(by_language) > 1 else ""


def read_val_list(path: Path, known: set[str]) -> tuple[list[str], list[Problem]]:
    """Ids listed in ``path`` (one per line, ``#`` comments); unknown ids are errors."""
    if not path.is_file():
        return [], [Problem(str(path), None, "--val_list", "file not found", "bad_val_list")]
    ids, problems = [], []
    for line, content in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        value = content.split("#", 1)[0].strip()
        if not value:
            continue
        if value not in known:
            problems.append(Problem(str(path), line, "id", f"{value!r} is not an id of the input", "bad_val_list"))
        elif value not in ids:
            ids.append(value)
    return ids, problems


@dataclass(frozen=True)
class Reference:
    """A recording the speaker x-vector is computed from."""

    given: str
    path: Path


def check_references(
    rows: list[RawRow], opts: PrepareOptions, speaker: str | None = None
) -> tuple[list[Reference], list[Problem]]:
    """The reference recordings the x-vector will come from, checked like clips. Empty for a train-mean x-vector.
    ``speaker``: the rows are that speaker's, of an input of several (named in the messages)."""
    if opts.speaker_source == "train_mean":
        return [], []
    if opts.ref_audio is not None and speaker is not None:
        message = "one recording cannot be the x-vector of several speakers; give each speaker's rows a ref_audio"
        return [], [Problem("--ref_audio", None, None, message, "bad_option")]
    if opts.ref_audio is not None:
        places = {str(opts.ref_audio): ("--ref_audio", None, None, opts.ref_audio)}
    else:
        places = {}
        for raw in rows:
            if raw.ref_audio and raw.ref_audio not in places:
                places[raw.ref_audio] = (raw.file, raw.line, "ref_audio", raw.ref_audio_path)
    if not places and opts.speaker_source == "ref_audio":
        whose = "no row" if speaker is None else f"no row of speaker {speaker!r}"
        message = f"--speaker_source ref_audio, but {whose} has ref_audio and --ref_audio is not set"
        return [], [Problem("--speaker_source", None, None, message, "missing_ref_audio")]
    references, problems = [], []
    for given, (file, line, field, path) in places.items():
        facts, notes = probe_audio(path, opts)
        if facts is not None and facts.speech_s < opts.min_seconds:
            notes = [("too_short", f"too short: {facts.speech_s:.2f} s of speech in {path}", False)]
        kinds = {"missing_audio": "missing_ref_audio"}
        problems += [Problem(file, line, field, m, kinds.get(kind, kind), fixable) for kind, m, fixable in notes]
        references.append(Reference(given, path))
    if len(references) > 1:
        whose = "the x-vector" if speaker is None else f"speaker {speaker!r}'s x-vector"
        message = f"{len(references)} different ref_audio files: {whose} is the mean of theirs"
        problems.append(Problem(rows[0].file, None, "ref_audio", message, "several_references", fixable=True))
    return references, problems
