"""What an evaluation does, with its defaults in one place: which judges score the audio, which cells are spoken,
and the rule that picks the best. The ``EvalSuite`` callback takes these as its arguments (configs name them);
re-scoring a finished run reads the same settings back from the run's saved config. Nothing heavy is imported."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.metrics.instructions import PROBE_NAMES
from qwen_tts_lit.metrics.selection import DNSMOS_FIELDS, RETENTION, SelectionRule
from qwen_tts_lit.runs.baselines import (
    BASELINES,
    DEFAULT_BASELINES,
    RENAMED_SETTINGS,
    VOICE_CLONE_NON_STREAMING,
    XVECTOR,
    requested_name,
)
from qwen_tts_lit.runs.folder import BEST_FILE
from qwen_tts_lit.synthesis.presets import MAX_NEW_TOKENS
from qwen_tts_lit.upstream.decoding import decoding_problem


@dataclass(frozen=True)
class JudgeSettings:
    """Which judge models score the audio (each loads once per run)."""

    asr: bool = True
    """False: no ASR judge (rows get no WER/CER, reported as null); the rule then ranks on the other metrics and
    the chosen cell's record says so. The opt-out for held-out languages no available ASR model speaks."""
    asr_model: str | None = None
    """faster-whisper model name or local folder: None = the bundled tiny.en (English only: the offline demo and
    tests); "large-v3" for real runs in any of Qwen3-TTS's languages."""
    asr_device: str = "cpu"
    """Device for ASR ("cpu", "cuda", "auto")."""
    asr_compute_type: str = "int8"
    """CTranslate2 precision: int8 on CPU, float16 on GPU."""
    asr_beam_size: int = 5
    """ASR beam width."""
    asr_language: str | None = "en"
    """Spoken language for ASR where a held-out row names none ("auto"); rows with a language are transcribed in
    it. None = detect each clip's; tiny.en knows only English."""
    asr_batch_size: int = 8
    """Clips (30 s Whisper windows) transcribed together by faster-whisper's batched pipeline (its default)."""
    speaker_device: str | None = None
    """Device for the resemblyzer speaker encoder (None: asr_device; "auto": cuda when visible)."""
    model_speaker_sim: bool = True
    """Also score speaker similarity with the model's own speaker encoder (spk_sim_model)."""
    dnsmos: bool = True
    """Score naturalness with DNSMOS (Microsoft's models, bundled by speechmos: offline): rows get dnsmos_sig,
    dnsmos_bak, dnsmos_ovrl (P.835) and dnsmos_p808, 1-5, higher is better, and real_dnsmos_* of their real
    recording; False: all null. On the speaker judge's device (a GPU only with onnxruntime-gpu)."""


