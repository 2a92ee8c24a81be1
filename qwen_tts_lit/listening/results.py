"""A listening test's ratings into its results: per system (MOS, SMOS, MUSHRA) or per pair of systems (CMOS, A/B),
with intervals, tests, the raters excluded and why, attention checks and counts (docs/listening_analysis.md).

The math is :mod:`~.statistics`; this module only groups the tidy records of :mod:`~.ratings` for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.listening.ratings import PAIRED_DESIGNS, Key, Rating, System, read_key, read_ratings
from qwen_tts_lit.listening.statistics import (
    REFERENCE_MIN,
    CrossedMean,
    Preference,
    SignTest,
    cell_means,
    crossed_mean,
    paired_crossed_difference,
    post_screening,
    preference,
    sign_test,
)

REAL_ROLE = "real"  # the hidden reference of a MUSHRA trial (key.json: the real recording's system)
ANCHOR_ROLE = "anchor"


@dataclass(frozen=True)
class SystemScore:
    """A system's mean rating over raters x items, with its crossed interval (and its counts)."""

    system: str
    label: str
    role: str
    score: CrossedMean


@dataclass(frozen=True)
class PairDifference:
    """``first - second`` on the (rater, item) cells both were rated on, with its interval and paired t-test."""

    first: str
    second: str
    difference: CrossedMean
    p_value: float | None


@dataclass(frozen=True)
class CmosPair:
    """How much better ``first`` sounded than ``second`` (-3..+3, whichever side each was shown on): the mean with
    its crossed interval, the sign test of the answers (ties reported) and the crossed t-test's p."""

    first: str
    second: str
    score: CrossedMean
    signs: SignTest
    p_crossed: float | None


@dataclass(frozen=True)
class AbPair:
    """A/B answers preferring ``first``, ``second`` or neither, and the binomial test of the decided ones."""

    first: str
    second: str
    preference: Preference
    raters: int
    items: int


@dataclass(frozen=True)
class AttentionCheck:
    """A rater's attention trials and how many they failed (CMOS/AB: an identical pair answered as different;
    MUSHRA: the hidden reference rated below 90)."""

    rater: str
    trials: int
    failed: int


@dataclass
class ListeningResults:
    """Everything :func:`analyse_listening` found; the tables (:mod:`~.tables`) and notebooks read it."""

    design: str
    test_id: str
    key_path: Path
    rating_paths: list[Path]
    systems: dict[str, System]
    scores: list[SystemScore] = field(default_factory=list)  # mos, smos, mushra
    differences: list[PairDifference] = field(default_factory=list)  # mos, smos, mushra
    cmos: list[CmosPair] = field(default_factory=list)
    ab: list[AbPair] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # rater -> why (mushra post-screening)
    attention: list[AttentionCheck] = field(default_factory=list)
    raters: int = 0  # raters whose answers count (after exclusion)
    items: int = 0
    ratings: int = 0  # answers that count (test trials of the raters kept)


def analyse_listening(
    rating_paths: Sequence[Path | str], key_path: Path | str, screen_anchor: bool = True
) -> ListeningResults:
    """Read the key and the ratings and compute the design's results. ``screen_anchor``: for MUSHRA, also exclude
    a rater who rates the anchor above 90 in more than 15 % of trials (BS.1534-3; the hidden-reference rule always
    applies)."""
    key = read_key(key_path)
    ratings = read_ratings(list(rating_paths), key)
    results = ListeningResults(key.design, key.test_id, Path(key_path), [Path(p) for p in rating_paths], key.systems)
    tests = [r for r in ratings if r.kind == "test"]
    results.attention = _attention(key, ratings)
    if key.design == "mushra":
        results.excluded = _mushra_screening(key, tests, screen_anchor)
        tests = [r for r in tests if r.rater not in results.excluded]
    if not tests:
        raise UserError(f"{rating_paths[0]}: no test trial answered by a rater who counts (practice and attention "
                        "trials are not scored)")  # fmt: skip
    results.raters = len({r.rater for r in tests})
    results.items = len({r.item for r in tests})
    results.ratings = len(tests)
    if key.design in PAIRED_DESIGNS:
        for first, second, chosen in _pairs(key, tests):
            if key.design == "cmos":
                results.cmos.append(_cmos_pair(key, first, second, chosen))
            else:
                results.ab.append(_ab_pair(first, second, chosen))
    else:
        _scores(key, tests, results)
    return results


