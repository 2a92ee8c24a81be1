"""The instruction-retention probe's math: which instructions, what each should move, effects and retention (pure).

A model that follows instructions (Qwen3-TTS CustomVoice / VoiceDesign: ``instruct="..."``) should still follow them
after a fine-tune on a new voice. Our judges can measure a few instructions' effects: pace (speech rate), level and
pitch. Each :class:`Probe` pairs instructions with the measure they move and the direction (``sign``); the texts are
English, as Qwen3-TTS's instructions are usually given (upstream's demo suggests "Say it in a very angry tone", with a
Chinese example beside it), whatever the sentence's language.

Per held-out sentence, the model speaks the sentence plainly and once with each instruction (same text, same seed,
same scale): an instruction's effect is measure(instructed) - measure(plain) in a unit that compares across voices
and sentences (:func:`instruction_effect`): the log ratio of the articulation rates for pace, dB for level,
semitones for pitch. A probe's effect is its instructions' effects summed with their signs (slow vs fast: ln(fast
rate / slow rate), the plain clip cancels), so > 0 is "moved the way asked". Rows carry both (``row_fields``).

Retention (:func:`retention`) is a cell's probe effect over the base model's (zero-shot, the same sentences and
seeds): 1.0 kept it all, 0 lost it, < 0 reversed it, > 1 exaggerates it. It is NaN, with a reason, when the base
effect cannot be a reference: not measured, or below ``NOISE_FLOOR`` in the asked direction (the base model does
not follow that instruction measurably, so there is nothing to retain; a ratio to a number near 0 would be noise,
and a ratio to a number of the wrong sign would turn a kept effect into a lost one). It is never a silent number.

Field names (one owner: this module): per row ``instruct_<key>_effect`` (each instruction), ``instruct_<probe>_effect``
(each probe), ``instruct_<probe>_base_effect`` (the base model's on the same sentence, the reference) and
``instruct_<probe>_preset_effect`` (the base model with one of its own preset speakers, where it has them: what the
base model does with a voice it was built with); per cell the means of those and ``instruct_<probe>_retention``,
``instruct_<probe>_reason`` (why it is NaN; absent otherwise), ``instruct_retention`` (the worst probe's retention:
a gate on it requires every measurable probe to pass) and ``instruct_retention_probe`` (which one that is).
docs/instructions_probe.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RATE, LEVEL, PITCH = "rate", "level", "pitch"
UNITS = {RATE: "log ratio", LEVEL: "dB", PITCH: "semitones"}
# The smallest base effect that is a reference, per measure, in its unit: below it a probe is "not followed by the
# base model". A judgment, not a measurement of the model's sampling noise (espeak-ng is deterministic; no model here
# follows instructions): 5 % of pace is the speech-rate judge's own tolerance on known paces (docs/speech_rate.md),
# 1 dB about the smallest loudness step listeners hear, half a semitone a small but audible pitch step. The probe's
# instructions ask for far more (espeak-ng following them: 0.88, 13 dB, 4.3 dB, 12 semitones).
NOISE_FLOOR = {RATE: 0.05, LEVEL: 1.0, PITCH: 0.5}


@dataclass(frozen=True)
class Instruction:
    """One instruction: its short key (in field names), its text, and the way it should move its probe's measure."""

    key: str
    text: str
    sign: int  # +1: should raise the measure, -1: lower it


@dataclass(frozen=True)
class Probe:
    """Instructions that move one measure, and what a report calls their contrast."""

    name: str
    measure: str  # RATE, LEVEL or PITCH
    instructions: tuple[Instruction, ...]
    contrast: str  # "slow-vs-fast": what "retained 0.8 of the base model's ... effect" names

    @property
    def unit(self) -> str:
        return UNITS[self.measure]


PROBES = (
    Probe("pace", RATE, (Instruction("slow", "Speak very slowly.", -1),
                         Instruction("fast", "Speak very fast.", +1)), "slow-vs-fast"),
    Probe("loudness", LEVEL, (Instruction("soft", "Speak very softly and quietly.", -1),
                              Instruction("loud", "Speak very loudly.", +1)), "loud-vs-soft"),
    Probe("whisper", LEVEL, (Instruction("whisper", "Whisper.", -1),), "whisper-vs-plain"),
    Probe("pitch", PITCH, (Instruction("low", "Speak in a very low, deep voice.", -1),
                           Instruction("high", "Speak in a very high-pitched voice.", +1)), "high-vs-low"),
)  # fmt: skip
PROBE_NAMES = tuple(probe.name for probe in PROBES)


def probes_named(names: Iterable[str]) -> tuple[Probe, ...]:
    """The probes of ``names``, in PROBES' order; ValueError naming an unknown one."""
    names = tuple(names)
    unknown = [name for name in names if name not in PROBE_NAMES]
    if unknown:
        raise ValueError(f"unknown instruction probe(s) {', '.join(unknown)}; choose from {', '.join(PROBE_NAMES)}")
    return tuple(probe for probe in PROBES if probe.name in names)


