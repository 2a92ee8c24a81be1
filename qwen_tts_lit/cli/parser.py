"""Each subcommand's one parser, built by jsonargparse from its request dataclass (as litgpt builds its CLI): each
field is an option spelled as the field and as a key of ``--config FILE``, its type checked, its attribute docstring
its ``--help``; a nested settings dataclass gives dotted options (``--judges.asr_model``), spelled as in a fit
config. Every subcommand has ``--config FILE`` (YAML; flags after it override it) and ``--print_config`` (the
options as a YAML file for ``--config``). A field with ``metadata={"positional": True}`` makes the required
fields positional (``make-tiny DIR``). Errors are raised (the CLI prints one line), not printed with the usage.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import sys
from argparse import ArgumentError

from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

from qwen_tts_lit.cli.parse_errors import error_line, valid_keys
from qwen_tts_lit.cli.spellings import respell
from qwen_tts_lit.errors import UserError

PROG = "python -m qwen_tts_lit"
SPELLINGS = (
    "Options are spelled as their keys in a --config file (an underscore between words); a boolean takes true or "
    "false, a list a YAML list ('[a, b]'; one value alone is a list of one). The older spellings (kebab case, a bare "
    "boolean, values after a list option) are still read, with a note, until the next release."
)


def class_help(cls: type) -> tuple[str, str]:
    """(one-line help, description) from the class docstring."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    summary = lines[0] if lines else ""
    return summary, " ".join(" ".join(lines[1:]).split()) or summary


def request_parser(name: str, cls: type) -> ArgumentParser:
    """The parser of subcommand ``name`` from its request dataclass ``cls``."""
    # Attribute docstrings (the string under each field) are the help; jsonargparse reads them only when asked.
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(
        prog=f"{PROG} {name}", description=class_help(cls)[1], epilog=SPELLINGS, exit_on_error=False
    )
    parser.add_argument(
        "--config", action=ActionConfigFile, help="A YAML file of these options (--print_config writes one)."
    )
    positional = any(item.metadata.get("positional") for item in dataclasses.fields(cls))
    parser.add_class_arguments(cls, None, as_positional=positional, fail_untyped=True, sub_configs=True)
    return parser


def parse_request(name: str, cls: type, args: list[str]):
    """The request ``args`` describe (older spellings read with a note each on stderr); a bad option or value is a
    one-line UserError naming it."""
    args, notes = respell(name, cls, args)
    for note in notes:
        print(note, file=sys.stderr)
    parser = request_parser(name, cls)
    try:
        config = parser.instantiate(parser.parse_args(args))  # nested settings become their dataclasses
    except ArgumentError as error:
        line = error_line(str(error), name, valid_keys(parser))
        following = itertools.pairwise([*args, ""])  # each argument with the one after it
        configs = [arg.partition("=")[2] or after for arg, after in following if arg.partition("=")[0] == "--config"]
        from_file = "is not accepted" in str(error)  # only a config file's key is refused in these words
        where = f"--config {' '.join(configs)}: " if configs and from_file else ""
        raise UserError(where + line) from None
    return cls(**{item.name: config[item.name] for item in dataclasses.fields(cls) if item.init})