def _scores(key: Key, tests: list[Rating], results: ListeningResults) -> None:
    """MOS, SMOS, MUSHRA: each system's mean and each pair's paired difference."""
    cells = {}
    for system, info in key.systems.items():
        mine = [r for r in tests if r.system == system]
        if not mine:
            continue
        values, raters, items = [float(r.rating) for r in mine], [r.rater for r in mine], [r.item for r in mine]
        results.scores.append(SystemScore(system, info.label, info.role, crossed_mean(values, raters, items)))
        cells[system] = cell_means(values, raters, items)
    for first, second in itertools.combinations(cells, 2):
        difference = paired_crossed_difference(cells[first], cells[second])
        results.differences.append(PairDifference(first, second, difference, difference.p_value()))


def _pairs(key: Key, tests: list[Rating]) -> list[tuple[str, str, list[tuple[Rating, int | float]]]]:
    """CMOS and A/B answers by system pair, the pair in the key's order of systems, each answer turned to "for
    ``first``": CMOS +3 = first much better; A/B +1 = first preferred, -1 = second, 0 = none."""
    order = list(key.systems)
    grouped: dict[tuple[str, str], list[tuple[Rating, int | float]]] = {}
    for r in tests:
        if r.system == r.system_b:  # the same system on both sides: no comparison to score
            continue
        first, second = sorted((r.system, r.system_b), key=order.index)
        if key.design == "cmos":  # the rating is B compared with A
            value = r.rating if r.system_b == first else -r.rating
        else:
            chosen = {"A": r.system, "B": r.system_b}.get(r.rating)
            value = 0 if chosen is None else (1 if chosen == first else -1)
        grouped.setdefault((first, second), []).append((r, value))
    return [(first, second, answers) for (first, second), answers in sorted(grouped.items(), key=lambda kv:
            (order.index(kv[0][0]), order.index(kv[0][1])))]  # fmt: skip


def _cmos_pair(key: Key, first: str, second: str, answers: list[tuple[Rating, float]]) -> CmosPair:
    values = [v for _, v in answers]
    score = crossed_mean(values, [r.rater for r, _ in answers], [r.item for r, _ in answers])
    return CmosPair(first, second, score, sign_test(values), score.p_value())


def _ab_pair(first: str, second: str, answers: list[tuple[Rating, int]]) -> AbPair:
    raters, items = {r.rater for r, _ in answers}, {r.item for r, _ in answers}
    return AbPair(first, second, preference(v for _, v in answers), len(raters), len(items))


def _attention(key: Key, ratings: list[Rating]) -> list[AttentionCheck]:
    """Per rater: CMOS/AB attention trials (an identical pair: a non-zero CMOS answer or an A/B choice fails it);
    MUSHRA: the hidden reference in each test trial (below 90 fails it). MOS/SMOS attention trials are counted."""
    failed: dict[str, list[bool]] = {}
    for r in ratings:
        if key.design == "mushra":
            if r.kind == "test" and key.systems[r.system].role == REAL_ROLE:
                failed.setdefault(r.rater, []).append(float(r.rating) < REFERENCE_MIN)
        elif r.kind == "attention":
            same = r.stimulus == r.stimulus_b or r.system == r.system_b
            if key.design == "cmos":
                wrong = same and r.rating != 0
            elif key.design == "ab":
                wrong = same and r.rating != "none"
            else:
                wrong = False  # no expected answer is written in the key for a MOS/SMOS attention trial
            failed.setdefault(r.rater, []).append(wrong)
    return [AttentionCheck(rater, len(flags), sum(flags)) for rater, flags in failed.items()]


def _mushra_screening(key: Key, tests: list[Rating], screen_anchor: bool) -> dict[str, str]:
    reference: dict[str, list[float]] = {}
    anchor: dict[str, list[float]] = {}
    for r in tests:
        role = key.systems[r.system].role
        if role == REAL_ROLE:
            reference.setdefault(r.rater, []).append(float(r.rating))
        elif role == ANCHOR_ROLE:
            anchor.setdefault(r.rater, []).append(float(r.rating))
    return post_screening(reference, anchor if screen_anchor else None)
