"""The command line before jsonargparse, read for one release: each older spelling becomes the jsonargparse spelling
with one ``note:`` line on stderr naming the new one, so a script written for the argparse version still runs.

Older spellings (the argparse layer of version 0.1): options in kebab case (``--speaker-name``; now as the field and
a config key: ``--speaker_name``), a bare boolean (``--strict``, ``--no-progress``; now ``--strict true``,
``--progress false``), several values after a list option (``--scales 0.3 0.7``; now a YAML list
``--scales '[0.3, 0.7]'``), evaluate's flat judge and rule options (``--asr-model``; now ``--judges.asr_model`` as in
a fit config's EvalSuite) and estimate-memory's ``--config FIT_CONFIG`` (now ``--fit_config``: ``--config`` is every
subcommand's own config file). One convenience stays without a note: a single value for a list option is a list of
one (``--epochs 2``). Pure functions over the argument list and the request dataclass.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

# Options that moved, by subcommand: old field name -> (new dotted key, fixed value or None: the value follows).
MOVED_JUDGES = ("asr_model", "asr_device", "asr_compute_type", "asr_beam_size", "asr_language", "model_speaker_sim")
MOVED_RULE = ("primary", "rate_tolerance", "max_eos_fail", "speaker_aggregate")
MOVED: dict[str, dict[str, tuple[str, str | None]]] = {
    "evaluate": {
        **{name: (f"judges.{name}", None) for name in MOVED_JUDGES},
        **{name: (f"rule.{name}", None) for name in MOVED_RULE},
        "no_asr": ("judges.asr", "false"),
    },
    "estimate-memory": {"config": ("fit_config", None)},
}
TRUE, FALSE = "true", "false"


@dataclass(frozen=True)
class Option:
    """One option of a request, as the respelling needs it."""

    key: str
    """Its dotted key (``speaker_name``, ``judges.asr_model``)."""
    kind: str
    """bool, list or value."""
    empty_list: bool = False
    """A list option that argparse took with no value (``--tag-patterns``: keep every tag)."""
    repeatable: bool = False
    """A list option whose repeats add up (``--fit_config A --fit_config B``)."""


def options(cls: type, prefix: str = "") -> dict[str, Option]:
    """Every option of the request dataclass ``cls`` by dotted key, nested dataclass fields included."""
    found, hints = {}, typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        key, hint = prefix + item.name, _without_none(hints[item.name])
        if dataclasses.is_dataclass(hint):
            found |= options(hint, f"{key}.")
        elif hint is bool:
            found[key] = Option(key, "bool")
        elif typing.get_origin(hint) in (tuple, list):
            found[key] = Option(key, "list", item.metadata.get("nargs") == "*", bool(item.metadata.get("repeatable")))
        else:
            found[key] = Option(key, "value")
    return found


def _without_none(hint):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in typing.get_args(hint) else hint


def _is_flag(arg: str) -> bool:
    return arg.startswith("--") and len(arg) > 2


def _new_key(name: str, flag: str, known: dict[str, Option]) -> tuple[str | None, str | None]:
    """(dotted key, fixed value) that ``flag`` (without its dashes) spells, or (None, None) if it is no option."""
    field_name = flag.replace("-", "_")
    moved = MOVED.get(name, {})
    if field_name in moved:
        return moved[field_name]
    if field_name in known:
        return field_name, None
    if field_name.startswith("no_") and field_name[3:] in known and known[field_name[3:]].kind == "bool":
        return field_name[3:], FALSE  # argparse's --no-progress
    return None, None


def respell(name: str, cls: type, args: list[str]) -> tuple[list[str], list[str]]:
    """(``args`` in the jsonargparse spelling, one note per older spelling read). Unknown flags, ``--config``,
    ``--help`` and ``--print_config`` pass through for jsonargparse to read or refuse."""
    known, out, notes = options(cls), [], []
    lists: dict[str, int] = {}  # a repeatable list's key -> where its one YAML list stands in ``out``
    i = 0
    while i < len(args):
        arg = args[i]
        flag, equals, inline = arg.partition("=")
        key, fixed = _new_key(name, flag[2:], known) if _is_flag(flag) else (None, None)
        if key is not None and flag == "--config":  # an older option called config: which one is meant?
            values = [inline] if equals else _values(args, i + 1, False)[0]
            key = None if all(_is_own_config(Path(value), cls) for value in values) else key
        if key is None or key not in known:
            out.append(arg)
            i += 1
            continue
        option, renamed = known[key], flag[2:] != key
        if option.kind == "value":
            out.append(f"--{key}{equals}{inline}")
            notes += [_note(flag, f"--{key}")] if renamed else []
            i += 1
            continue
        if fixed is not None:  # --no-progress: the value is in the name
            values, i = [], i + 1
        else:
            values, i = ([inline], i + 1) if equals else _values(args, i + 1, option.kind == "bool")
        if option.kind == "bool":
            value = fixed or (values[0].lower() if values else TRUE)
            if renamed or not values:
                notes.append(_note(" ".join([flag, *values]), f"--{key} {value}"))
            out += [f"--{key}", value]
            continue
        listed = len(values) == 1 and values[0].lstrip().startswith("[")  # already a YAML list
        if listed and not option.repeatable:
            out += [f"--{key}", values[0]]
            notes += [_note(flag, f"--{key}")] if renamed else []
            continue
        if listed:
            loaded = yaml.safe_load(values[0])
            values = [str(value) for value in loaded] if isinstance(loaded, list) else values
        if not values and not option.empty_list:
            out.append(f"--{key}")  # jsonargparse says what is missing
            continue
        if renamed or (len(values) != 1 and not listed):
            notes.append(_note(" ".join([flag, *values]), f"--{key} {shlex.quote('[' + ', '.join(values) + ']')}"))
        if option.repeatable and key in lists:  # --fit_config A --fit_config B: the files add up, as fit's --config
            out[lists[key]] = json.dumps([*json.loads(out[lists[key]]), *values])
            continue
        lists[key] = len(out) + 1
        out += [f"--{key}", json.dumps(values)]
    return out, list(dict.fromkeys(notes))


def _values(args: list[str], start: int, one: bool) -> tuple[list[str], int]:
    """The values after an option: up to the next flag (argparse's nargs), at most one true/false for a boolean."""
    end = start
    if one:
        if end < len(args) and args[end].lower() in (TRUE, FALSE):
            end += 1
    else:
        while end < len(args) and not _is_flag(args[end]):
            end += 1
    return args[start:end], end


def _note(old: str, new: str) -> str:
    return f"note: {old} is an older spelling, read as {new} (the older one goes in the next release)"


def _is_own_config(path: Path, cls: type) -> bool:
    """Whether ``path`` is a config file of ``cls``: a mapping of its options only. A file that cannot be read is
    taken in the older meaning (the one scripts of the older version use), whose reader names it."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return not isinstance(loaded, dict) or set(loaded) <= {item.name for item in dataclasses.fields(cls)}
