"""``export``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.speaker_file import speaker_name_problem

FORMATS = ("custom_voice", "adapter", "gguf")
MERGED_FORMATS = ("custom_voice", "gguf")  # the LoRA merged at the scale, the speakers in codec-embedding rows


@dataclass(frozen=True)
class ExportRequest:
    """export a run's chosen epoch x lora_scale as an official custom_voice checkpoint or a PEFT adapter

    Defaults: the epoch and lora_scale the run's evaluation chose. A run without a chosen cell needs --epoch (the
    scale then defaults to 1.0, as trained). Written into a temporary folder and renamed into OUT at the end.
    """

    run: Path
    """Run folder (runs/NAME/version_N)."""
    output: Path
    """Export folder (must be absent or empty, or use --force)."""
    speaker_name: str | None = None
    """Speaker name (lower-case; the custom_voice speaker id) of a one-voice run; a run of several speakers exports
    every one under the name it was prepared with."""
    format: Literal["custom_voice", "adapter", "gguf"] = "custom_voice"
    """custom_voice: a complete official checkpoint, LoRA merged; adapter: a PEFT folder + the x-vector; gguf: the
    custom_voice checkpoint as qwentts.cpp's talker.gguf + codec.gguf (CPU serving; docs/serving.md)."""
    epoch: int | None = None
    """Epoch to export (default: the run's chosen one)."""
    lora_scale: float | None = None
    """Adapter strength in [0, 2] (default: the run's chosen one, else 1.0)."""
    keep_speaker_encoder: bool = False
    """custom_voice: keep speaker_encoder.* so the export can be fine-tuned again."""
    force: bool = False
    """Replace a non-empty OUT."""
    base_model: str | None = None
    """Base checkpoint, when the run's own source is not here."""
    device: str = field(default="cpu", metadata={"metavar": "DEVICE"})
    """cpu, cuda, cuda:N or auto."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", Path(self.run))
        object.__setattr__(self, "output", Path(self.output))

    def check(self) -> None:
        """The checks that need no file: format, flags that go together, the speaker name."""
        if self.format not in FORMATS:
            raise UserError(f"--format {self.format!r}: choose {', '.join(FORMATS)}")
        if self.keep_speaker_encoder and self.format != "custom_voice":
            raise UserError(
                "--keep_speaker_encoder: only for --format custom_voice (an adapter never holds base weights)"
            )
        if self.speaker_name is not None:
            check_speaker_name(self.speaker_name)

    def check_speakers(self, speakers: list[str]) -> None:
        """The run's speakers ([] for one voice) against --speaker_name."""
        if speakers and self.speaker_name is not None:
            raise UserError(
                f"--speaker_name {self.speaker_name}: {self.run} has speakers {', '.join(speakers)}, exported "
                "under these names; leave --speaker_name out"
            )
        if not speakers and self.speaker_name is None:
            raise UserError("--speaker_name: required (the speaker id the exported voice is called by)")


def check_speaker_name(name: str) -> str:
    """Lower-case letters and digits of any script, then '_' and '-' (a dict key upstream lower-cases on lookup)."""
    problem = speaker_name_problem(name or "")
    if problem is not None:
        raise UserError(f"--speaker_name {name!r}: {problem}")
    return name
