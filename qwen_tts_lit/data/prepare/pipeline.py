"""``prepare``: raw clips + transcripts -> a checked, cleaned, codec-coded dataset, in one pass before any training.

Two phases. :func:`check_input` reads and measures every row and collects every problem; it writes nothing, and
raises :class:`~qwen_tts_lit.errors.UserError` (exit code 2) listing them all when any is an error. Only then does
:func:`write_dataset` load the model and write DIR:

    DIR/audio/<id>.wav        cleaned 24 kHz mono 16-bit PCM, a whole number of 80 ms codec frames
    DIR/codes/<id>.npy        (num_frames, 16) int64 codes of exactly that audio
    DIR/<speaker file>        the x-vector (runs.speaker: tensor ``xvector``, (D,) float32) + metadata ``source``;
                              with several speakers one x-vector per speaker (``xvectors`` (S, D), names in order)
    DIR/train.jsonl, val.jsonl, report.json, report.txt, prepare_config.json
    DIR/.cache/codes/         codes by hash of (audio, tokenizer): a re-run or resumed run encodes only what is new

An input whose rows name several speakers (a ``speaker`` field, or a folder per speaker) is checked per speaker
(each needs clips to train on and held-out clips; a speaker with little speech is warned about), split per speaker,
and its manifest rows carry their ``speaker``; an input of one speaker is written exactly as before.

Every file is written under a temporary name and renamed. ``train.jsonl`` is removed first and written last, so
DIR holds a finished dataset exactly when ``train.jsonl`` exists.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qwen_tts_lit.audio import decoder_quiet
from qwen_tts_lit.data.prepare import codec
from qwen_tts_lit.data.prepare.audio import FRAME_SAMPLES, CleanAudio, clean_audio, pcm16_to_float
from qwen_tts_lit.data.prepare.checks import Clip, Reference, check_references, check_rows, read_val_list
from qwen_tts_lit.data.prepare.options import PrepareOptions
from qwen_tts_lit.data.prepare.problems import UNPARSED, Problem, format_problems
from qwen_tts_lit.data.prepare.report import build_report, report_bytes, summary_text
from qwen_tts_lit.data.prepare.sources import detect_format, read_rows
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import remove_temporaries, unwritable, wav_bytes, write_atomic
from qwen_tts_lit.runs.speaker import SPEAKER_FILE, speaker_bytes, speaker_key, speakers_bytes
from qwen_tts_lit.upstream.loading import load_config, resolve_device, resolve_model_source, supported_languages

FORMAT = "qwen_tts_lit.prepared/v1"
CACHE_DIR = ".cache"
# Removed at the start of a write and written at its end; train.jsonl, the file the trainer opens, is last.
OUTPUT_FILES = ("train.jsonl", "prepare_config.json", "val.jsonl", "report.txt", "report.json", SPEAKER_FILE)
# Under this much speech a speaker of a several-speaker input is warned about (the seed guide asks 10-30 min for one
# voice; a few minutes still give a recognisable but unstable voice).
SPEAKER_WARN_MINUTES = 3.0


@dataclass
class Plan:
    """Everything the write phase needs, decided while nothing had been written."""

    clips: list[Clip]
    val_ids: set[str]
    references: list[Reference]
    warnings: list[Problem]
    dropped: list[Problem]
    rows: int
    input_format: str
    speaker: str | None
    hidden_size: int
    speaker_references: dict[str, list[Reference]] | None = None
    """Several speakers: each one's reference recordings (empty: the mean of its train clips). None: one speaker."""


def prepare(options: PrepareOptions) -> Path:
    """Check everything, then write the prepared dataset into ``options.output``; return its path.

    Raises ``UserError`` listing every problem (file, line, field, reason) when the input is not usable; DIR is
    then left untouched. Usable from a notebook: ``prepare(PrepareOptions(input=..., output=..., model=...))``.
    """
    options = replace(options, model=resolve_model_source(options.model))  # "tiny": the cached tiny checkpoint
    plan = check_input(options)
    model = codec.load_model(options.model, resolve_device(options.device))
    rate = model.model.speech_tokenizer.get_input_sample_rate()
    if rate != options.sample_rate:
        raise UserError(f"--sample_rate {options.sample_rate}: the speech tokenizer of {options.model} reads {rate} Hz")
    return write_dataset(plan, model, options)


def _log(options: PrepareOptions, message: str) -> None:
    if options.progress:
        print(message, file=sys.stderr)


