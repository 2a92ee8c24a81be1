"""Reading a listening test's key (key.json, format 1) and the raters' CSVs into tidy records (docs/listening.md
has both formats). Every problem is one :class:`~qwen_tts_lit.errors.UserError` naming the file, the row (as a
spreadsheet numbers it: the header is row 1) and the field; nothing is guessed.

Practice trials are dropped here; attention trials are kept, marked by ``kind``, so the analysis can screen raters
with them and leave them out of the scores. A rater who rated the same stimulus of the same trial twice (two CSVs of
one session, or one rater id typed by two people) is refused, naming both rows: which answer counts is for the
experimenter to decide, not for the analysis to guess.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.errors import UserError

KEY_FORMAT = 1
DESIGNS = ("mos", "smos", "cmos", "ab", "mushra")
PAIRED_DESIGNS = ("cmos", "ab")  # one row per trial, a pair of stimuli shown as A and B
COLUMNS = (
    "test_id", "design", "rater", "trial", "trial_kind", "order",
    "stimulus", "stimulus_b", "rating", "seconds", "saved_at",
)  # fmt: skip
KINDS = ("test", "practice", "attention")


@dataclass(frozen=True)
class System:
    """A system of the key: its label and role ("tuned", "baseline", "real", "anchor", "variant", "run")."""

    label: str
    role: str


@dataclass(frozen=True)
class Trial:
    """A trial of the key."""

    kind: str
    item: str
    stimuli: tuple[str, ...]
    reference: str | None


@dataclass(frozen=True)
class Key:
    """A listening test's key.json, read and checked."""

    path: Path
    test_id: str
    design: str
    scale: dict
    systems: dict[str, System]  # in the key's order
    stimuli: dict[str, tuple[str, str]]  # file -> (system, item)
    trials: dict[str, Trial]

    def system_of(self, stimulus: str) -> str:
        return self.stimuli[stimulus][0]


@dataclass(frozen=True)
class Rating:
    """One answer. mos/smos/mushra: the rating of ``stimulus`` (a number). cmos/ab: the trial's pair as shown
    (``stimulus`` as A, ``stimulus_b`` as B), ``rating`` a number -3..3 (B compared with A) or "A"/"B"/"none"."""

    source: Path
    row: int
    rater: str
    trial: str
    kind: str  # "test" or "attention" (practice is dropped)
    item: str
    stimulus: str
    system: str
    stimulus_b: str | None
    system_b: str | None
    rating: float | str


def _key_error(path: Path, where: str, problem: str) -> UserError:
    return UserError(f"{path}, {where}: {problem}")


