"""Readers for the three raw input formats, all producing the same :class:`RawRow` records.

- JSONL manifest (upstream's fine-tuning format): ``audio``, ``text``, optional ``ref_audio``, ``language``,
  ``speaker``, ``id``. Relative paths resolve against the manifest's folder.
- A folder of ``name.wav`` + ``name.txt`` pairs (also .flac/.ogg/.mp3): the id is ``name``.
- A folder of such folders, one per speaker (``RAW/alice/001.wav`` + ``001.txt``, ``RAW/bob/...``): the speaker is
  the folder's name and the id ``<speaker>_<name>`` (two speakers may both have a ``001``).
- An LJSpeech-style ``metadata.csv`` (``id|text|normalized_text``, audio in ``wavs/<id>.wav`` beside it): the
  transcript is the ``text`` column, as users will type it at inference; ``normalized_text`` is ignored.

Readers only parse and locate; the checks on content live in :mod:`qwen_tts_lit.data.prepare.checks`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.data.prepare.ids import safe_id
from qwen_tts_lit.data.prepare.problems import UNPARSED, Problem

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")  # what libsndfile decodes
JSONL_FIELDS = ("audio", "text", "ref_audio", "language", "speaker", "id", "instruct")
# Upstream's prepare_data.py writes codes into the manifest; we recompute them from the cleaned audio.
IGNORED_FIELDS = {"audio_codes": "ignored: codes are recomputed from the cleaned audio"}


@dataclass
class RawRow:
    """One input row, parsed but not checked. ``file``/``line`` locate it for messages and ``source_line``."""

    file: str
    line: int
    text: str | None
    source_audio: str | None
    """The audio path as given (the manifest's string, or the file name found for the folder/LJSpeech formats)."""
    audio_path: Path | None
    id: str | None = None
    ref_audio: str | None = None
    ref_audio_path: Path | None = None
    language: str | None = None
    speaker: str | None = None
    instruct: str | None = None  # an emotion or style instruction for a CustomVoice fine-tune (JSONL only)


def _visible(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]


def detect_format(path: Path) -> str | None:
    if path.is_dir():
        if (path / "metadata.csv").is_file():
            return "ljspeech"
        entries = _visible(path)
        return "speaker_folders" if entries and all(p.is_dir() for p in entries) else "folder"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    if path.suffix.lower() == ".csv":
        return "ljspeech"
    return None


def read_rows(path: Path, input_format: str) -> tuple[list[RawRow], list[Problem]]:
    """Rows of ``path`` in ``input_format`` (``auto`` detects it) and the problems found while parsing."""
    fmt = detect_format(path) if input_format == "auto" else input_format
    if not path.exists():
        return [], [Problem(str(path), None, None, "input not found", "missing_input")]
    if fmt == "jsonl" and path.is_file():
        return read_jsonl(path)
    if fmt == "ljspeech":
        return read_ljspeech(path / "metadata.csv" if path.is_dir() else path)
    if fmt == "folder" and path.is_dir():
        return read_folder(path)
    if fmt == "speaker_folders" and path.is_dir():
        return read_speaker_folders(path)
    message = f"cannot read as {fmt!r}" if fmt else "cannot tell the format (expected .jsonl, .csv or a folder)"
    return [], [Problem(str(path), None, None, f"{message}; pass --input_format", "bad_input")]


def _resolve(base: Path, given: str) -> Path:
    return Path(given) if Path(given).is_absolute() else base / given


def _parse_json_line(raw: bytes, file: str, line: int) -> tuple[dict | None, list[Problem]]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        return None, [Problem(file, line, None, f"not UTF-8 text ({error.reason})", "jsonl_syntax", row=UNPARSED)]
    except json.JSONDecodeError as error:
        return None, [
            Problem(file, line, None, f"invalid JSON: {error.msg} (column {error.colno})", "jsonl_syntax", row=UNPARSED)
        ]
    if not isinstance(record, dict):
        message = f"expected a JSON object, got {type(record).__name__}"
        return None, [Problem(file, line, None, message, "jsonl_syntax", row=UNPARSED)]
    return record, []


def read_jsonl(path: Path) -> tuple[list[RawRow], list[Problem]]:
    rows, problems, file = [], [], str(path)
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # editors on Windows add a BOM
    for line, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        record, found = _parse_json_line(raw, file, line)
        problems += found
        if record is None:
            continue
        row = len(rows)
        for key in record:
            if key in IGNORED_FIELDS:
                problems.append(Problem(file, line, key, IGNORED_FIELDS[key], "ignored_field", True, row))
            elif key not in JSONL_FIELDS:
                expected = ", ".join(JSONL_FIELDS)
                problems.append(
                    Problem(file, line, key, f"unknown field (expected {expected})", "unknown_field", row=row)
                )
        values = {}
        for key in JSONL_FIELDS:
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                message = f"must be a string, got {json.dumps(value)}"
                problems.append(Problem(file, line, key, message, "bad_type", row=row))
                value = None
            values[key] = value
        audio, ref = values["audio"], values["ref_audio"]
        if record.get("audio") is None:
            message = "missing (every row needs an audio path)"
            problems.append(Problem(file, line, "audio", message, "missing_audio", row=row))
        rows.append(
            RawRow(
                file=file,
                line=line,
                text=values["text"],
                source_audio=audio,
                audio_path=_resolve(path.parent, audio) if audio else None,
                id=values["id"],
                ref_audio=ref,
                ref_audio_path=_resolve(path.parent, ref) if ref else None,
                language=values["language"],
                speaker=values["speaker"],
                instruct=values["instruct"],
            )
        )
    return rows, problems


def _read_transcript(path: Path) -> tuple[str | None, Problem | None]:
    try:
        # The final newline every editor adds is not a whitespace problem of the transcript.
        return path.read_bytes().decode("utf-8-sig").rstrip("\r\n"), None
    except UnicodeDecodeError as error:
        return None, Problem(str(path), 1, "text", f"not UTF-8 text ({error.reason})", "bad_text_file", row=UNPARSED)


def read_folder(folder: Path) -> tuple[list[RawRow], list[Problem]]:
    rows, problems = [], []
    audio: dict[str, list[Path]] = {}
    texts: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
            audio.setdefault(path.stem, []).append(path)
        elif path.is_file() and path.suffix.lower() == ".txt":
            texts[path.stem] = path
    for stem in sorted(set(audio) | set(texts)):
        if stem not in texts:
            message = f"no transcript {stem}.txt beside the audio"
            problems.append(Problem(str(audio[stem][0]), None, "text", message, "empty_text", row=UNPARSED))
            continue
        txt = texts[stem]
        if stem not in audio:
            message = f"no audio file {stem}{{{','.join(AUDIO_EXTENSIONS)}}} beside the transcript"
            problems.append(Problem(str(txt), 1, "audio", message, "missing_audio", row=UNPARSED))
            continue
        if len(audio[stem]) > 1:
            names = ", ".join(p.name for p in audio[stem])
            message = f"ambiguous: several audio files ({names})"
            problems.append(Problem(str(txt), 1, "audio", message, "bad_input", row=UNPARSED))
            continue
        text, problem = _read_transcript(txt)
        if problem is not None:
            problems.append(problem)
            continue
        found = audio[stem][0]
        rows.append(RawRow(str(txt), 1, text, found.name, found))  # the id comes from the file name, made safe
    if not rows and not problems:
        problems.append(Problem(str(folder), None, None, "no name.wav + name.txt pairs found", "bad_input"))
    return rows, problems


def read_speaker_folders(root: Path) -> tuple[list[RawRow], list[Problem]]:
    """One :func:`read_folder` per sub-folder; the folder name is the speaker (checked with the other rows)."""
    rows, problems = [], []
    for folder in _visible(root):
        if not folder.is_dir():
            message = "a folder of speaker folders holds only folders (one per speaker)"
            problems.append(Problem(str(folder), None, None, message, "bad_input", row=UNPARSED))
            continue
        found, found_problems = read_folder(folder)
        for row in found:
            row.speaker, row.id = folder.name, safe_id(f"{folder.name}_{row.audio_path.stem}")
        rows += found
        problems += found_problems
    return rows, problems


def read_ljspeech(csv_path: Path) -> tuple[list[RawRow], list[Problem]]:
    rows, problems, file = [], [], str(csv_path)
    try:
        lines = csv_path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        return [], [Problem(file, None, None, f"not UTF-8 text ({error.reason})", "bad_input")]
    wavs = csv_path.parent / "wavs"
    for line, content in enumerate(lines, start=1):
        if not content.strip():
            continue
        columns = content.split("|")  # LJSpeech quotes nothing: '"' is part of the text
        if len(columns) not in (2, 3):
            message = f"expected id|text|normalized_text, got {len(columns)} column(s)"
            problems.append(Problem(file, line, None, message, "csv_syntax", row=UNPARSED))
            continue
        row_id, text = columns[0].strip(), columns[1]
        found = next((wavs / f"{row_id}{ext}" for ext in AUDIO_EXTENSIONS if (wavs / f"{row_id}{ext}").is_file()), None)
        given = f"wavs/{found.name}" if found else f"wavs/{row_id}.wav"
        rows.append(RawRow(file, line, text, given, found or wavs / f"{row_id}.wav", id=row_id or None))
    return rows, problems