@dataclass(frozen=True)
class InstructProbeSettings:
    """The instruction-retention probe (docs/instructions_probe.md): each probed cell speaks its first held-out
    sentences plainly and with each probe's instructions; rows get the effects, cells the share of the base model's
    effect they keep (instruct_retention). Meant for a base that follows instructions (the 1.7B CustomVoice): a
    Base checkpoint ignores them, so its base effects stay under the noise floors and retention is NaN with that
    reason; the 0.6B CustomVoice refuses them (upstream drops instruct for it)."""

    enabled: bool = False
    """Run the probe (off by default: it needs an instruction-following model and costs generations)."""
    every_n_epochs: int = 3
    """Probe the cells of every Nth epoch (epochs 3, 6, ... by default; the last one is not forced); the base model
    is probed once, with the zero-shot baselines. A probed epoch's probe costs about half its evaluation with the
    defaults, so every 3rd keeps it under a quarter of evaluation on average (benchmarks/eval_cost.py
    --instruct-probe); 1 probes every epoch."""
    scales: tuple[float, ...] | None = None
    """LoRA strengths probed in a probed epoch; None: the epoch's best scale by the rule (one cell per epoch: the
    cell that would be chosen). A gate on retention (rule.min_instruct_retention) passes only probed cells."""
    sentences: int = 2
    """Held-out sentences probed (the first N, each with the seed evaluation gives it); each costs one plain and one
    instructed generation per instruction (7 with every probe) per probed cell."""
    probes: tuple[str, ...] = PROBE_NAMES
    """Which probes: pace (slow vs fast: speech rate), loudness (loud vs soft: level), whisper (level), pitch (high
    vs low: median F0)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "probes", tuple(self.probes))  # a YAML list arrives as a list
        if self.scales is not None:
            object.__setattr__(self, "scales", tuple(sorted({float(x) for x in self.scales})))

    def problems(self) -> list[str]:
        """Every setting that cannot work, one message each (empty when fine)."""
        from qwen_tts_lit.model.lora import check_lora_scale  # here: it loads torch (see EvalSettings.problems)

        bad = [f"EvalSuite.instruct_probe.{name} {getattr(self, name)}: must be >= 1"
               for name in ("every_n_epochs", "sentences") if getattr(self, name) < 1]  # fmt: skip
        unknown = [name for name in self.probes if name not in PROBE_NAMES]
        bad += [f"EvalSuite.instruct_probe.probes: {', '.join(map(repr, unknown))} not among "
                f"{', '.join(PROBE_NAMES)}"] if unknown else []  # fmt: skip
        bad += [] if self.probes else ["EvalSuite.instruct_probe.probes: name at least one probe"]
        for scale in self.scales or ():
            try:
                check_lora_scale(float(scale), "EvalSuite.instruct_probe.scales:")
            except UserError as error:
                bad.append(str(error))
        return bad


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation per epoch: the held-out sentences x LoRA strengths, judged and ranked."""

    scales: tuple[float, ...] = (0.2, 0.3, 0.35, 0.5, 1.0)
    """LoRA strengths to synthesize at (the seed guide's sweep; 1.0 = as trained, 0 = the base model). A fully
    fine-tuned model has no adapters to scale and is evaluated at 1.0 only."""
    num_utterances: int = 8
    """Held-out sentences per cell (the first N of the manifest)."""
    heldout: str | None = None
    """JSONL of held-out sentences with real recordings (text, audio[, id, language]); None: the prepared dataset's
    val.jsonl."""
    seed: int = 1234
    """Sentence i is sampled with seed + i in every cell, so cells differ only by the weights."""
    every_n_epochs: int = 1
    """Evaluate every N epochs (and always after the last one)."""
    max_new_tokens: int | None = None
    """Frame cap of every generation; None: a generous cap from each text's length."""
    batch_size: int = 40
    """Generations per generate call: an epoch's sentences x scales are spoken together, this many at a time (the
    default 8 x 5 grid in one call); lower it if evaluation runs out of GPU memory."""
    decoding: str = "dynamic"
    """Key/value cache of those generate calls: dynamic (upstream's), static (preallocated; the same codes) or
    cuda_graphs (static, the code predictor replayed from CUDA graphs; static without CUDA). docs/gpu_check.md."""
    judges: JudgeSettings = field(default_factory=JudgeSettings)
    """ASR / speaker-similarity backends."""
    rule: SelectionRule = field(default_factory=SelectionRule)
    """How the best (epoch, scale) cell is picked."""
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    """Zero-shot baselines of the base model scored before the first epoch on the same sentences, seeds and judges,
    as baseline rows: xvector (the training x-vector, adapters at scale 0), voice_clone (upstream's
    generate_voice_clone from the first training clip as recorded and its transcript, in its default streaming
    layout), voice_clone_non_streaming (the same call with non_streaming_mode=True, the layout training uses); empty
    = none."""
    instruct_probe: InstructProbeSettings = field(default_factory=InstructProbeSettings)
    """The instruction-retention probe (enabled, every_n_epochs, scales, sentences, probes); off by default."""
    presets_kept: int = 2
    """Held-out sentences each preset speaker of the base model (a CustomVoice checkpoint's; a Base has none)
    speaks at scale 0 and at the chosen cell when fit ends, to measure whether the fine-tune kept its voice
    (the chosen cell's presets_kept); presets x N x 2 generations once per run;
    0: off."""

    def __post_init__(self) -> None:
        bad = self.problems()
        if bad:
            raise UserError("\n".join(bad))  # one line per problem
        object.__setattr__(self, "scales", tuple(sorted({float(s) for s in self.scales})))
        renamed = [name for name in self.baselines if name in RENAMED_SETTINGS]
        if renamed:  # an older config keeps working, and says what the name is now
            names = ", ".join(f"{name!r} is now {requested_name(name)!r}" for name in renamed)
            warnings.warn(f"EvalSuite.baselines: {names} (generate_voice_clone as users call it, upstream's default "
                          f"streaming layout); the non-streaming layout the old name scored is "
                          f"{VOICE_CLONE_NON_STREAMING!r}", stacklevel=3)  # fmt: skip
        object.__setattr__(self, "baselines", tuple(dict.fromkeys(requested_name(name) for name in self.baselines)))
        if self.max_new_tokens is not None and self.max_new_tokens > MAX_NEW_TOKENS:
            warnings.warn(
                f"EvalSuite.max_new_tokens={self.max_new_tokens} is above the ceiling {MAX_NEW_TOKENS}: a runaway "
                f"generation at a strong scale would run for minutes per sentence. Capped at {MAX_NEW_TOKENS}.",
                stacklevel=3,
            )
            object.__setattr__(self, "max_new_tokens", MAX_NEW_TOKENS)

    def problems(self) -> list[str]:
        """Every setting that cannot work, one message each (empty when fine)."""
        from qwen_tts_lit.model.lora import check_lora_scale  # here: model/lora.py loads torch, and evaluate's
        # --help reads these settings (its --judges.* and --rule.* options)

        bad = [] if self.scales else ["EvalSuite.scales: give at least one LoRA strength"]
        for scale in self.scales:
            try:
                check_lora_scale(float(scale), "EvalSuite.scales:")
            except UserError as error:
                bad.append(str(error))
        for name in ("num_utterances", "every_n_epochs", "batch_size"):
            if getattr(self, name) < 1:
                bad.append(f"EvalSuite.{name} {getattr(self, name)}: must be >= 1")
        if self.presets_kept < 0:
            bad.append(f"EvalSuite.presets_kept {self.presets_kept}: must be >= 0 (0: off)")
        bad += [f"EvalSuite.baselines: {mode!r} is not one of {', '.join(BASELINES)}"
                for mode in self.baselines if requested_name(mode) not in BASELINES]  # fmt: skip
        problem = decoding_problem(self.decoding, "EvalSuite.decoding")
        bad += [problem] if problem else []
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            bad.append(f"EvalSuite.max_new_tokens {self.max_new_tokens}: must be >= 1")
        return bad + self._naturalness_problems() + self._probe_problems()

    def _probe_problems(self) -> list[str]:
        """The probe's own settings, and a rule that gates or ranks on retention needs the probe."""
        bad = self.instruct_probe.problems()
        rule = self.rule
        named = [f"rule.{key} {RETENTION}" for key, names in (("primary", (rule.primary,)), ("tie_break",
                 rule.tie_break)) if RETENTION in names]  # fmt: skip
        named += [f"rule.min_instruct_retention {rule.min_instruct_retention}"] if (
            rule.min_instruct_retention is not None) else []  # fmt: skip
        if not self.instruct_probe.enabled:
            bad += [f"EvalSuite.{what}: needs the instruction probe (instruct_probe.enabled: true)" for what in named]
        elif XVECTOR not in self.baselines:  # its rows hold the reference: the base model's effects with the voice
            bad.append(f"EvalSuite.instruct_probe: needs the {XVECTOR!r} baseline (the base model's effects are the "
                       f"reference retention divides by); add it to EvalSuite.baselines")  # fmt: skip
        return bad

    def _naturalness_problems(self) -> list[str]:
        """A rule that ranks or gates on DNSMOS needs the DNSMOS judge (else every cell would miss the metric)."""
        if self.judges.dnsmos:
            return []
        rule = self.rule
        named = [f"rule.{key} {name}" for key, names in (("primary", (rule.primary,)), ("tie_break", rule.tie_break))
                 for name in names if name in DNSMOS_FIELDS]  # fmt: skip
        named += [f"rule.min_dnsmos_ovrl {rule.min_dnsmos_ovrl}"] if rule.min_dnsmos_ovrl is not None else []
        return [f"EvalSuite.{what}: needs the DNSMOS judge, which judges.dnsmos: false switches off" for what in named]

    @classmethod
    def from_args(cls, args: dict | None) -> EvalSettings:
        """Settings from a config's ``EvalSuite`` init args (judges and rule as nested dicts); missing keys keep
        the defaults above, unknown keys are ignored."""
        args = dict(args or {})
        known = {f.name for f in fields(cls)}
        nested = ("judges", "rule", "instruct_probe")
        values = {k: v for k, v in args.items() if k in known and k not in nested}
        for name in ("scales", "baselines"):
            if name in values:
                values[name] = tuple(values[name])
        judges = _known(JudgeSettings, args.get("judges"))
        rule = _known(SelectionRule, args.get("rule"))
        probe = _known(InstructProbeSettings, args.get("instruct_probe"))
        return cls(**values, judges=JudgeSettings(**judges), rule=SelectionRule(**rule),
                   instruct_probe=InstructProbeSettings(**probe))  # fmt: skip

    def with_overrides(self, **changes) -> EvalSettings:
        """A copy with every non-None value of ``changes`` applied (top-level fields only)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _known(cls: type, values: dict | None) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (values or {}).items() if k in names}


def asr_problem(
    judges: JudgeSettings,
    languages: Iterable[str],
    source: str,
    settings: tuple[str, str] = ("EvalSuite judges.asr_model", "judges.asr: false"),
) -> str | None:
    """Why the ASR judge cannot score held-out rows in ``languages`` (names or codes; "auto" = ``asr_language``):
    an English-only model asked for another language. None when it can (or ASR is off). ``settings``: how the
    user names the model setting and the opt-out (a config's, or ``evaluate``'s flags)."""
    from qwen_tts_lit.languages import is_auto, language_code
    from qwen_tts_lit.metrics.asr import english_only_asr

    codes = {language_code(judges.asr_language if is_auto(lang) else lang) or "detect" for lang in languages}
    other = sorted(codes - {"en"})
    if not judges.asr or not other or not english_only_asr(judges.asr_model):
        return None
    model = judges.asr_model or "the bundled tiny.en"
    return (f"{source}: held-out language(s) {', '.join(other)}, but the ASR judge ({model}) is English-only, so "
            f"every WER/CER would be meaningless. Set {settings[0]} to a multilingual faster-whisper model (large-v3, "
            f"or a local model folder), or {settings[1]} to evaluate without ASR (the rule then ranks on speaker "
            f"similarity and says so in {BEST_FILE})")  # fmt: skip