def _progress(options: PrepareOptions, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="clip", disable=not options.progress, file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- check phase


def _output_problem(output: Path) -> Problem | None:
    if output.exists() and not output.is_dir():
        return Problem(str(output), None, "--output", "exists and is not a directory", "bad_output")
    message = unwritable(output)
    if message:
        return Problem(str(output), None, "--output", message, "bad_output")
    ours = (output / "prepare_config.json").is_file() or (output / CACHE_DIR).is_dir()
    if output.is_dir() and any(output.iterdir()) and not ours:
        message = "is not empty and holds no earlier prepare output; choose a new or empty directory"
        return Problem(str(output), None, "--output", message, "bad_output")
    return None


def _model_problems(options: PrepareOptions) -> tuple[object | None, list[Problem]]:
    try:
        config = load_config(options.model)
    except (OSError, ValueError) as error:
        return None, [
            Problem(options.model, None, "--model", f"cannot read the checkpoint config: {error}", "bad_model")
        ]
    problems = []
    if config.tts_model_type != "base":
        message = f"is a {config.tts_model_type!r} checkpoint; prepare needs a Base one (it has the speaker encoder)"
        problems.append(Problem(options.model, None, "--model", message, "bad_model"))
    elif config.speaker_encoder_config.sample_rate != options.sample_rate:
        message = f"the model works at {config.speaker_encoder_config.sample_rate} Hz"
        problems.append(Problem("--sample_rate", None, None, message, "bad_option"))
    return config, problems


def split_val(ids: list[str], fraction: float, seed: int) -> set[str]:
    """Held-out ids: the ``round(n * fraction)`` ids (at least 1, at most n - 1) of smallest sha256(seed:id).

    A hash rank, not a shuffle: the split does not depend on row order or input format, and adding clips later
    moves no existing clip between train and val.
    """
    if fraction <= 0 or len(ids) < 2:
        return set()
    count = min(len(ids) - 1, max(1, round(len(ids) * fraction)))
    return set(sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:count])


def _resolve(problems: list[Problem], options: PrepareOptions) -> tuple[list[Problem], list[Problem], set[int]]:
    """Split problems into (warnings kept, errors of dropped rows, dropped row indices); raise on fatal errors."""
    errors = [p for p in problems if not p.fixable or options.strict]
    fatal = [p for p in errors if p.row is None or not options.skip_bad]
    if fatal:
        strict = " (--strict: every automatic fix counts as an error)" if options.strict else ""
        hint = "Fix them" + ("" if options.skip_bad else ", or pass --skip_bad true to drop the rows that have them")
        header = f"{len(fatal)} problem(s) in the input{strict}; nothing was written. {hint}:"
        raise UserError(format_problems(fatal, header))
    dropped_rows = {p.row for p in errors}
    warnings = [p for p in problems if p.fixable and not options.strict and p.row not in dropped_rows]
    return warnings, errors, dropped_rows - {UNPARSED}


def check_input(options: PrepareOptions) -> Plan:
    """The check phase: read and measure every row, collect every problem, write nothing."""
    bad_options = options.check()
    if bad_options:
        raise UserError("\n".join(["bad option(s); nothing was written:", *(f"  {m}" for m in bad_options)]))
    config, problems = _model_problems(options)
    output_problem = _output_problem(options.output)
    problems += [output_problem] if output_problem else []
    rows, found = read_rows(options.input, options.input_format)
    problems += found
    languages = supported_languages(config) if config is not None else None
    with _progress(options, len(rows), "checking") as bar:
        clips, found = check_rows(rows, options, languages, bar)
    several = len({raw.speaker for raw in rows if raw.speaker}) > 1
    if several:
        speaker_references, ref_problems = _speaker_references(rows, options)
        references = []
    else:
        speaker_references, (references, ref_problems) = None, check_references(rows, options)
    problems += found + ref_problems
    known = {clip.id for clip in clips}
    val_ids, val_problems = read_val_list(options.val_list, known) if options.val_list else ([], [])
    warnings, dropped, dropped_rows = _resolve(problems + val_problems, options)
    clips = [clip for clip in clips if clip.row not in dropped_rows]
    if not clips:
        raise UserError(f"{options.input}: no usable rows; nothing was written")
    if several:
        for clip in clips:
            clip.speaker = speaker_key(clip.speaker)
        kept = {clip.speaker for clip in clips}
        for name in sorted(set(speaker_references) - kept):  # --skip_bad dropped every row of this speaker
            message = f"speaker {name!r}: every row was dropped (--skip_bad); the model will not have this voice"
            warnings.append(Problem(str(options.input), None, "speaker", message, "speaker_dropped", True))
        speaker_references = {name: refs for name, refs in speaker_references.items() if name in kept}
    if not options.val_list:
        val_ids = _split(clips, options, several)
    train = [clip for clip in clips if clip.id not in set(val_ids)]
    if not train:
        raise UserError(f"{options.val_list}: every usable row is held out for validation; nothing is left to train on")
    if several:
        _check_per_speaker(clips, set(val_ids), options)
        warnings += _little_data(clips, options)
    fmt = options.input_format if options.input_format != "auto" else detect_format(options.input) or "?"
    speakers = Counter(clip.speaker for clip in clips if clip.speaker)
    speaker = speakers.most_common(1)[0][0] if speakers and not several else None
    return Plan(clips, set(val_ids), references, warnings, dropped, len(rows), fmt, speaker,
                config.talker_config.hidden_size, speaker_references)  # fmt: skip


