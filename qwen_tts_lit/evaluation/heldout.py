"""The held-out sentences an evaluation speaks, and what their real recordings give once per run (speech seconds,
length, the reference voice, the language of a sentence that names none, how natural they sound); copies of the
recordings go into the run folder so the report is self-contained."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.files import copy_file
from qwen_tts_lit.languages import AUTO, SpokenLanguage, is_auto, resolve_language
from qwen_tts_lit.metrics import articulated_seconds, mean_embedding, span_seconds
from qwen_tts_lit.runs.folder import REAL_DIR


@dataclass(frozen=True)
class HeldOut:
    """One held-out sentence and its real recording."""

    utt_id: str
    text: str
    audio: Path
    language: str = AUTO  # as the manifest gives it; RealRecordings.language_of says how it is scored
    speaker: str | None = None  # a run of several speakers: who says it (its x-vector speaks, its recordings judge)


def read_heldout(manifest: str | os.PathLike, limit: int | None = None) -> list[HeldOut]:
    """Rows of a JSONL manifest with ``text`` and ``audio`` (relative to the manifest's folder), optional ``id``,
    ``language`` and ``speaker``: a prepared ``val.jsonl`` or a list like ``data/demo/heldout.jsonl``. First
    ``limit`` rows, or with speakers the first ``limit`` rows of each speaker (every voice is evaluated)."""
    path = Path(manifest)
    if not path.is_file():
        raise UserError(f"{path}: held-out manifest not found")
    items = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            audio = path.parent / row["audio"]
            text = row["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise UserError(f"{path}, line {line_no}: needs JSON with 'text' and 'audio' ({error})") from error
        if not audio.is_file():
            raise UserError(f"{path}, line {line_no}, field audio: {audio} not found")
        items.append(HeldOut(str(row.get("id", audio.stem)), text, audio, row.get("language", AUTO),
                             row.get("speaker")))  # fmt: skip
    if not items:
        raise UserError(f"{path}: no held-out rows")
    if not limit:
        return items
    seen: dict[str | None, int] = {}
    kept = []
    for item in items:  # one speaker (None): the first `limit` rows, as always
        seen[item.speaker] = seen.get(item.speaker, 0) + 1
        kept += [item] if seen[item.speaker] <= limit else []
    return kept


@dataclass
class RealRecordings:
    """What the real recordings give once per run: speech seconds, articulated seconds, frames and the voice."""

    items: list[HeldOut]
    speech_seconds: dict[str, float]  # VAD speech seconds (the cross-check rate's reference)
    seconds: dict[str, float]
    voice: np.ndarray  # mean resemblyzer embedding of the real recordings
    copies: dict[str, str] = field(default_factory=dict)  # utt_id -> path of its copy, relative to the run folder
    voices: dict[str, np.ndarray] = field(default_factory=dict)  # several speakers: each one's mean embedding
    articulated: dict[str, float] = field(default_factory=dict)  # ASR words within VAD speech; empty: ASR off
    languages: dict[str, SpokenLanguage] = field(default_factory=dict)  # utt_id -> how its clips are scored
    naturalness: dict[str, dict[str, float]] = field(default_factory=dict)  # utt_id -> each naturalness judge's

    def language_of(self, item: HeldOut) -> SpokenLanguage:
        """The language every clip of ``item`` is transcribed, counted and scored in, and what its row records:
        resolved once per run by :func:`measure_real` (for a sentence that names none, the language the ASR judge
        detected in its real recording); a sentence that names its language needs no judge to say so."""
        return self.languages.get(item.utt_id) or resolve_language(item.language)

    def voice_for(self, item: HeldOut) -> np.ndarray:
        """The voice a clip of ``item`` should sound like: its speaker's real recordings, or all of them."""
        return self.voices[item.speaker] if item.speaker is not None else self.voice


def measure_real(items: Sequence[HeldOut], judges: Judges, run_dir: Path | None = None) -> RealRecordings:
    """Measure every real recording once (the judges take all recordings of one sample rate per call, the ASR those
    of one language too); a recording without detectable speech, or (ASR on) without a word the ASR can time, is
    bad evaluation data. A sentence without a language ("auto") is resolved here, once for the run
    (``languages.resolve_language``): the ASR judge's ``asr_language`` when it has one, else the language it detects
    in the real recording (a human's speech of the sentence, which a failed synthesis cannot change), else English.
    With ``run_dir``, the recordings are also copied into it, so the listening report is self-contained."""
    clips = {}
    for item in items:
        wav, rate = sf.read(str(item.audio), dtype="float32", always_2d=True)
        clips[item.utt_id] = (wav.mean(axis=1), rate)
    segments, embeddings, words, detected, natural = {}, {}, {}, {}, {}
    spoken = {item.utt_id: "" if is_auto(item.language) else item.language for item in items}
    for rate in sorted({rate for _, rate in clips.values()}):
        ids = [utt_id for utt_id, (_, r) in clips.items() if r == rate]
        wavs = [clips[utt_id][0] for utt_id in ids]
        segments |= dict(zip(ids, judges.vad.segments_batch(wavs, rate), strict=True))
        embeddings |= dict(zip(ids, judges.speaker.embed_batch(wavs, rate), strict=True))
        for judge in judges.naturalness:  # what a cell's naturalness is read against
            for utt_id, scores in zip(ids, judge.score_batch(wavs, rate), strict=True):
                natural.setdefault(utt_id, {}).update(scores)
        for language in dict.fromkeys(spoken[i] for i in ids) if judges.asr is not None else ():
            own = [i for i in ids if spoken[i] == language]
            heard = judges.asr.transcripts_batch([clips[i][0] for i in own], rate, language)
            words |= {i: transcript.words for i, transcript in zip(own, heard, strict=True)}
            detected |= {i: transcript.language for i, transcript in zip(own, heard, strict=True)}
    told = judges.asr.language if judges.asr is not None else None
    languages = {item.utt_id: resolve_language(item.language, detected.get(item.utt_id, ""), told) for item in items}
    speech = {utt_id: span_seconds(own) for utt_id, own in segments.items()}
    articulated = {utt_id: articulated_seconds(own, segments[utt_id]) for utt_id, own in words.items()}
    for item in items:
        if speech[item.utt_id] <= 0:
            raise UserError(f"{item.audio}: held-out recording '{item.utt_id}' has no detectable speech")
        if judges.asr is not None and articulated[item.utt_id] <= 0:
            language = languages[item.utt_id]
            raise UserError(f"{item.audio}: the ASR judge heard no words in held-out recording '{item.utt_id}' "
                            f"(language {language.code}, {language.source}): its speech rate cannot be measured "
                            "(check the recording, its language, and judges.asr_model)")  # fmt: skip
    seconds = {utt_id: len(wav) / rate for utt_id, (wav, rate) in clips.items()}
    real = RealRecordings(list(items), speech, seconds, mean_embedding([embeddings[i.utt_id] for i in items]),
                          articulated=articulated, languages=languages, naturalness=natural)  # fmt: skip
    for name in sorted({item.speaker for item in items if item.speaker is not None}):
        real.voices[name] = mean_embedding([embeddings[i.utt_id] for i in items if i.speaker == name])
    if run_dir is not None:
        _copy_into_run(real, run_dir)
    return real


def _copy_into_run(real: RealRecordings, run_dir: Path) -> None:
    """Copy the real recordings into the run folder (once) and note where each copy is."""
    target = run_dir / REAL_DIR
    target.mkdir(parents=True, exist_ok=True)
    for item in real.items:
        destination = target / f"{item.utt_id}{item.audio.suffix}"
        if not destination.exists():
            copy_file(item.audio, destination)  # atomic: a half copy would pass the exists() test next time
        real.copies[item.utt_id] = str(destination.relative_to(run_dir))


def heldout_from_rows(rows: list[dict], run_dir: Path) -> list[HeldOut]:
    """The held-out sentences an earlier evaluation used, from its rows (as ``runs.records.read_rows`` gives them)
    and the recordings copied into the run: each sentence as written (``heldout_text``), which the Synthesizer
    cleans again as it did then."""
    items: dict[str, HeldOut] = {}
    for row in rows:
        if row["utt_id"] not in items and row.get("real_wav"):
            audio = run_dir / row["real_wav"]
            if not audio.is_file():
                raise UserError(f"{audio}: real recording of '{row['utt_id']}' missing from the run folder")
            # A language the evaluation resolved is resolved again, by this evaluation's judges.
            given = row.get("language", AUTO) if row.get("language_source", "given") == "given" else AUTO
            items[row["utt_id"]] = HeldOut(row["utt_id"], row["heldout_text"], audio, given, row.get("speaker"))
    return sorted(items.values(), key=lambda item: item.utt_id)
