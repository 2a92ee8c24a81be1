"""``synthesize``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.synthesis.chunking import DEFAULT_CHUNK_CHARS, PAUSE_SECONDS

DEFAULT_RETRIES = 2
DEFAULT_SEED = 42


@dataclass(frozen=True)
class SynthesizeRequest:
    """speak a text (any length) with a run, an adapter export or a custom_voice export into a 24 kHz wav

    The text is split at sentence boundaries into chunks, each spoken with the same seed and the same speaker
    embedding, and joined with a short pause. A chunk that reaches the frame cap without EOS is retried with seed+1,
    seed+2, ...; if all retries run away nothing is written and the exit code is 1 (--keep_runaway keeps the capped
    audio and says so).
    """

    model: str
    """Run folder (runs/NAME/version_N), adapter export or custom_voice export."""
    output: Path
    """Output .wav (24 kHz, 16-bit; written atomically)."""
    text: str | None = None
    """The text to speak (or --text_file)."""
    text_file: Path | None = None
    """UTF-8 text file to speak (blank lines end paragraphs)."""
    lora_scale: float | None = None
    """Adapter strength in [0, 2] (default: the run's chosen scale, or the export's)."""
    seed: int = DEFAULT_SEED
    """Seed of every chunk."""
    max_new_tokens: int | None = None
    """Frame cap per chunk (default: from the chunk's length)."""
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    """Most characters per chunk."""
    epoch: int | None = None
    """Run folder only: the epoch (default: the run's chosen one)."""
    language: str | None = None
    """Language in the codec prefix, e.g. english (default: auto, no tag). Warned about when the model never trained
    on that prefix (its data.language_tag: off trains auto only, on the tagged prefix only, mixed both)."""
    strict: bool = False
    """Refuse (exit 2) instead of warning when --language asks for a codec prefix the model was not trained on."""
    speaker: str | None = None
    """Which speaker, for a run, adapter export or custom_voice export of several speakers; or a preset speaker of
    a CustomVoice checkpoint (e.g. vivian), for a run or export fine-tuned from one."""
    instruct: str | None = None
    """An instruction for the style of the speech (e.g. "Speak slowly and sadly."), as generate_custom_voice's
    instruct; for a model fine-tuned from the 1.7B CustomVoice (the 0.6B ignores instructions: refused)."""
    base_model: str | None = None
    """Base checkpoint, when the run's or adapter's own source is not here."""
    retries: int = DEFAULT_RETRIES
    """Extra seeds for a runaway chunk."""
    keep_runaway: bool = False
    """Keep a chunk that still hits the cap (reported)."""
    pause_seconds: float = PAUSE_SECONDS
    """Seconds of silence between chunks."""
    device: str = field(default="cpu", metadata={"metavar": "DEVICE"})
    """cpu, cuda, cuda:N or auto."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        if self.text_file is not None:
            object.__setattr__(self, "text_file", Path(self.text_file))

    def spoken_text(self) -> str:
        """The text to speak: --text, or the contents of --text_file (exactly one of them)."""
        if (self.text is None) == (self.text_file is None):
            raise UserError("give exactly one of --text and --text_file")
        if self.text is not None:
            return self.text
        try:
            return self.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--text_file {self.text_file}: cannot read it ({error})") from error
