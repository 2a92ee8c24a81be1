"""``segment``: long recordings -> transcribed, filtered clips, a proofreading sheet and prepare's manifest.

Order of work (each step's result is cached under ``.work/``, so a re-run, or a run resumed after a kill, redoes
only what is missing, and gives byte-identical output):

1. check everything that can be checked without reading audio: options, inputs (every file must decode), the
   output folder, the language against the ASR model (loaded now: an English-only model with another language fails
   here, exit 2), the edited review sheet;
2. scan each recording (:mod:`~.scan`; cached by the file's sha256) and plan its cuts (:mod:`~.cuts`);
3. cut the clips out of one more streamed read (:mod:`~.clips`), written atomically, skipped when a ledger says
   they are already there;
4. measure each clip (:mod:`~.measure`; cached by the clip's bytes and the ASR settings);
5. decide statuses (:mod:`~.filters`), apply the sheet's edits, write clips.jsonl, review.csv, review.html, the
   summary and, last, the manifest: the folder holds a finished manifest exactly when ``train_raw.jsonl`` exists.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qwen_tts_lit.data.segment import outputs
from qwen_tts_lit.data.segment.clips import clip_wav, cut_clips
from qwen_tts_lit.data.segment.cuts import Cut, CutSettings, plan_cuts
from qwen_tts_lit.data.segment.decode import SourceInfo, find_recordings, probe, read_blocks
from qwen_tts_lit.data.segment.filters import DROP, KEEP, Evidence, FilterSettings, decide, word_across
from qwen_tts_lit.data.segment.measure import MeasureCache, asr_fingerprint, cut_key, measure_clip, measure_cut
from qwen_tts_lit.data.segment.page import review_page
from qwen_tts_lit.data.segment.request import SegmentRequest
from qwen_tts_lit.data.segment.scan import Scan, file_digest, scan, span_facts
from qwen_tts_lit.data.segment.sheet import SheetRow, deleted_rows, read_sheet, sheet_bytes
from qwen_tts_lit.data.segment.summary import build_summary, summary_bytes, summary_text
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_atomic
from qwen_tts_lit.languages import AUTO, QWEN_LANGUAGES, is_auto, language_code
from qwen_tts_lit.metrics import ASR, SpeakerSimilarity, SpeechDetector

FORMAT = "qwen_tts_lit.segment/v1"
REFERENCE_SECONDS = 60.0  # of --speaker_reference read for its embedding


@dataclass
class Recording:
    """One input and what the run knows about it."""

    id: str
    info: SourceInfo
    digest: str = ""
    scan: Scan | None = None
    cuts: list[Cut] = dataclasses.field(default_factory=list)

    def clip_id(self, index: int) -> str:
        return f"{self.id}_{index + 1:04d}"


def segment(request: SegmentRequest) -> dict:
    """Run everything (see the module docstring) and return the summary; ``request.output`` holds the results.

    Usable from a notebook: ``segment(SegmentRequest(input=["talk.mp3"], output="talk_clips"))``.
    """
    bad = request.check()
    if bad:
        raise UserError("\n".join(["bad option(s); nothing was written:", *(f"  {m}" for m in bad)]))
    recordings = _recordings(request.input, request.output)
    _check_output(request.output)
    asr = _load_asr(request)
    sheet_path = request.output / outputs.SHEET
    sheet = read_sheet(sheet_path) if sheet_path.is_file() else {}
    listed = _listed_clips(request.output) if sheet_path.is_file() else {}  # a deleted sheet starts a new one
    speaker = SpeakerSimilarity()
    reference = _reference_embedding(request.speaker_reference, speaker) if request.speaker_reference else None

    work = request.output / outputs.WORK_DIR
    _remove_temporaries(request.output)
    _scan_all(recordings, request, work)
    _check_sheet_matches(sheet, sheet_path, recordings)
    (request.output / outputs.MANIFEST).unlink(missing_ok=True)  # from here on the folder is not finished
    digests = _write_all_clips(recordings, request, work)
    measured, across = _measure_all(recordings, digests, request, asr, speaker, work)
    records = _records(recordings, digests, measured, across, request, asr.language, reference)
    deleted = _deleted(sheet, listed, records, sheet_path)
    records = [_apply_edit(record, sheet.get(record["id"]), record["id"] in deleted) for record in records]
    summary = build_summary([_recording_json(r) for r in recordings], records)
    _write_outputs(request, records, summary, asr.language)
    return summary


# ------------------------------------------------------------------------------------------------------ checks


def _recordings(inputs: tuple[Path, ...], output: Path) -> list[Recording]:
    found, problems = [], []
    for recording_id, path in find_recordings(inputs, skip=output):
        try:
            found.append(Recording(recording_id, probe(path)))
        except UserError as error:
            problems.append(str(error))
    if problems:
        raise UserError("\n".join([f"{len(problems)} input(s) cannot be read; nothing was written:", *problems]))
    return found


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: exists and is not a directory")
    ours = (output / outputs.WORK_DIR).is_dir() or (output / outputs.CONFIG).is_file()
    if output.is_dir() and any(output.iterdir()) and not ours:
        raise UserError(f"--output {output}: not empty and not an earlier segment output; choose a new or empty folder")


def _language(request: SegmentRequest) -> str | None:
    """The given language as an ISO code, checked against the ten Qwen3-TTS speaks; None to detect it."""
    if is_auto(request.language):
        return None
    code = language_code(request.language)
    if code not in QWEN_LANGUAGES:
        spoken = ", ".join(f"{c} ({n})" for c, n in QWEN_LANGUAGES.items())
        raise UserError(f"--language {request.language}: Qwen3-TTS does not speak it; it speaks {spoken}")
    return code


def _load_asr(request: SegmentRequest) -> ASR:
    """The ASR judge, loaded now so that a model that cannot be loaded, or cannot hear the language, fails at start."""
    language = _language(request)
    asr = ASR(request.asr, request.asr_device, request.asr_compute_type, request.asr_beam_size, language)
    name = request.asr or "tiny.en (the bundled default)"
    try:
        multilingual = asr.multilingual
    except Exception as error:  # faster-whisper/CTranslate2/hub errors: a name or path the user gave
        raise UserError(
            f"--asr {name}: cannot load this faster-whisper model ({type(error).__name__}: {error})"
        ) from error
    if not multilingual:
        if language not in (None, "en"):
            raise UserError(
                f"--language {request.language}: the ASR model {name} is English-only; pass --asr with a multilingual "
                "faster-whisper model, e.g. --asr large-v3 (downloaded on first use) or --asr PATH (a local model "
                "folder), to transcribe " + QWEN_LANGUAGES[language].capitalize()
            )
        asr.language = "en"  # an English-only model has nothing to detect
    return asr


def _reference_embedding(path: Path, speaker: SpeakerSimilarity) -> np.ndarray:
    info = probe(path)
    blocks, seconds = [], 0.0
    for block in read_blocks(info):
        blocks.append(block)
        seconds += len(block) / info.rate
        if seconds >= REFERENCE_SECONDS:
            break
    return speaker.embed(np.concatenate(blocks), info.rate)


def _edit_problem(row: SheetRow, sheet_path: Path, why: str) -> str:
    return f"{sheet_path}, line {row.line}: your edit of {row.id} cannot be applied: {why}"


def _check_sheet_matches(sheet: dict[str, SheetRow], sheet_path: Path, recordings: list[Recording]) -> None:
    """Every edited row of the sheet must still name a clip with the same bounds: edits are never dropped quietly."""
    bounds = {r.clip_id(i): (cut.start, cut.end) for r in recordings for i, cut in enumerate(r.cuts)}
    problems = []
    for row in sheet.values():
        if not row.edited:
            continue
        if row.id not in bounds:
            problems.append(_edit_problem(row, sheet_path, "no clip has this id now"))
        elif bounds[row.id] != (row.start, row.end):
            now = "{:.3f}-{:.3f}".format(*bounds[row.id])
            problems.append(
                _edit_problem(row, sheet_path, f"the clip is now {now} s, not {row.start:.3f}-{row.end:.3f}")
            )
    if problems:
        hint = ("the cutting options or the inputs changed since the sheet was written; run with the earlier ones, or "
                f"move {sheet_path.name} away to start a new sheet")  # fmt: skip
        raise UserError("\n".join([f"{len(problems)} edit(s) in the review sheet no longer match; {hint}:", *problems]))


# ------------------------------------------------------------------------------------------------------- work


def _progress(request: SegmentRequest, total: float, desc: str, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not request.progress, file=sys.stderr, leave=False)


def _advance(bar, seconds: float) -> None:
    """Move a bar in seconds of audio, never past its total: the total comes from the headers, and the decoded length
    of an mp3 runs past it (tqdm then warns "clamping frac to range [0, 1]" and shows 18.318/18.3)."""
    bar.update(max(0.0, min(round(seconds, 3), round(bar.total - bar.n, 3))))


def _cut_settings(request: SegmentRequest) -> CutSettings:
    return CutSettings(request.min_seconds, request.max_seconds, request.margin_seconds, request.min_pause_seconds,
                       request.max_inner_pause_seconds, request.vad_threshold)  # fmt: skip


def _scan_all(recordings: list[Recording], request: SegmentRequest, work: Path) -> None:
    detector = SpeechDetector(threshold=request.vad_threshold)
    total = sum(r.info.seconds for r in recordings)
    with _progress(request, round(total, 1), "scanning", "s") as bar:
        for recording in recordings:
            recording.digest = file_digest(recording.info.path)
            cache = work / "scan" / f"{recording.id}.scan"
            recording.scan = Scan.from_bytes(cache.read_bytes(), recording.digest) if cache.is_file() else None
            if recording.scan is None:
                recording.scan = scan(recording.info, detector.stream(), lambda s: _advance(bar, s))
                write_atomic(cache, recording.scan.to_bytes(recording.digest))
            else:
                _advance(bar, recording.info.seconds)
            s = recording.scan
            recording.cuts = plan_cuts(s.speech_prob, s.level_db, s.seconds, _cut_settings(request))


def _ledger(recording: Recording) -> dict:
    return {"digest": recording.digest, "cuts": [[c.start, c.end] for c in recording.cuts]}


def _ledger_holds(ledger_path: Path, recording: Recording, clips_dir: Path) -> dict[str, str] | None:
    """The clip digests of an earlier complete cut of this recording with these cuts, if every file is intact."""
    try:
        ledger = json.loads(ledger_path.read_text())
    except (OSError, ValueError):
        return None
    if {k: ledger.get(k) for k in ("digest", "cuts")} != _ledger(recording):
        return None
    digests = ledger.get("clips", {})
    for clip_id, digest in digests.items():
        path = clips_dir / f"{clip_id}.wav"
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return None
    return digests


def _write_all_clips(recordings: list[Recording], request: SegmentRequest, work: Path) -> dict[str, str]:
    clips_dir = request.output / outputs.CLIPS_DIR
    digests: dict[str, str] = {}
    pending = []
    for recording in recordings:
        found = _ledger_holds(work / "clips" / f"{recording.id}.json", recording, clips_dir)
        if found is None:
            pending.append(recording)
        else:
            digests |= found
    with _progress(request, round(sum(r.info.seconds for r in pending), 1), "cutting", "s") as bar:
        for recording in pending:
            written = {}
            for index, audio in cut_clips(recording.info, recording.cuts, lambda s: _advance(bar, s)):
                data = clip_wav(audio)
                path = clips_dir / f"{recording.clip_id(index)}.wav"
                if not path.is_file() or path.read_bytes() != data:
                    write_atomic(path, data)
                written[recording.clip_id(index)] = hashlib.sha256(data).hexdigest()
            ledger = _ledger(recording) | {"clips": written}
            write_atomic(work / "clips" / f"{recording.id}.json", json.dumps(ledger, indent=1) + "\n")
            digests |= written
    wanted = {f"{clip_id}.wav" for clip_id in digests}
    for path in clips_dir.glob("*.wav") if clips_dir.is_dir() else ():
        if path.name not in wanted:
            path.unlink()  # a clip of an earlier cut that no longer exists
    return digests


def _read_clip(request: SegmentRequest, clip_id: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    return sf.read(str(request.output / outputs.CLIPS_DIR / f"{clip_id}.wav"), dtype="float32")


def _measure_all(recordings, digests, request, asr: ASR, speaker: SpeakerSimilarity, work: Path):
    """(measurement by clip id, words across the forced cut after a clip by that clip's id), cached."""
    cache = MeasureCache(work / "measure", asr_fingerprint(asr))
    ids = [r.clip_id(i) for r in recordings for i in range(len(r.cuts))]
    forced = [(r.clip_id(i), r.clip_id(i + 1)) for r in recordings for i, cut in enumerate(r.cuts) if cut.forced_end]
    measured, across, fresh = {}, {}, 0
    with _progress(request, len(ids) + len(forced), "transcribing", "clip") as bar:
        for clip_id in ids:
            found = cache.get(digests[clip_id])
            if found is None:
                found = measure_clip(*_read_clip(request, clip_id), asr, speaker)
                cache.put(digests[clip_id], found)
                fresh += 1
            measured[clip_id] = found
            bar.update(1)
        for before, after in forced:  # the words heard across each cut made inside speech
            key = cut_key(digests[before], digests[after])
            found = cache.get(key)
            if found is None:
                (left, rate), (right, _) = _read_clip(request, before), _read_clip(request, after)
                found = measure_cut(left, right, rate, asr)
                cache.put(key, found)
                fresh += 1
            across[before] = found
            bar.update(1)
    if request.progress:
        reused = len(ids) + len(forced) - fresh
        print(f"transcripts: {reused} reused from {cache.folder}, {fresh} transcribed", file=sys.stderr)
    return measured, across


# --------------------------------------------------------------------------------------------------- decisions


def _filter_settings(request: SegmentRequest, language: str | None) -> FilterSettings:
    """``language``: the one the ASR was told (given, or English for an English-only model); None: detected."""
    return FilterSettings(
        request.min_seconds, request.margin_seconds, request.min_speaker_similarity, request.min_avg_logprob,
        request.max_no_speech_prob, request.max_compression_ratio, request.rate_factor, request.quiet_db,
        request.max_clipped_fraction, language,
    )  # fmt: skip


def _records(recordings, digests, measured, across, request, language, reference) -> list[dict]:
    """Every clip's record (clips.jsonl row) with the machine's verdict."""
    records, evidence = [], []
    for recording in recordings:
        for index, cut in enumerate(recording.cuts):
            clip_id = recording.clip_id(index)
            m = measured[clip_id]
            window = across.get(clip_id)
            crossing = word_across(window["words"], window["cut"]) if window else None
            facts = span_facts(recording.scan, cut.start, cut.end, request.vad_threshold)
            record = {
                "id": clip_id, "recording": recording.id, "source": str(recording.info.path),
                "start": cut.start, "end": cut.end, "seconds": round(cut.seconds, 3),
                "speech_start": cut.speech_start, "speech_end": cut.speech_end,
                "forced_start": cut.forced_start, "forced_end": cut.forced_end,
                "audio": f"{outputs.CLIPS_DIR}/{clip_id}.wav", "digest": digests[clip_id], **facts,
                "asr_text": m["text"], "words": m["words"], "avg_logprob": m["avg_logprob"],
                "no_speech_prob": m["no_speech_prob"], "compression_ratio": m["compression_ratio"],
                "language": m["language"], "language_probability": m["language_probability"],
                "word_across_end": crossing,
            }  # fmt: skip
            records.append(record)
            evidence.append(Evidence(
                clip_id, cut.seconds, cut.speech_end - cut.speech_start, facts["speech_seconds"], facts["level_db"],
                facts["clipped_fraction"], cut.forced_start, cut.forced_end, m["text"], tuple(map(tuple, m["words"])),
                m["avg_logprob"], m["no_speech_prob"], m["compression_ratio"], m["language"], digests[clip_id],
                np.asarray(m["embedding"], dtype=np.float32), crossing,
            ))  # fmt: skip
    verdicts = decide(evidence, _filter_settings(request, language), reference)
    for record, verdict in zip(records, verdicts, strict=True):
        record |= {
            "speaker_similarity": verdict.speaker_similarity,
            "words_per_second": verdict.words_per_second,
            "auto_status": verdict.status,
            "reasons": list(verdict.reasons),
            "notes": list(verdict.notes),
        }
    return records


def _deleted(sheet: dict[str, SheetRow], listed: dict, records: list[dict], sheet_path: Path) -> set[str]:
    """The clips whose row the user deleted from the sheet, said in one line."""
    deleted = deleted_rows(sheet, listed, {r["id"]: (r["start"], r["end"]) for r in records})
    if deleted:
        shown = ", ".join(deleted[:5]) + (f" and {len(deleted) - 5} more" if len(deleted) > 5 else "")
        print(f"segment: {sheet_path.name} has no row for {len(deleted)} clip(s) it listed ({shown}): a deleted row "
              "means drop; the new sheet lists them as drop (set keep there to use them)", file=sys.stderr)  # fmt: skip
    return set(deleted)


def _listed_clips(output: Path) -> dict[str, tuple[float, float]]:
    """id -> (start, end) of the clips the previous run wrote (clips.jsonl, written after review.csv)."""
    path = output / outputs.RECORDS
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["id"]: (row["start"], row["end"]) for row in rows}


