"""The order a rater hears a test in, as the page computes it (page/page.js implements the same steps; a browser
test compares the two), so an analysis or a test can reproduce any rater's presentation from the rater id alone.

- seed: FNV-1a (32-bit) of the UTF-8 bytes of ``test_id + ":" + rater``; the generator: mulberry32 of that seed,
  each draw a float in [0, 1). The test id is in the seed so one rater id gives different orders in two tests.
- the practice trials are shuffled, then the other trials (test and attention together), each by Fisher-Yates from
  the last position down (j = floor(draw * (i + 1))); the practice trials come first.
- then, trial by trial in that order: a paired design draws once (draw < 0.5: A and B swapped); MUSHRA shuffles the
  trial's stimuli (the same Fisher-Yates). Other designs draw nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MASK = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    return (a * b) & MASK


def fnv1a(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = _imul(value ^ byte, 0x01000193)
    return value


def mulberry32(seed: int) -> Callable[[], float]:
    state = seed & MASK

    def draw() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & MASK
        t = _imul(state ^ (state >> 15), state | 1)
        t = ((t + _imul(t ^ (t >> 7), t | 61)) & MASK) ^ t
        return ((t ^ (t >> 14)) & MASK) / 4294967296

    return draw


def shuffle(values: list, draw: Callable[[], float]) -> list:
    values = list(values)
    for i in range(len(values) - 1, 0, -1):
        j = int(draw() * (i + 1))
        values[i], values[j] = values[j], values[i]
    return values


def presentation(test_id: str, rater: str, trials: Sequence[dict], paired: bool, multi: bool) -> list[dict]:
    """The trials (key.json's ``trials`` entries) in the order ``rater`` hears them, each with its stimuli in the
    order shown (a paired design: [A, B] after the swap) and ``order`` (0-based position)."""
    draw = mulberry32(fnv1a(f"{test_id}:{rater}"))
    practice = shuffle([t for t in trials if t["kind"] == "practice"], draw)
    rest = shuffle([t for t in trials if t["kind"] != "practice"], draw)
    shown = []
    for position, trial in enumerate(practice + rest):
        stimuli = list(trial["stimuli"])
        if paired and draw() < 0.5:
            stimuli.reverse()
        elif multi:
            stimuli = shuffle(stimuli, draw)
        shown.append({**trial, "stimuli": stimuli, "order": position})
    return shown
