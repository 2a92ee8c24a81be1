"""``PrepareOptions``: every knob of ``prepare``, typed and documented once.

The attribute docstrings below are the single source of the ``--help`` text (``qwen_tts_lit.cli.options`` turns each
field into a flag), so the notebook API, the CLI and the README never disagree. This module imports nothing heavy:
``--help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qwen_tts_lit.data.prepare.text import DEFAULT_TAG_PATTERNS

LONG_CLIP_S = 24.0  # the 12 Hz decoder's chunked_decode drops samples past ~300 frames (upstream #223)
# A clip is read, cleaned and encoded in one piece, in memory that grows with its length (docs/prepare.md,
# "Checks"): longer files are refused from their header before a sample is read, and --max_seconds stays below it.
MAX_FILE_SECONDS = 300.0


@dataclass
class PrepareOptions:
    """check, clean and codec-encode raw clips + transcripts into a training dataset

    Check every row first and report all problems at once (exit 2, nothing written); then write cleaned 24 kHz
    audio, 12 Hz codec codes (cached: a re-run or an interrupted run resumes), the speaker x-vector, train/val
    manifests and a report into --output.
    """

    input: Path
    """RAW: a JSONL manifest, a folder of name.wav + name.txt pairs (or of such folders, one per speaker), or an
    LJSpeech metadata.csv (or its folder)."""
    output: Path
    """DIR to write the prepared dataset into (created; must be empty or an earlier prepare output)."""
    model: str
    """Qwen3-TTS checkpoint to train (local dir, hub id, "tiny" or "tiny_custom_voice"): its speech tokenizer gives
    the codes; its speaker encoder the x-vectors (a CustomVoice checkpoint has none: its release's Base's is used)."""
    speaker_encoder_model: str | None = None
    """Checkpoint whose speaker encoder computes the x-vectors; None: --model's own, or for a CustomVoice checkpoint
    the Base of the same release where that pairing is known (the released sizes, the tiny custom_voice)."""
    input_format: Literal["auto", "jsonl", "folder", "speaker_folders", "ljspeech"] = "auto"
    """How to read RAW; auto: a .jsonl file, a metadata.csv (or a folder holding one), a folder holding only folders
    (one per speaker), else a folder of pairs."""
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
    tag_patterns: tuple[str, ...] = field(
        default=DEFAULT_TAG_PATTERNS, metadata={"metavar": "REGEX", "nargs": "*", "default_help": "<...>, [...], "
                                                "(laugh)-like and *sigh*-like tags"}
    )  # fmt: skip
    """Regexes of non-speech tags removed from transcripts; the flag with no regex keeps every tag."""
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
    """Where the speaker x-vector comes from; auto: the reference audio if there is one, else the train clips' mean
    (with several speakers: decided per speaker, from that speaker's rows)."""
    ref_audio: Path | None = None
    """Reference recording for the x-vector, overriding the rows' ref_audio fields (one speaker only)."""
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
        self.speaker_encoder_model = None if self.speaker_encoder_model is None else str(self.speaker_encoder_model)
        self.val_list = None if self.val_list is None else Path(self.val_list)
        self.ref_audio = None if self.ref_audio is None else Path(self.ref_audio)
        self.tag_patterns = tuple(self.tag_patterns)

    def check(self) -> list[str]:
        """Every option that is out of range, as ``--name: reason`` messages."""
        bad = []
        for name in ("trailing_silence_s", "trim_margin_s", "min_seconds", "rate_outlier_factor"):
            if not getattr(self, name) >= 0:
                bad.append(f"{flag(name)}: must be >= 0, got {getattr(self, name)}")
        if not self.max_seconds > self.min_seconds:
            bad.append(
                f"--max_seconds: must be greater than --min_seconds ({self.min_seconds}), got {self.max_seconds}"
            )
        if self.max_seconds > MAX_FILE_SECONDS:
            bad.append(
                f"--max_seconds: at most {MAX_FILE_SECONDS:g} (a clip is encoded in one piece, in memory that grows "
                f"with its length; split longer recordings), got {self.max_seconds}"
            )
        if not 0 <= self.val_fraction < 1:
            bad.append(f"--val_fraction: must be in [0, 1), got {self.val_fraction}")
        if not self.trim_threshold_db < 0 or not math.isfinite(self.trim_threshold_db):
            bad.append(f"--trim_threshold_db: must be a negative dBFS level, got {self.trim_threshold_db}")
        for name in ("batch_size", "sample_rate"):
            if getattr(self, name) < 1:
                bad.append(f"{flag(name)}: must be >= 1, got {getattr(self, name)}")
        if self.rate_outlier_factor and self.rate_outlier_factor <= 1:
            bad.append(f"--rate_outlier_factor: must be 0 (off) or > 1, got {self.rate_outlier_factor}")
        return bad

    def to_json(self) -> dict:
        """JSON-ready copy (paths as the strings given), for prepare_config.json."""
        values = dataclasses.asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }


def flag(name: str) -> str:
    """The command-line spelling of an option name."""
    return "--" + name
