"""jsonargparse's errors as the one line the user reads (every subcommand's parser raises instead of printing its
whole usage): an unknown option with its closest valid ones, a bad value with what the option expects, a missing
option by its flag. Imports nothing heavy: the request subcommands use it before torch or Lightning load."""

from __future__ import annotations

import difflib
import inspect
import pydoc
import re
from collections.abc import Iterable, Mapping

# jsonargparse's wordings of a key that does not exist: in a group or subcommand, on the command line, in a class.
UNKNOWN_KEY = re.compile(r"'(\w+)' does not accept (?:option|nested key) '([^']+)'|nrecognized arguments: --?([^\s=]+)")
UNKNOWN_INIT_ARG = re.compile(r"Problem with given class_path '([^']+)':\s*Option '([^']+)' is not accepted")
PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
EXPECTED = re.compile(r"Expected an? (.+?)(?:\. Got value: (.*))?$", re.MULTILINE)
GIVEN = re.compile(r"Given value: (.*)$", re.MULTILINE)
NOT_ACCEPTED = re.compile(r"Option '([^']+)' is not accepted")  # a key of a config file that is no option
MISSING_FILE = re.compile(r'Parser key "([^"]+)":\s*File does not exist: \'([^\']+)\'')
REQUIRED = re.compile(r"the following arguments are required: (.+)$", re.MULTILINE)


def valid_keys(parser) -> list[str]:
    """Every dotted key ``parser`` accepts (its options, without the leading dashes)."""
    keys = []
    for action in parser._actions:  # argparse has no public list of a parser's actions
        keys += [option.lstrip("-") for option in action.option_strings if option.startswith("--")]
    return sorted(set(keys))


def init_args(class_path: str) -> list[str]:
    """The arguments of the class ``class_path`` names (empty when it cannot be found)."""
    found = pydoc.locate(class_path)
    try:
        return [name for name in inspect.signature(found).parameters if name not in ("self", "args", "kwargs")]
    except (TypeError, ValueError):
        return []


def closest_keys(key: str, valid: Iterable[str], count: int = 3) -> list[str]:
    """The valid keys nearest to ``key`` (difflib): on the whole key, then on its last part within its section."""
    valid = list(valid)
    near = difflib.get_close_matches(key, valid, n=count, cutoff=0.6)
    section, _, last = key.rpartition(".")
    siblings = {v.rpartition(".")[2]: v for v in valid if v.rpartition(".")[0] == section}
    near += [siblings[name] for name in difflib.get_close_matches(last, list(siblings), n=count, cutoff=0.6)]
    return list(dict.fromkeys(near))[:count]


def _type_name(text: str) -> str:
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text.strip())
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text)
    return f"one of {literal.group(1)}" if literal else text.replace("NoneType", "null")


def error_line(message: str, subcommand: str, valid: Iterable[str], renamed: Mapping[str, str] | None = None) -> str:
    """jsonargparse's error as one line: an unknown key with its closest valid keys (or its new name, when
    ``renamed`` maps it), a bad value with what the key expects, a missing option; anything else its first lines
    joined. Each ends with where the options are listed."""
    tip = f"see python -m qwen_tts_lit {subcommand} --help"
    valid, renamed = list(valid), renamed or {}
    if match := UNKNOWN_KEY.search(message):
        key = f"{match.group(1)}.{match.group(2)}" if match.group(2) else match.group(3)
        if match.group(1) == subcommand:
            key = match.group(2)
        if key in renamed:
            return f"{key}: renamed {renamed[key]} ({tip})"
        near = closest_keys(key, valid)
        hint = f"did you mean {' or '.join(near)}?" if near else "no option has a similar name"
        return f"{key}: not an option of {subcommand}; {hint} ({tip})"
    if match := MISSING_FILE.search(message):
        return f"--{match.group(1)} {match.group(2)}: file not found"
    key = match.group(1) if (match := PARSER_KEY.search(message)) else None
    if (match := NOT_ACCEPTED.search(message)) and not UNKNOWN_INIT_ARG.search(message):
        near = closest_keys(match.group(1), valid)
        hint = f"did you mean {' or '.join(near)}?" if near else "no option has a similar name"
        return f"{match.group(1)}: not an option of {subcommand}; {hint} ({tip})"
    if match := UNKNOWN_INIT_ARG.search(message):
        class_path, name = match.groups()
        near = difflib.get_close_matches(name, init_args(class_path), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        return f"{key}: {name} is not an argument of {class_path}{hint} ({tip})"
    expected = EXPECTED.findall(message)
    if key and expected:
        types = " or ".join(dict.fromkeys(_type_name(kind) for kind, _ in expected))
        given = next((value for _, value in expected if value), None)
        given = given if given is not None else (match.group(1) if (match := GIVEN.search(message)) else "?")
        return f"{key}: expected {types}, given {given} ({tip})"
    if match := REQUIRED.search(message):
        names = [name.strip() for name in match.group(1).split(",")]
        flags = [f"--{name}" if name in valid else name for name in names]  # an option by its flag, a positional as is
        return f"{', '.join(flags)}: required ({tip})"
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return f"{'; '.join(lines[:3])} ({tip})"
