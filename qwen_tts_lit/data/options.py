"""``PrepareOptions``: every knob of ``prepare``, typed and documented once.

The attribute docstrings below are the single source of the ``--help`` text (:func:`add_arguments` reads them), so
the notebook API, the CLI and the README never disagree. This module imports nothing heavy: ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import math
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from qwen_tts_lit.data.text_clean import DEFAULT_TAG_PATTERNS

LONG_CLIP_S = 24.0  # the 12 Hz decoder's chunked_decode drops samples past ~300 frames (upstream #223)


@dataclass
class PrepareOptions:
    """Options of ``prepare``: raw clips + transcripts -> a checked, cleaned, codec-coded training set."""

    input: Path
    """RAW: a JSONL manifest, a folder of name.wav + name.txt pairs, or an LJSpeech metadata.csv (or its folder)."""
    output: Path
    """DIR to write the prepared dataset into (created; must be empty or an earlier prepare output)."""
    model: str
    """Qwen3-TTS Base checkpoint (local dir, hub id, or "tiny") whose speech tokenizer and speaker encoder are used."""
    input_format: Literal["auto", "jsonl", "folder", "ljspeech"] = "auto"
    """How to read RAW; auto: a .jsonl file, a metadata.csv (or a folder holding one), else a folder of pairs."""
    default_language: str = "auto"
    """Language for rows that do not name one (the folder and LJSpeech formats never do)."""
    sample_rate: int = 24000
    """Rate of the cleaned audio; must equal the speech tokenizer's input rate (24000 for every 12 Hz model)."""
    trailing_silence_s: float = 1.0
    """Seconds of digital silence appended after the trimmed speech (rounded up to a whole 80 ms codec frame)."""
    trim_threshold_db: float = -45.0
    """Leading/trailing 10 ms blocks quieter than this RMS level (dBFS) are trimmed; none louder: a silent clip."""
    trim_margin_s: float = 0.1
    """Seconds of audio kept on each side of the loud part when trimming (soft consonants start below any threshold)."""
    min_seconds: float = 0.5
    """Error when the trimmed speech is shorter than this."""
    max_seconds: float = 60.0
    """Error when the cleaned clip is longer than this (usually an unsegmented recording)."""
    long_warning_seconds: float = LONG_CLIP_S
    """Warn when the cleaned clip is longer than this (the 12 Hz decoder drops samples past about 24 s)."""
    tag_patterns: tuple[str, ...] = DEFAULT_TAG_PATTERNS
    """Regexes of non-speech tags removed from transcripts; the default covers <laugh>, [breath], (applause), *sigh*."""
    ascii_quotes: bool = True
    """Replace typographic quotes and apostrophes with ASCII ones."""
    rate_outlier_factor: float = 2.5
    """Warn when a clip's words per second is this many times above or below the median (a transcript that does not
    match its audio); 0 turns the check off."""
    val_fraction: float = 0.1
    """Fraction of clips held out for validation, picked by a seeded hash of their ids (ignored with val_list)."""
    val_list: Path | None = None
    """Text file of ids (one per line, # comments) to hold out for validation instead of a random fraction."""
    seed: int = 0
    """Seed of the train/val split."""
    speaker_source: Literal["auto", "ref_audio", "train_mean"] = "auto"
    """Where the speaker x-vector comes from; auto: the reference audio if there is one, else the train clips' mean."""
    ref_audio: Path | None = None
    """Reference recording for the x-vector, overriding the rows' ref_audio fields."""
    batch_size: int = 8
    """Clips per speech-tokenizer batch (clips are sorted by length, so padding stays small)."""
    device: str = "auto"
    """Torch device for the speech tokenizer and speaker encoder; auto: cuda when available, else cpu."""
    strict: bool = False
    """Treat every warning (each automatic fix) as an error."""
    skip_bad: bool = False
    """Drop rows that have errors (listed in report.json) instead of failing."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        # Notebook users pass strings; the CLI passes lists.
        self.input, self.output = Path(self.input), Path(self.output)
        self.model = str(self.model)
        self.val_list = None if self.val_list is None else Path(self.val_list)
        self.ref_audio = None if self.ref_audio is None else Path(self.ref_audio)
        self.tag_patterns = tuple(self.tag_patterns)

    def check(self) -> list[str]:
        """Every option that is out of range, as ``--name: reason`` messages."""
        bad = []
        for name in ("trailing_silence_s", "trim_margin_s", "min_seconds", "rate_outlier_factor"):
            if not getattr(self, name) >= 0:
                bad.append(f"--{_flag(name)}: must be >= 0, got {getattr(self, name)}")
        if not self.max_seconds > self.min_seconds:
            bad.append(
                f"--max-seconds: must be greater than --min-seconds ({self.min_seconds}), got {self.max_seconds}"
            )
        if not 0 <= self.val_fraction < 1:
            bad.append(f"--val-fraction: must be in [0, 1), got {self.val_fraction}")
        if not self.trim_threshold_db < 0 or not math.isfinite(self.trim_threshold_db):
            bad.append(f"--trim-threshold-db: must be a negative dBFS level, got {self.trim_threshold_db}")
        for name in ("batch_size", "sample_rate"):
            if getattr(self, name) < 1:
                bad.append(f"--{_flag(name)}: must be >= 1, got {getattr(self, name)}")
        if self.rate_outlier_factor and self.rate_outlier_factor <= 1:
            bad.append(f"--rate-outlier-factor: must be 0 (off) or > 1, got {self.rate_outlier_factor}")
        return bad

    def to_json(self) -> dict:
        """JSON-ready copy (paths as the strings given), for prepare_config.json."""
        values = dataclasses.asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }


METAVARS = {Path: "PATH", int: "INT", float: "FLOAT"}


def _flag(name: str) -> str:
    return name.replace("_", "-")


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal under each field), joined into one line each."""
    docs, body = {}, ast.parse(inspect.getsource(cls)).body[0].body
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def add_arguments(parser: argparse.ArgumentParser, cls: type = PrepareOptions) -> None:
    """One ``--flag`` per dataclass field, typed from its annotation, with its docstring as help."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint, flag = hints[item.name], f"--{_flag(item.name)}"
        kwargs: dict = dict(dest=item.name, help=docs.get(item.name, ""))
        if item.default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = item.default
            kwargs["help"] += " (default: %(default)s)"
        args = typing.get_args(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is Literal:
            kwargs["choices"] = args
        elif typing.get_origin(hint) is tuple:
            kwargs.update(nargs="*", type=args[0], metavar="REGEX")
            kwargs["help"] = kwargs["help"].replace("%(default)s", "those four; the flag alone keeps every tag")
        else:
            kwargs["type"] = next(a for a in args if a is not type(None)) if args else hint
            kwargs["metavar"] = METAVARS.get(kwargs["type"], item.name.upper())
        parser.add_argument(flag, **kwargs)


def from_namespace(namespace: argparse.Namespace, cls: type = PrepareOptions):
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})