def instruction_effect(measure: str, instructed: float | None, plain: float | None) -> float:
    """measure(instructed) - measure(plain) in the measure's unit: ln of the rate ratio (values: articulation rates,
    units per second), dB (values: levels in dBFS), semitones (values: F0 in Hz). NaN when either is missing, a rate
    or F0 not positive, or a level not finite (silence): an instruction that silences the voice has no measured
    effect, not an infinite one."""
    if instructed is None or plain is None:
        return math.nan
    instructed, plain = float(instructed), float(plain)
    if measure == LEVEL:
        return instructed - plain if math.isfinite(instructed) and math.isfinite(plain) else math.nan
    if not (instructed > 0 and plain > 0):  # NaN compares False
        return math.nan
    if measure == RATE:
        return math.log(instructed / plain)
    if measure == PITCH:
        return 12.0 * math.log2(instructed / plain)
    raise ValueError(f"unknown measure {measure!r}")


def probe_effect(probe: Probe, effects: Mapping[str, float]) -> float:
    """The probe's contrast from its instructions' effects ({key: effect}): sum of sign x effect (> 0: moved the
    way asked); NaN when any is NaN."""
    total = 0.0
    for instruction in probe.instructions:
        value = effects.get(instruction.key, math.nan)
        if value is None or math.isnan(value):
            return math.nan
        total += instruction.sign * value
    return total


def effect_field(name: str) -> str:
    """The row field of an instruction's or a probe's effect."""
    return f"instruct_{name}_effect"


def base_field(probe: str) -> str:
    """The row field of the base model's effect on the same sentence (the reference)."""
    return f"instruct_{probe}_base_effect"


def preset_field(probe: str) -> str:
    """The row field of the base model's effect with a preset speaker on the same sentence."""
    return f"instruct_{probe}_preset_effect"


def retention_field(probe: str) -> str:
    return f"instruct_{probe}_retention"


def reason_field(probe: str) -> str:
    return f"instruct_{probe}_reason"


RETENTION = "instruct_retention"  # a cell's worst probe retention: what the rule gates on or ranks by
RETENTION_PROBE = "instruct_retention_probe"
# Every per-row field a cell averages (selection's MEAN_FIELDS reads it).
MEAN_FIELDS = tuple(
    [effect_field(i.key) for p in PROBES for i in p.instructions]
    + [field for p in PROBES for field in (effect_field(p.name), base_field(p.name), preset_field(p.name))]
)


def row_fields(
    probes: Iterable[Probe], instructed: Mapping[str, float | None], plain: Mapping[str, float | None]
) -> dict[str, float]:
    """One sentence's effect fields. ``instructed``: {instruction key: its clip's value of its probe's measure};
    ``plain``: {measure: the plain clip's value}."""
    fields: dict[str, float] = {}
    for probe in probes:
        effects = {i.key: instruction_effect(probe.measure, instructed.get(i.key), plain.get(probe.measure))
                   for i in probe.instructions}  # fmt: skip
        fields |= {effect_field(key): value for key, value in effects.items()}
        fields[effect_field(probe.name)] = probe_effect(probe, effects)
    return fields


def retention(effect: float | None, base: float | None, measure: str) -> tuple[float, str | None]:
    """(cell effect / base effect, None), or (NaN, why) when there is no reference (see the module docstring)."""
    floor = NOISE_FLOOR[measure]
    if base is None or math.isnan(base):
        return math.nan, "the base model's effect was not measured"
    if base < floor:
        way = "the wrong way" if base < 0 else "too little"
        return math.nan, (f"the base model moves it {way} ({base:+.3g} {UNITS[measure]}, needs >= {floor:g}): "
                          "nothing to retain")  # fmt: skip
    if effect is None or math.isnan(effect):
        return math.nan, "this cell's effect was not measured"
    return float(effect) / float(base), None


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def cell_retention(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's retention fields from its mean effects (``MEAN_FIELDS`` averaged over its sentences): per probe the
    retention and, where NaN, why; the worst probe's as ``instruct_retention``. Empty for a cell without probe
    fields.
    The ratio of the means (not the mean of per-sentence ratios): one sentence whose base effect is near 0 cannot
    blow it up."""
    out: dict[str, Any] = {}
    for probe in PROBES:
        if effect_field(probe.name) not in cell and base_field(probe.name) not in cell:
            continue  # not probed (a probed cell has the fields, None where nothing could be measured)
        value, why = retention(cell.get(effect_field(probe.name)), cell.get(base_field(probe.name)), probe.measure)
        out[retention_field(probe.name)] = value
        if why:
            out[reason_field(probe.name)] = why
    measured = {name: value for name, value in out.items() if name.endswith("_retention") and not math.isnan(value)}
    if out:
        worst = min(measured, key=measured.get) if measured else None
        out[RETENTION] = measured[worst] if worst else math.nan
        out[RETENTION_PROBE] = worst[len("instruct_") : -len("_retention")] if worst else None
    return out


def retention_sentence(cell: Mapping[str, Any], probe: Probe) -> str:
    """Says "retained 0.80 of the base model's slow-vs-fast effect (+0.41 log ratio of +0.51)", or why it cannot."""
    value = cell.get(retention_field(probe.name))
    if not _present(value):
        why = cell.get(reason_field(probe.name)) or "not probed"
        return f"{probe.contrast}: no retention ({why})"
    effect, base = cell.get(effect_field(probe.name)), cell.get(base_field(probe.name))
    return (f"retained {value:.2f} of the base model's {probe.contrast} effect ({effect:+.3g} {probe.unit} of "
            f"{base:+.3g})")  # fmt: skip