def _speaker_references(rows, options: PrepareOptions) -> tuple[dict[str, list[Reference]], list[Problem]]:
    """Each speaker's reference recordings, from its own rows (``speaker_source`` decided per speaker)."""
    by_speaker: dict[str, list] = {}
    for raw in rows:
        if raw.speaker:
            by_speaker.setdefault(speaker_key(raw.speaker), []).append(raw)
    found, problems = {}, []
    for name in sorted(by_speaker):
        found[name], more = check_references(by_speaker[name], options, name)
        problems += [p for p in more if p not in problems]  # --ref_audio is refused once, not once per speaker
    return found, problems


def _split(clips: list[Clip], options: PrepareOptions, several: bool) -> set[str]:
    """The held-out ids: over all clips for one speaker (as always), within each speaker for several, so that
    every voice is evaluated on its own sentences."""
    if not several:
        return split_val([clip.id for clip in clips], options.val_fraction, options.seed)
    ids: dict[str, list[str]] = {}
    for clip in clips:
        ids.setdefault(clip.speaker, []).append(clip.id)
    return set().union(*(split_val(group, options.val_fraction, options.seed) for group in ids.values()))


def _check_per_speaker(clips: list[Clip], val_ids: set[str], options: PrepareOptions) -> None:
    """Every speaker needs clips to train on, and held-out clips unless evaluation is off (--val_fraction 0)."""
    counts: dict[str, list[int]] = {}
    for clip in clips:
        counts.setdefault(clip.speaker, [0, 0])[clip.id in val_ids] += 1
    need_val = options.val_fraction > 0 or options.val_list is not None
    bad = []
    for name, (train, val) in sorted(counts.items()):
        if not train or (need_val and not val):
            lacking = "no clip to train on" if not train else "no held-out clip to evaluate the voice on"
            bad.append(f"  speaker {name!r}: {train} train + {val} held-out clip(s): {lacking}")
    if bad:
        hint = "give each speaker at least 2 usable clips" + (
            " and list some of each speaker's ids in --val_list" if options.val_list else ""
        )
        raise UserError("\n".join([f"{len(bad)} speaker(s) cannot be trained and evaluated; {hint}:", *bad]))


