"""``segment``'s options (one documented field per flag); importing this module loads nothing heavy, so ``--help``
stays instant. The defaults of the cutting and the filters are owned here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.data.prepare.options import LONG_CLIP_S, flag

MIN_PAUSE_S = 0.3  # espeak's and most speakers' comma pauses are 0.1-0.25 s: a cut needs a longer silence


@dataclass(frozen=True)
class SegmentRequest:
    """cut long recordings into transcribed clips at pauses, flag the bad ones, write a manifest for prepare

    Reads every recording in blocks (any length, bounded memory), finds speech with silero-vad, cuts clips of
    --min_seconds to --max_seconds inside pauses (a margin of silence kept at each edge; a run of speech without a
    pause is cut at its quietest point and flagged), transcribes each clip with faster-whisper, and gives each clip a
    status (keep / review / drop) with its reasons. Writes 24 kHz clips, review.html and review.csv (edit status and
    text there, then run the same command again: nothing is transcribed twice), the manifest train_raw.jsonl of the
    kept clips (the input of prepare) and a summary. Resumable: a killed run continues where it stopped.
    """

    input: tuple[Path, ...] = field(metadata={"metavar": "FILE_OR_FOLDER"})
    """Recordings (wav, flac, mp3, ogg, opus, m4a...) or folders searched recursively for them."""
    output: Path
    """DIR to write into (created; must be empty or an earlier segment output)."""
    language: str | None = None
    """Spoken language, a code or an English name (en, de, Chinese...); default: detected per clip by a
    multilingual ASR model, English with an English-only one."""
    asr: str | None = None
    """faster-whisper model: a name (large-v3, downloaded on first use) or a local model folder; default: the bundled
    tiny.en (offline, English only)."""
    asr_device: str = "cpu"
    """Device of the ASR model: cpu, cuda or auto."""
    asr_compute_type: str = "int8"
    """CTranslate2 precision of the ASR model (int8 on CPU, float16 on a GPU)."""
    asr_beam_size: int = 5
    """Beam width of the ASR decoding."""
    min_seconds: float = 2.0
    """Shortest clip; a shorter stretch of speech is merged with its neighbour across the shorter pause, or dropped."""
    max_seconds: float = 15.0
    """Longest clip (under the 12 Hz decoder's ~24 s limit); longer speech is cut at its longest pauses."""
    margin_seconds: float = 0.2
    """Silence kept before and after the speech of each clip (less where the pause to the next clip is shorter)."""
    min_pause_seconds: float = MIN_PAUSE_S
    """Shortest silence a clip may be cut in; shorter gaps stay inside a clip."""
    max_inner_pause_seconds: float = 1.0
    """Longest pause a too-short stretch may be merged across (a longer silence inside a clip is wasted training)."""
    vad_threshold: float = 0.5
    """silero-vad speech probability above which a 32 ms frame is speech."""
    min_speaker_similarity: float = 0.75
    """Review a clip whose resemblyzer similarity to the dominant voice (or --speaker_reference) is below this."""
    speaker_reference: Path | None = None
    """A recording of the target voice; default: the voice of most clips (the dominant speaker)."""
    min_avg_logprob: float = -1.0
    """Review a clip whose ASR mean token log-probability is below this (Whisper's own failure threshold)."""
    max_no_speech_prob: float = 0.6
    """Drop a clip whose ASR no-speech probability is above this (Whisper's own silence threshold)."""
    max_compression_ratio: float = 2.4
    """Drop a clip whose transcript repeats itself this much (gzip ratio; Whisper's hallucination threshold)."""
    rate_factor: float = 1.5
    """Review a clip whose words per second is this many times above or below the median clip's."""
    quiet_db: float = -40.0
    """Review a clip whose speech is quieter than this RMS level (dBFS)."""
    max_clipped_fraction: float = 0.001
    """Review a clip in which more than this fraction of the source samples is at full scale (clipped)."""
    speaker: str | None = None
    """Speaker name written into every manifest row (prepare accepts one speaker per dataset)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        inputs = (self.input,) if isinstance(self.input, (str, Path)) else self.input  # a notebook passes one path
        object.__setattr__(self, "input", tuple(Path(p) for p in inputs))
        object.__setattr__(self, "output", Path(self.output))
        if self.speaker_reference is not None:
            object.__setattr__(self, "speaker_reference", Path(self.speaker_reference))

    def check(self) -> list[str]:
        """Every option that is out of range, as ``--name: reason`` messages."""
        bad = []
        for name in ("min_seconds", "margin_seconds", "min_pause_seconds", "max_inner_pause_seconds"):
            if not getattr(self, name) >= 0:
                bad.append(f"{flag(name)}: must be >= 0, got {getattr(self, name)}")
        if not self.min_seconds < self.max_seconds < LONG_CLIP_S:
            bad.append(
                f"--max_seconds: must be above --min_seconds ({self.min_seconds}) and below {LONG_CLIP_S:g} (the 12 Hz "
                f"decoder drops samples past ~{LONG_CLIP_S:g} s), got {self.max_seconds}"
            )
        elif self.max_seconds - 2 * self.margin_seconds < self.min_seconds / 2:
            bad.append(
                f"--margin_seconds: {self.margin_seconds} leaves too little speech in a {self.max_seconds} s clip"
            )
        for name in ("vad_threshold", "max_no_speech_prob", "max_clipped_fraction"):
            if not 0 < getattr(self, name) < 1:
                bad.append(f"{flag(name)}: must be between 0 and 1, got {getattr(self, name)}")
        if not -1 <= self.min_speaker_similarity <= 1:
            bad.append(f"--min_speaker_similarity: a cosine, between -1 and 1, got {self.min_speaker_similarity}")
        if not self.rate_factor > 1:
            bad.append(f"--rate_factor: must be > 1, got {self.rate_factor}")
        if self.asr_beam_size < 1:
            bad.append(f"--asr_beam_size: must be >= 1, got {self.asr_beam_size}")
        return bad
