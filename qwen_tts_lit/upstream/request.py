"""``make-tiny``'s options; importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class MakeTinyRequest:
    """build the tiny random Qwen3-TTS checkpoint (official layout) used by the demo and the tests

    Write a complete tiny Qwen3-TTS checkpoint (random weights, fixed seed) into DIR. Re-running on a finished DIR is
    a no-op; an interrupted build leaves nothing behind.
    """

    dir: Path = field(metadata={"positional": True})
    """Target directory (created; must be empty or a finished tiny build)."""
    kind: Literal["base", "custom_voice", "voice_design"] = "base"
    """Which release it mimics: base (a speaker encoder, for voice cloning and fine-tuning), custom_voice (three
    named preset speakers, one with a dialect, instructions; no speaker encoder) or voice_design (instructions
    only)."""