def read_key(path: Path | str) -> Key:
    """key.json, checked: format 1, a known design and its scale, every trial's stimuli in ``stimuli`` and every
    stimulus's system in ``systems``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: listening-test key not found (the key.json that listen wrote beside the test)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a listening-test key (JSON: {error})") from error
    if not isinstance(data, dict):
        raise _key_error(path, "top level", "needs a JSON object")
    for field in ("format", "test_id", "design", "scale", "systems", "stimuli", "trials"):
        if field not in data:
            raise _key_error(path, f"field {field}", "missing")
    if data["format"] != KEY_FORMAT:
        raise _key_error(path, "field format", f"{data['format']!r}: this version reads format {KEY_FORMAT}")
    design = data["design"]
    if design not in DESIGNS:
        raise _key_error(path, "field design", f"{design!r}: one of {', '.join(DESIGNS)}")
    scale = _checked_scale(path, design, data["scale"])
    try:
        systems = {str(k): System(str(v.get("label", k)), str(v["role"])) for k, v in data["systems"].items()}
        stimuli = {str(k): (str(v["system"]), str(v["item"])) for k, v in data["stimuli"].items()}
    except (AttributeError, KeyError, TypeError) as error:
        raise _key_error(path, "systems/stimuli", f"each entry needs its fields ({error!r} missing)") from error
    for name, (system, _) in stimuli.items():
        if system not in systems:
            raise _key_error(path, f"stimuli.{name}.system", f"{system!r} is not one of the systems")
    trials = {}
    for position, entry in enumerate(data["trials"]):
        trial = _checked_trial(path, position, entry, stimuli)
        if str(entry["trial"]) in trials:  # the CSVs name trials by id: two with one id could not be told apart
            raise _key_error(path, f"trials[{position}].trial", f"{entry['trial']!r} is the id of an earlier trial")
        if design in PAIRED_DESIGNS and len(trial.stimuli) != 2:
            raise _key_error(path, f"trials[{position}].stimuli", f"a {design} trial plays two files (A and B)")
        trials[str(entry["trial"])] = trial
    return Key(path, str(data["test_id"]), design, scale, systems, stimuli, trials)


def _checked_scale(path: Path, design: str, scale) -> dict:
    if not isinstance(scale, dict):
        raise _key_error(path, "field scale", "needs an object")
    if design == "ab":
        if not isinstance(scale.get("choices"), list):
            raise _key_error(path, "field scale", 'needs "choices" for an A/B test')
        return scale
    if not all(isinstance(scale.get(k), int | float) for k in ("min", "max")) or scale["min"] >= scale["max"]:
        raise _key_error(path, "field scale", 'needs numbers "min" < "max"')
    return scale


def _checked_trial(path: Path, position: int, entry, stimuli: dict) -> Trial:
    where = f"trials[{position}]"
    if not isinstance(entry, dict) or not all(k in entry for k in ("trial", "kind", "item", "stimuli")):
        raise _key_error(path, where, 'needs "trial", "kind", "item" and "stimuli"')
    if entry["kind"] not in KINDS:
        raise _key_error(path, f"{where}.kind", f"{entry['kind']!r}: one of {', '.join(KINDS)}")
    for name in entry["stimuli"]:
        if name not in stimuli:
            raise _key_error(path, f"{where}.stimuli", f"{name!r} is not one of the key's stimuli")
    reference = entry.get("reference")
    return Trial(str(entry["kind"]), str(entry["item"]), tuple(map(str, entry["stimuli"])), reference)


def read_ratings(paths: list[Path | str], key: Key) -> list[Rating]:
    """Every answer of the CSVs at ``paths`` (one per rater session), practice trials dropped, checked against
    ``key``; a duplicate (rater, trial, stimulus) anywhere among them is refused."""
    if not paths:
        raise UserError("no ratings given: name the CSVs the raters saved")
    ratings: list[Rating] = []
    seen: dict[tuple[str, str, str, str | None], tuple[Path, int]] = {}
    for path in map(Path, paths):
        for rating in _read_csv(path, key):
            identity = (rating.rater, rating.trial, rating.stimulus, rating.stimulus_b)
            if key.design in PAIRED_DESIGNS:
                identity = (rating.rater, rating.trial, "", None)  # one answer per pair, whichever side is A
            if identity in seen:
                first, row = seen[identity]
                raise UserError(
                    f"{path}, row {rating.row}, field rater: rater {rating.rater!r} already rated trial "
                    f"{rating.trial!r}, stimulus {rating.stimulus!r} in {first}, row {row}; remove one of the two "
                    "(a rater's second session is not an independent answer)"
                )
            seen[identity] = (path, rating.row)
            if rating.kind != "practice":
                ratings.append(rating)
    return ratings


def _read_csv(path: Path, key: Key) -> list[Rating]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a CSV re-saved by a spreadsheet may start with a BOM
    except FileNotFoundError:
        raise UserError(f"{path}: ratings file not found") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise UserError(f"{path}, row 1: empty file (a ratings CSV starts with the header {','.join(COLUMNS)})")
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}, row 1, field {missing[0]}: missing column (the header is {','.join(COLUMNS)})")
    column = {name: header.index(name) for name in COLUMNS}
    ratings = []
    for row_number, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise UserError(f"{path}, row {row_number}: {len(cells)} fields, the header has {len(header)}")
        fields = {name: cells[i].strip() for name, i in column.items()}
        ratings.append(_checked_row(path, row_number, fields, key))
    return ratings


def _checked_row(path: Path, row: int, fields: dict[str, str], key: Key) -> Rating:
    def error(field: str, problem: str) -> UserError:
        return UserError(f"{path}, row {row}, field {field}: {problem}")

    if fields["test_id"] != key.test_id:
        raise error("test_id", f"{fields['test_id']!r} is not this key's test ({key.test_id!r} in {key.path})")
    if fields["design"] != key.design:
        raise error("design", f"{fields['design']!r}, but the key's test is {key.design!r}")
    if not fields["rater"]:
        raise error("rater", "empty")
    trial = key.trials.get(fields["trial"])
    if trial is None:
        raise error("trial", f"{fields['trial']!r} is not one of the key's trials")
    if fields["trial_kind"] != trial.kind:
        raise error(
            "trial_kind", f"{fields['trial_kind']!r}, but the key says trial {fields['trial']!r} is {trial.kind!r}"
        )
    stimulus, stimulus_b = fields["stimulus"], fields["stimulus_b"] or None
    for field, name in (("stimulus", stimulus), ("stimulus_b", stimulus_b)):
        if name is not None and name not in key.stimuli:
            raise error(field, f"{name!r} is not one of the key's stimuli")
    if key.design in PAIRED_DESIGNS:
        if stimulus_b is None:
            raise error("stimulus_b", f"empty; a {key.design} row names the pair (A in stimulus, B in stimulus_b)")
        if sorted((stimulus, stimulus_b)) != sorted(trial.stimuli):
            raise error("stimulus", f"{stimulus!r} and {stimulus_b!r} are not trial {fields['trial']!r}'s pair")
    else:
        if stimulus not in trial.stimuli:
            raise error("stimulus", f"{stimulus!r} is not played in trial {fields['trial']!r}")
        if stimulus_b is not None:
            raise error("stimulus_b", f"{stimulus_b!r}: a {key.design} row rates one stimulus (leave it empty)")
    rating = _checked_rating(fields["rating"], key, error)
    return Rating(
        source=path,
        row=row,
        rater=fields["rater"],
        trial=fields["trial"],
        kind=trial.kind,
        item=trial.item,
        stimulus=stimulus,
        system=key.system_of(stimulus),
        stimulus_b=stimulus_b,
        system_b=key.system_of(stimulus_b) if stimulus_b else None,
        rating=rating,
    )


def _checked_rating(text: str, key: Key, error) -> float | str:
    scale = key.scale
    if key.design == "ab":
        if text not in scale["choices"]:
            raise error("rating", f"{text!r}: one of {', '.join(map(str, scale['choices']))}")
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not scale["min"] <= value <= scale["max"]:
        raise error("rating", f"{text!r}: a number from {scale['min']:g} to {scale['max']:g}")
    if key.design == "cmos" and value != round(value):  # the sign test needs 0 to mean "the same"
        raise error("rating", f"{text!r}: a whole number from {scale['min']:g} to {scale['max']:g}")
    return value
