"""Small listening tests on disk in the exact format `listen` writes (docs/listening.md: key.json format 1 and the
raters' CSV columns), with answers chosen by a function of what each rater heard: planted preferences, careless
raters, A/B sides swapped per rater as the page does."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COLUMNS = "test_id,design,rater,trial,trial_kind,order,stimulus,stimulus_b,rating,seconds,saved_at".split(",")
SCALES = {
    "mos": {"min": 1, "max": 5},
    "smos": {"min": 1, "max": 5},
    "cmos": {"min": -3, "max": 3},
    "ab": {"choices": ["A", "B", "none"]},
    "mushra": {"min": 0, "max": 100},
}
TEST_ID = "5be1f00d"


def opaque(*parts: str) -> str:
    """A file name that reveals nothing, stable for the same parts (as the bundle's random hex names)."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()[:8] + ".wav"


@dataclass(frozen=True)
class Shown:
    """What a rater heard in one answer: the trial, its kind and item, and the systems (B: None unless a pair)."""

    trial: str
    kind: str
    item: str
    system: str
    system_b: str | None
    rater: str


def make_key(
    design: str,
    systems: dict[str, str],
    items: list[str],
    attention: int = 0,
    practice: int = 1,
    test_id: str = TEST_ID,
) -> dict:
    """key.json (format 1) of a test of ``systems`` ({id: role}) on ``items``. mos/smos: one trial per stimulus;
    mushra: one trial per item with every system (the "real" one also as the open reference); cmos/ab: one trial per
    item per pair of systems, plus ``attention`` identical pairs. ``practice`` trials on an item of their own."""
    labels = {s: f"{s} label" for s in systems}
    stimuli, trials = {}, []

    def stimulus(system: str, item: str) -> str:
        name = opaque(test_id, system, item)
        stimuli[name] = {"system": system, "item": item, "text": f"sentence {item}"}
        return name

    real = next((s for s, role in systems.items() if role == "real"), None)
    for kind, its in (("practice", [f"practice{k}" for k in range(practice)]), ("test", items)):
        for item in its:
            if design in ("mos", "smos"):
                for system in systems:
                    reference = stimulus(real, item) if design == "smos" and real else None
                    trials.append({"trial": f"{kind}-{item}-{system}", "kind": kind, "item": item,
                                   "stimuli": [stimulus(system, item)], "reference": reference})  # fmt: skip
            elif design == "mushra":
                names = [stimulus(system, item) for system in systems]
                trials.append({"trial": f"{kind}-{item}", "kind": kind, "item": item, "stimuli": names,
                               "reference": stimulus(real, item) if real else None})  # fmt: skip
            else:
                for first, second in itertools.combinations(systems, 2):
                    trials.append({"trial": f"{kind}-{item}-{first}-{second}", "kind": kind, "item": item,
                                   "stimuli": [stimulus(first, item), stimulus(second, item)],
                                   "reference": None})  # fmt: skip
    for k in range(attention):
        item, system = items[k % len(items)], list(systems)[k % len(systems)]
        same = stimulus(system, item)
        trials.append({"trial": f"attention-{k}", "kind": "attention", "item": item, "stimuli": [same, same],
                       "reference": None})  # fmt: skip
    return {
        "format": 1,
        "test_id": test_id,
        "design": design,
        "scale": SCALES[design],
        "systems": {s: {"label": labels[s], "role": role, "source": f"runs/{s}"} for s, role in systems.items()},
        "stimuli": stimuli,
        "trials": trials,
        "created": "2026-12-07T12:00:00+00:00",
        "sources": {"note": "tests/helpers/listening.py"},
    }


def write_key(folder: Path, key: dict) -> Path:
    path = folder / "key.json"
    path.write_text(json.dumps(key, indent=1))
    return path


def answers(key: dict, rater: str, rate: Callable[[Shown], object]) -> list[dict]:
    """The CSV rows one rater's session writes: trials in a rater-seeded order, A/B sides swapped at random per
    rater and trial, one row per rated stimulus (mos/smos/mushra) or per pair (cmos/ab); ``rate`` answers each."""
    rng = random.Random(rater)
    trials = list(key["trials"])
    rng.shuffle(trials)
    system_of = {name: s["system"] for name, s in key["stimuli"].items()}
    rows = []
    for order, trial in enumerate(trials):
        base = {"test_id": key["test_id"], "design": key["design"], "rater": rater, "trial": trial["trial"],
                "trial_kind": trial["kind"], "order": order, "seconds": 7.5,
                "saved_at": "2026-12-07T12:30:00+00:00"}  # fmt: skip
        if key["design"] in ("cmos", "ab"):
            a, b = trial["stimuli"]
            if rng.random() < 0.5:
                a, b = b, a
            shown = Shown(trial["trial"], trial["kind"], trial["item"], system_of[a], system_of[b], rater)
            rows.append({**base, "stimulus": a, "stimulus_b": b, "rating": rate(shown)})
        else:
            for name in trial["stimuli"]:
                shown = Shown(trial["trial"], trial["kind"], trial["item"], system_of[name], None, rater)
                rows.append({**base, "stimulus": name, "stimulus_b": "", "rating": rate(shown)})
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_sessions(folder: Path, key: dict, raters: list[str], rate: Callable[[Shown], object]) -> list[Path]:
    """One CSV per rater (named as the page names its download: <test_id>_<rater>.csv)."""
    return [write_rows(folder / f"{key['test_id']}_{r}.csv", answers(key, r, rate)) for r in raters]
