"""The trials of a test: which stimulus files there are (each one system speaking one sentence, under a random
name), what each trial plays, the practice trials and the attention checks. Pure apart from the names, which come
from ``names`` (a fresh random hex string per call): they must not be derivable from what a file holds.

Per design (the first system of the sources is the one the others are compared with):
- mos: one trial per (system, sentence), the real recordings included (the ceiling).
- smos: one trial per (synthetic system, sentence), that sentence's real recording as the reference; an attention
  check rates a copy of the reference itself (a good rater answers 5).
- cmos, ab: one trial per (sentence, other system): the first system as A, the other as B (the page swaps A and B
  per rater); an attention check plays one file as both A and B (a good rater answers 0, or "none").
- mushra: one trial per sentence: every synthetic system, a hidden copy of the reference and the low anchor (the
  reference low-passed at 3.5 kHz), the reference itself open beside them; the hidden reference is the check.
Practice trials repeat randomly chosen test trials (same files) under their own ids; the analysis drops them.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.listening.designs import Design
from qwen_tts_lit.listening.sources import REAL, Sources, System

ANCHOR = "anchor"
ANCHOR_SYSTEM = System(ANCHOR, "real recording low-passed at 3.5 kHz (ITU-R BS.1534-3 low anchor)", "anchor",
                       "made from the real recording by the builder")  # fmt: skip
PRACTICE, TEST, ATTENTION = "practice", "test", "attention"


@dataclass(frozen=True)
class Stimulus:
    """One audio file of the test: a system speaking a sentence (``anchor``: made from the real recording)."""

    file: str
    system: str
    item: str


@dataclass(frozen=True)
class Trial:
    """One trial as key.json records it."""

    trial: str
    kind: str
    item: str
    stimuli: tuple[str, ...]
    reference: str | None = None


@dataclass
class Plan:
    stimuli: dict[str, Stimulus]
    trials: list[Trial]
    systems: list[System]


def opaque_names(length: int = 4) -> Callable[[], str]:
    """A source of unique random hex names (``length`` bytes each)."""
    used: set[str] = set()

    def fresh() -> str:
        while (name := secrets.token_hex(length)) in used:
            pass
        used.add(name)
        return name

    return fresh


def plan_test(
    sources: Sources,
    design: Design,
    *,
    sentences: int | None = None,
    practice: int = 2,
    attention: int = 2,
    seed: int = 0,
    names: Callable[[], str] | None = None,
) -> Plan:
    """The stimuli and trials of ``design`` over the first ``sentences`` sentences (default all); ``seed`` picks the
    practice trials and the attention checks' sentences."""
    if sentences is not None and sentences < 1:
        raise UserError(f"--sentences {sentences}: must be at least 1")
    if practice < 0 or attention < 0:
        raise UserError("--practice and --attention: must be 0 or more")
    names = names or opaque_names()
    rng = random.Random(seed)
    items = [item.id for item in sources.items[:sentences]]
    synthetic = [system.id for system in sources.systems if system.id != REAL]
    stimuli: dict[str, Stimulus] = {}
    own: dict[tuple[str, str], str] = {}

    def new(system: str, item: str) -> str:
        file = f"{names()}.wav"
        stimuli[file] = Stimulus(file, system, item)
        return file

    def file_of(system: str, item: str) -> str:
        if (system, item) not in own:
            own[system, item] = new(system, item)
        return own[system, item]

    def trial(kind: str, item: str, played: list[str], reference: str | None = None) -> Trial:
        return Trial(names(), kind, item, tuple(played), reference)

    trials, systems = [], list(sources.systems)
    if design.name == "mos":
        trials = [trial(TEST, item, [file_of(system.id, item)]) for item in items for system in sources.systems]
    elif design.name == "smos":
        if not synthetic:
            raise UserError("smos: no synthetic system to rate against the real voice")
        trials = [
            trial(TEST, item, [file_of(system, item)], file_of(REAL, item)) for item in items for system in synthetic
        ]
        trials += [
            trial(ATTENTION, item, [new(REAL, item)], file_of(REAL, item)) for item in _draw(rng, items, attention)
        ]
    elif design.paired:
        first, others = sources.systems[0].id, [system.id for system in sources.systems[1:]]
        trials = [trial(TEST, item, [file_of(first, item), file_of(other, item)]) for item in items for other in others]
        trials += [trial(ATTENTION, item, [file_of(first, item)] * 2) for item in _draw(rng, items, attention)]
    elif design.multi:
        systems.append(ANCHOR_SYSTEM)
        for item in items:
            played = [file_of(system, item) for system in synthetic] + [new(REAL, item), new(ANCHOR, item)]
            trials.append(trial(TEST, item, played, file_of(REAL, item)))
    else:  # a new design needs its layout here
        raise UserError(f"--design {design.name}: no trial layout")
    tests = [t for t in trials if t.kind == TEST]
    trials = [Trial(names(), PRACTICE, t.item, t.stimuli, t.reference) for t in _draw(rng, tests, practice)] + trials
    return Plan(stimuli, trials, systems)


def _draw(rng: random.Random, population: list, count: int) -> list:
    """``count`` draws from ``population``: without replacement while it lasts, then again from a fresh pass."""
    drawn = []
    while len(drawn) < count and population:
        drawn += rng.sample(population, min(len(population), count - len(drawn)))
    return drawn