def _apply_edit(record: dict, row: SheetRow | None, deleted: bool = False) -> dict:
    """The record with the sheet's edits (when its row still matches the clip) over the machine's values; a clip
    whose row the user deleted is dropped (an edit of its status, so the next sheet keeps it as drop)."""
    edit = row if row is not None and (row.start, row.end) == (record["start"], record["end"]) else None
    status_edited = (record["auto_status"] != DROP) if deleted else (edit is not None and edit.status_edited)
    text_edited = edit is not None and edit.text_edited
    status = DROP if deleted else edit.status if status_edited else record["auto_status"]
    return record | {
        "status": status,
        "text": edit.text if text_edited else record["asr_text"],
        "status_edited": status_edited,
        "text_edited": text_edited,
    }


# ------------------------------------------------------------------------------------------------------ outputs


def _recording_json(recording: Recording) -> dict:
    return {"id": recording.id, "source": str(recording.info.path), "seconds": round(recording.scan.seconds, 3),
            "digest": recording.digest}  # fmt: skip


def _manifest_row(record: dict, language: str | None, speaker: str | None) -> dict:
    code = language or record["language"]
    row = {"audio": record["audio"], "text": record["text"], "language": QWEN_LANGUAGES.get(code, AUTO),
           "id": record["id"]}  # fmt: skip
    return row | ({"speaker": speaker} if speaker else {})


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()


