"""The prepared-dataset contract: every file name of a ``prepare`` output folder and the small readers that open
them (one owner; docs/prepare.md, "Output", lists them). Training, evaluation and export read a prepared dataset
only through these, so a name changes here or nowhere.

    DIR/audio/<id>.wav        cleaned 24 kHz mono 16-bit PCM, a whole number of 80 ms codec frames
    DIR/codes/<id>.npy        (num_frames, 16) int64 codes of exactly that audio
    DIR/<speaker file>        the x-vector file (``speaker_file``: the same format as a run's)
    DIR/train.jsonl, val.jsonl, report.json, report.txt, prepare_config.json
    DIR/.cache/codes/         codes by hash of (audio, tokenizer): a re-run or resumed run encodes only what is new

A manifest row may carry ``instruct`` (a non-empty string: the style instruction the clip was spoken with, read by
prepare from the input row's ``instruct``); a row without one is plain (:func:`row_instruct`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.languages import AUTO
from qwen_tts_lit.speaker_file import SPEAKER_FILE

FORMAT = "qwen_tts_lit.prepared/v1"  # prepare_config.json's "format"
SPLITS = ("train", "val")
TRAIN_MANIFEST, VAL_MANIFEST = "train.jsonl", "val.jsonl"  # train.jsonl last: its presence means DIR is complete
REPORT_JSON, REPORT_TXT = "report.json", "report.txt"
CONFIG = "prepare_config.json"  # the options and codec of the run that wrote DIR
AUDIO_DIR, CODES_DIR = "audio", "codes"
CACHE_DIR = ".cache"  # made first: marks DIR as a prepare output before anything else is written
# Removed at the start of a write and written at its end; train.jsonl, the file the trainer opens, is last.
OUTPUT_FILES = (TRAIN_MANIFEST, CONFIG, VAL_MANIFEST, REPORT_TXT, REPORT_JSON, SPEAKER_FILE)
# What every manifest row holds (read_manifest refuses a row without one of them).
REQUIRED_FIELDS = ("id", "text", "codes", "num_frames")
INSTRUCT_FIELD = "instruct"  # optional: the row's instruction (docs/instructions.md)

__all__ = ["SPEAKER_FILE"]  # re-exported: the x-vector file of a prepared dataset


def manifest_path(root: Path | str, split: str) -> Path:
    """``train.jsonl`` or ``val.jsonl`` of the prepared dataset ``root``."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    return Path(root) / (TRAIN_MANIFEST if split == "train" else VAL_MANIFEST)


def is_prepared(root: Path | str) -> bool:
    """Whether ``root`` holds a finished prepared dataset (``train.jsonl`` is written last)."""
    return manifest_path(root, "train").is_file()


def clip_files(clip_id: str) -> dict[str, str]:
    """A manifest row's ``audio`` and ``codes`` entries: paths relative to DIR."""
    return {"audio": f"{AUDIO_DIR}/{clip_id}.wav", "codes": f"{CODES_DIR}/{clip_id}.npy"}


def audio_path(root: Path | str, row: Mapping) -> Path:
    """The cleaned audio of a manifest row."""
    return Path(root) / row["audio"]


def codes_path(root: Path | str, row: Mapping) -> Path:
    """The codec codes of a manifest row."""
    return Path(root) / row["codes"]


def read_config(root: Path | str) -> dict:
    """``prepare_config.json`` of ``root``; {} when it has none (a dataset from before the file existed)."""
    path = Path(root) / CONFIG
    return json.loads(path.read_text()) if path.is_file() else {}


def row_instruct(row: Mapping) -> str | None:
    """A manifest row's instruction, or None for a plain row."""
    return row.get(INSTRUCT_FIELD) or None


def read_manifest(path: Path, languages: Mapping[str, int] | None = None, tag_mode: str = "off") -> list[dict]:
    """Rows of a prepared ``train.jsonl`` / ``val.jsonl``. With ``languages`` (the model's codec language ids), every
    row's ``language`` must be one of them: ``tag_mode`` lays some rows out with their language in the prefix."""
    if not path.is_file():
        raise UserError(f"{path}: prepared manifest not found; run `python -m qwen_tts_lit prepare` first")
    rows = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field in REQUIRED_FIELDS:
            if field not in row:
                raise UserError(f"{path}:{line_number}: field {field!r} missing; re-run prepare")
        instruct = row.get(INSTRUCT_FIELD)
        if instruct is not None and (not isinstance(instruct, str) or not instruct.strip()):
            raise UserError(f"{path}:{line_number}: field {INSTRUCT_FIELD!r} must be a non-empty string, got "
                            f"{json.dumps(instruct)}; remove it for a plain row")  # fmt: skip
        language = str(row.get("language", AUTO)).lower()
        if languages is not None and language not in languages:
            raise UserError(
                f"{path}:{line_number}: field 'language' is {language!r}, but data.language_tag={tag_mode} needs one "
                f"of {', '.join(sorted(languages))}; re-run prepare with --default_language NAME (or a language per "
                "row), or set data.language_tag: 'off'"
            )
        rows.append(row)
    return rows
