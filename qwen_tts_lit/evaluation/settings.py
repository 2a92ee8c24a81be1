"""What an evaluation does, with its defaults in one place: which judges score the audio, which cells are spoken,
and the rule that picks the best. The ``EvalSuite`` callback takes these as its arguments (configs name them);
re-scoring a finished run reads the same settings back from the run's saved config. Nothing heavy is imported."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields, replace

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.metrics.selection import SelectionRule
from qwen_tts_lit.model.lora import check_lora_scale
from qwen_tts_lit.synthesis.presets import MAX_NEW_TOKENS


@dataclass(frozen=True)
class JudgeSettings:
    """Which judge models score the audio (each loads once per run)."""

    asr_model: str | None = None
    """faster-whisper model: None = the bundled tiny.en (offline demo and tests); "large-v3" for real runs."""
    asr_device: str = "cpu"
    """Device for ASR ("cpu", "cuda", "auto")."""
    asr_compute_type: str = "int8"
    """CTranslate2 precision: int8 on CPU, float16 on GPU."""
    asr_beam_size: int = 5
    """ASR beam width."""
    asr_language: str | None = "en"
    """Spoken language for ASR (None = detect each clip's; tiny.en knows only English)."""
    asr_batch_size: int = 8
    """Clips (30 s Whisper windows) transcribed together by faster-whisper's batched pipeline (its default)."""
    speaker_device: str | None = None
    """Device for the resemblyzer speaker encoder (None: asr_device; "auto": cuda when visible)."""
    model_speaker_sim: bool = True
    """Also score speaker similarity with the model's own speaker encoder (spk_sim_model)."""


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation per epoch: the held-out sentences x LoRA strengths, judged and ranked."""

    scales: tuple[float, ...] = (0.2, 0.3, 0.35, 0.5, 1.0)
    """LoRA strengths to synthesize at (the seed guide's sweep; 1.0 = as trained, 0 = the base model)."""
    num_utterances: int = 8
    """Held-out sentences per cell (the first N of the manifest)."""
    heldout: str | None = None
    """JSONL of held-out sentences with real recordings (text, audio[, id, language]); None: the prepared val.jsonl."""
    seed: int = 1234
    """Sentence i is sampled with seed + i in every cell, so cells differ only by the weights."""
    every_n_epochs: int = 1
    """Evaluate every N epochs (and always after the last one)."""
    max_new_tokens: int | None = None
    """Frame cap of every generation; None: a generous cap from each text's length."""
    batch_size: int = 40
    """Generations per generate call: an epoch's sentences x scales are spoken together, this many at a time (the
    default 8 x 5 grid in one call); lower it if evaluation runs out of GPU memory."""
    judges: JudgeSettings = field(default_factory=JudgeSettings)
    """ASR / speaker-similarity backends."""
    rule: SelectionRule = field(default_factory=SelectionRule)
    """How the best (epoch, scale) cell is picked."""

    def __post_init__(self) -> None:
        bad = self.problems()
        if bad:
            raise UserError("\n".join(bad))  # one line per problem
        object.__setattr__(self, "scales", tuple(sorted({float(s) for s in self.scales})))
        if self.max_new_tokens is not None and self.max_new_tokens > MAX_NEW_TOKENS:
            warnings.warn(
                f"EvalSuite.max_new_tokens={self.max_new_tokens} is above the ceiling {MAX_NEW_TOKENS}: a runaway "
                f"generation at a strong scale would run for minutes per sentence. Capped at {MAX_NEW_TOKENS}.",
                stacklevel=3,
            )
            object.__setattr__(self, "max_new_tokens", MAX_NEW_TOKENS)

    def problems(self) -> list[str]:
        """Every setting that cannot work, one message each (empty when fine)."""
        bad = [] if self.scales else ["EvalSuite.scales: give at least one LoRA strength"]
        for scale in self.scales:
            try:
                check_lora_scale(float(scale), "EvalSuite.scales:")
            except UserError as error:
                bad.append(str(error))
        for name in ("num_utterances", "every_n_epochs", "batch_size"):
            if getattr(self, name) < 1:
                bad.append(f"EvalSuite.{name} {getattr(self, name)}: must be >= 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            bad.append(f"EvalSuite.max_new_tokens {self.max_new_tokens}: must be >= 1")
        return bad

    @classmethod
    def from_args(cls, args: dict | None) -> EvalSettings:
        """Settings from a config's ``EvalSuite`` init args (judges and rule as nested dicts); missing keys keep
        the defaults above, unknown keys are ignored."""
        args = dict(args or {})
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in args.items() if k in known and k not in ("judges", "rule")}
        if "scales" in values:
            values["scales"] = tuple(values["scales"])
        judges = _known(JudgeSettings, args.get("judges"))
        rule = _known(SelectionRule, args.get("rule"))
        return cls(**values, judges=JudgeSettings(**judges), rule=SelectionRule(**rule))

    def with_overrides(self, **changes) -> EvalSettings:
        """A copy with every non-None value of ``changes`` applied (top-level fields only)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _known(cls: type, values: dict | None) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (values or {}).items() if k in names}