def _write_outputs(request: SegmentRequest, records: list[dict], summary: dict, language: str | None) -> None:
    config = {
        "format": FORMAT,
        "options": {k: v for k, v in _request_json(request).items() if k not in ("output", "progress")},
    }
    kept = [_manifest_row(r, language, request.speaker) for r in records if r["status"] == KEEP]
    files = {
        outputs.CONFIG: (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode(),
        outputs.SHEET: sheet_bytes(records),
        outputs.RECORDS: _jsonl(records),  # after the sheet: a clip it lists was in the sheet (deleted_rows)
        outputs.PAGE: review_page(records, summary).encode(),
        outputs.SUMMARY_JSON: summary_bytes(summary),
        outputs.SUMMARY_TXT: summary_text(summary).encode(),
        outputs.MANIFEST: _jsonl(kept),  # last: its presence means the folder is finished
    }
    for name, data in files.items():
        write_atomic(request.output / name, data)


def _request_json(request: SegmentRequest) -> dict:
    values = dataclasses.asdict(request)
    return {k: [str(p) for p in v] if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v
            for k, v in values.items()}  # fmt: skip


def _remove_temporaries(output: Path) -> None:
    """Temporary files a killed run left behind (``files.write_atomic``'s ``.NAME.PID.tmp``): never a result."""
    if output.is_dir():
        for path in output.rglob(".*.tmp"):
            path.unlink(missing_ok=True)
