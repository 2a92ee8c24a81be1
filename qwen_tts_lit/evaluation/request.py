"""``evaluate``'s options (one documented field per flag); importing this module loads nothing heavy."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path

import docstring_parser

from qwen_tts_lit.evaluation.settings import JudgeSettings
from qwen_tts_lit.metrics.selection import SelectionRule


def changes_of(settings: type, name: str) -> type:
    """A frozen dataclass with every field of the settings dataclass ``settings``, each optional and None by default
    (None: keep the run's value), documented by the same docstrings: the settings own their names, types and help;
    this only makes each of them optional. jsonargparse reads the help from the class docstring's Args section (a
    made class has no source for attribute docstrings)."""
    hints, parsed = typing.get_type_hints(settings), docstring_parser.parse_from_object(settings)
    docs = {param.arg_name: " ".join((param.description or "").split()) for param in parsed.params}
    made = make_dataclass(
        name,
        [(item.name, hints[item.name] | None, field(default=None)) for item in dataclasses.fields(settings)],
        frozen=True,
    )
    made.__module__ = __name__  # so that pickling and jsonargparse's import path find it here
    args = "".join(f"    {item.name}: {docs.get(item.name, '')}\n" for item in dataclasses.fields(settings))
    made.__doc__ = f"{parsed.short_description} Each default: the run's.\n\nArgs:\n{args}"
    return made


JudgeChanges = changes_of(JudgeSettings, "JudgeChanges")
RuleChanges = changes_of(SelectionRule, "RuleChanges")


def _given(changes) -> dict:
    return {item.name: getattr(changes, item.name) for item in dataclasses.fields(changes)
            if getattr(changes, item.name) is not None}  # fmt: skip


@dataclass(frozen=True)
class EvaluateRequest:
    """re-score a finished run's saved epochs (e.g. with a stronger ASR model) and choose again

    Synthesize the held-out sentences for each saved epoch x lora_scale, score them, replace those cells' rows in
    the run's evaluation records and rebuild the chosen cell and the report (with --baselines alone, only the
    zero-shot rows are scored and added). Every default not given here (scales,
    sentences, seed, rule, judges) is the one the run's EvalSuite used, read from the run's saved config.
    """

    run: Path
    """Run folder (runs/NAME/version_N)."""
    epochs: tuple[int, ...] | None = None
    """Epochs to score (default: every saved epoch; with --baselines: none, their rows are kept)."""
    scales: tuple[float, ...] | None = None
    """LoRA strengths (default: the run's EvalSuite scales)."""
    heldout: Path | None = None
    """JSONL of held-out sentences (default: those the run evaluated)."""
    num_utterances: int | None = None
    """First N held-out sentences (default: all of them)."""
    seed: int | None = None
    """Sentence i uses seed + i (default: the run's)."""
    batch_size: int | None = None
    """Generations per generate call (default: the run's; that value reproduces its audio byte for byte)."""
    decoding: str | None = None
    """Key/value cache of generate: dynamic, static or cuda_graphs (default: the run's; all give the same codes)."""
    baselines: bool = False
    """Score the base model zero-shot (x-vector only, and cloning in context from the first training clip) and add
    those rows alone: the epochs' rows are kept as they are unless --epochs names some to score again."""
    judges: JudgeChanges = field(default_factory=JudgeChanges)
    """Judges, spelled as in a fit config's EvalSuite (--judges.asr_model large-v3); each default: the run's."""
    rule: RuleChanges = field(default_factory=RuleChanges)
    """Rule, spelled as in a fit config's EvalSuite (--rule.primary cer); each default: the run's."""
    device: str = field(default="cpu", metadata={"metavar": "DEVICE"})
    """Device for the TTS model: cpu, cuda, cuda:N or auto."""

    def epochs_to_score(self, saved: list[int]) -> list[int]:
        """The epochs this request scores: those given, else none when it adds the baselines (a full re-evaluation of
        a real run takes hours; the baselines alone, minutes), else every saved one."""
        if self.epochs:
            return list(self.epochs)
        return [] if self.baselines else list(saved)

    def judge_overrides(self) -> dict:
        """The judge settings given, to replace the run's (``dataclasses.replace(saved.judges, **...)``)."""
        return _given(self.judges)

    def rule_overrides(self) -> dict:
        """The rule settings given, to replace the run's."""
        return _given(self.rule)