def _little_data(clips: list[Clip], options: PrepareOptions) -> list[Problem]:
    speech: dict[str, float] = {}
    for clip in clips:
        speech[clip.speaker] = speech.get(clip.speaker, 0.0) + clip.speech_s
    return [
        Problem(str(options.input), None, "speaker", f"speaker {name!r} has {seconds / 60:.2f} min of speech "
                f"(under {SPEAKER_WARN_MINUTES:g} min the voice tends to be unstable)", "little_speaker_data", True)
        for name, seconds in sorted(speech.items()) if seconds < SPEAKER_WARN_MINUTES * 60
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------------- write phase


def write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds these bytes (a re-run touches nothing)."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    write_atomic(path, data)


def read_clean(path: Path, options: PrepareOptions, trailing_silence_s: float, frame: int) -> CleanAudio:
    import soundfile as sf

    with decoder_quiet():  # libmpg123's own lines about mp3 frames it decodes anyway
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    cleaned = clean_audio(
        data, rate, target_rate=options.sample_rate, threshold_db=options.trim_threshold_db,
        margin_s=options.trim_margin_s, trailing_silence_s=trailing_silence_s, frame=frame,
    )  # fmt: skip
    if cleaned is None:  # the check phase found speech in this very file
        raise UserError(f"{path}: changed while prepare was running (it is silent now)")
    return cleaned


def _prepare_dirs(output: Path) -> tuple[Path, Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    (output / CACHE_DIR).mkdir(exist_ok=True)  # marks DIR as a prepare output before anything else is written
    for name in OUTPUT_FILES:
        (output / name).unlink(missing_ok=True)
    dirs = output / "audio", output / "codes", output / CACHE_DIR / "codes"
    for directory in (output, *dirs):
        directory.mkdir(exist_ok=True)
        remove_temporaries(directory)  # from a killed run
    return dirs


def _remove_strays(directory: Path, keep: set[str]) -> None:
    """Files of clips that an earlier run of a different input wrote, so DIR holds exactly the listed clips."""
    for path in directory.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()


def _entry(clip: Clip, pcm: np.ndarray, speech_samples: int, rate: int, several: bool) -> dict:
    speaker = {"speaker": clip.speaker} if several else {}  # one speaker: rows as they always were
    return {
        "id": clip.id,
        "text": clip.text,
        "language": clip.language,
        **speaker,
        "audio": f"audio/{clip.id}.wav",
        "codes": f"codes/{clip.id}.npy",
        "num_frames": len(pcm) // FRAME_SAMPLES,
        "duration_s": len(pcm) / rate,
        "speech_samples": speech_samples,  # the recording as recorded, before the appended silence
        "source_audio": clip.source_audio,
        "source_line": clip.source_line,
    }


def encode_clips(plan: Plan, model, options: PrepareOptions, dirs: tuple, fingerprint: str) -> tuple[dict, dict]:
    """Clean, write and encode every clip in length-sorted batches; return (manifest entries, train x-vectors)."""
    audio_dir, codes_dir, cache_dir = dirs
    speech_tokenizer, rate = model.model.speech_tokenizer, options.sample_rate
    cache = codec.CodeCache(cache_dir, fingerprint)
    if plan.speaker_references is None:
        need_xvector = {clip.id: not plan.references for clip in plan.clips}
    else:  # a speaker without a reference recording gets the mean of its train clips
        need_xvector = {clip.id: not plan.speaker_references.get(clip.speaker) for clip in plan.clips}
    entries, xvectors, encoded = {}, {}, 0
    order = sorted(plan.clips, key=lambda clip: (clip.speech_s, clip.id))
    with _progress(options, len(order), "encoding") as bar:
        for start in range(0, len(order), options.batch_size):
            batch = order[start : start + options.batch_size]
            cleaned = [
                read_clean(clip.audio_path, options, options.trailing_silence_s, FRAME_SAMPLES) for clip in batch
            ]
            keys = [cache.key(item.pcm) for item in cleaned]
            codes = [cache.get(key) for key in keys]
            missing = [i for i, found in enumerate(codes) if found is None]
            if missing:
                for i, new in zip(
                    missing, codec.encode(speech_tokenizer, [cleaned[i].pcm for i in missing], rate), strict=True
                ):
                    cache.put(keys[i], new)
                    codes[i] = new
                encoded += len(missing)
            for clip, item, clip_codes in zip(batch, cleaned, codes, strict=True):
                entry = _entry(clip, item.pcm, item.speech_samples, rate, plan.speaker_references is not None)
                if clip_codes.shape[0] != entry["num_frames"]:
                    raise RuntimeError(f"{clip.id}: {clip_codes.shape[0]} frames for {entry['num_frames']} of audio")
                write_if_changed(audio_dir / f"{clip.id}.wav", wav_bytes(item.pcm, rate))
                write_if_changed(codes_dir / f"{clip.id}.npy", codec.npy_bytes(clip_codes))
                entries[clip.id] = entry
                if need_xvector[clip.id] and clip.id not in plan.val_ids:
                    speech = pcm16_to_float(item.pcm[: item.speech_samples])
                    xvectors[clip.id] = codec.speaker_embedding(model, speech, rate)
            bar.update(len(batch))
    _log(options, f"codes: {len(order) - encoded} clip(s) reused from {cache_dir}, {encoded} encoded")
    return entries, xvectors


def speaker_tensor(
    references: list[Reference], model, options: PrepareOptions, train_xvectors: dict
) -> tuple[np.ndarray, str]:
    """The x-vector and its provenance: one reference, the mean over several, or the mean over train clips."""
    if references:
        vectors = []
        for reference in references:
            cleaned = read_clean(reference.path, options, trailing_silence_s=0.0, frame=1)
            speech = pcm16_to_float(cleaned.pcm[: cleaned.speech_samples])
            vectors.append(codec.speaker_embedding(model, speech, options.sample_rate))
        source = "ref_audio:" + ",".join(reference.given for reference in references)
        source = source if len(vectors) == 1 else "mean_of_" + source
    else:
        vectors, source = [train_xvectors[key] for key in sorted(train_xvectors)], "mean_of_train"
    # Sum in float64 in id order: the mean is the same bytes whatever order the clips were encoded in.
    return np.mean(np.stack(vectors).astype(np.float64), axis=0).astype(np.float32), source


def speaker_vectors(plan: Plan, model, options: PrepareOptions, train_xvectors: dict) -> dict[str, tuple]:
    """Several speakers: name -> (x-vector, source), each from its own reference or its own train clips."""
    speaker_of = {clip.id: clip.speaker for clip in plan.clips}
    found = {}
    for name, references in sorted(plan.speaker_references.items()):
        own = {key: vector for key, vector in train_xvectors.items() if speaker_of[key] == name}
        found[name] = speaker_tensor(references, model, options, own)
    return found


def _speaker_file(plan: Plan, model, options: PrepareOptions, train_xvectors: dict) -> tuple[bytes, dict, dict]:
    """(the x-vector file, the report's ``speaker`` record, {name: x-vector source} with several speakers or {})."""
    base = {"model": options.model}
    if plan.speaker_references is None:
        xvector, source = speaker_tensor(plan.references, model, options, train_xvectors)
        vectors = {plan.speaker: xvector}
        metadata = {"format": "qwen_tts_lit.speaker/v1", "source": source, **base}
        metadata |= {"speaker": plan.speaker} if plan.speaker else {}
        data, sources = speaker_bytes(xvector, metadata), {}
        info = {"source": source, "dim": int(xvector.shape[0]), "speaker": plan.speaker}
    else:
        found = speaker_vectors(plan, model, options, train_xvectors)
        vectors = {name: vector for name, (vector, _) in found.items()}
        sources = {name: source for name, (_, source) in found.items()}
        data = speakers_bytes(vectors, {"sources": json.dumps(sources, ensure_ascii=False), **base})
        info = {"source": "per_speaker", "dim": plan.hidden_size, "speaker": None}
    for name, vector in vectors.items():
        if vector.shape != (plan.hidden_size,):
            raise RuntimeError(f"x-vector of {name} of shape {vector.shape}, expected ({plan.hidden_size},)")
    return data, info, sources


def _jsonl_bytes(entries: list[dict]) -> bytes:
    return "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries).encode()


def write_dataset(plan: Plan, model, options: PrepareOptions) -> Path:
    """The write phase (after :func:`check_input`): audio, codes, x-vector, manifests, report. Returns DIR."""
    output = options.output
    dirs = _prepare_dirs(output)
    fingerprint = codec.tokenizer_fingerprint(model.model.speech_tokenizer)
    entries, train_xvectors = encode_clips(plan, model, options, dirs, fingerprint)
    speaker_file, speaker_info, per_speaker = _speaker_file(plan, model, options, train_xvectors)
    splits = {
        "train": [entries[key] for key in sorted(entries) if key not in plan.val_ids],
        "val": [entries[key] for key in sorted(entries) if key in plan.val_ids],
    }
    speech_s = {clip.id: clip.speech_s for clip in plan.clips}
    report = build_report(
        input_path=str(options.input), input_format=plan.input_format, rows=plan.rows, entries=splits,
        speech_s=speech_s, words={clip.id: clip.words for clip in plan.clips},
        speaker=speaker_info, warnings=plan.warnings, dropped=plan.dropped, speakers=per_speaker,
    )  # fmt: skip
    config = {
        "format": FORMAT,
        "model": options.model,
        "codec_fingerprint": fingerprint,
        "sample_rate": options.sample_rate,
        "frame_samples": FRAME_SAMPLES,
        "speaker_dim": speaker_info["dim"],
        **({"speakers": list(per_speaker)} if per_speaker else {}),
        # Not where DIR is nor whether bars were drawn: a copied or moved DIR keeps a matching config.
        "options": {k: v for k, v in options.to_json().items() if k not in ("output", "progress")},
    }
    _remove_strays(dirs[0], {f"{key}.wav" for key in entries})
    _remove_strays(dirs[1], {f"{key}.npy" for key in entries})
    files = {
        SPEAKER_FILE: speaker_file,
        "report.json": report_bytes(report),
        "report.txt": summary_text(report).encode(),
        "val.jsonl": _jsonl_bytes(splits["val"]),
        "prepare_config.json": (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode(),
        "train.jsonl": _jsonl_bytes(splits["train"]),  # last: its presence means DIR is complete
    }
    for name, data in files.items():
        write_atomic(output / name, data)
    return output
