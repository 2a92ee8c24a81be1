"""A documented dataclass becomes a subcommand's options: one source for each option.

Each field gives one flag: its name (``--speaker-name``), its type (int, float, str, Path, bool, Literal choices,
tuples as lists), its default and its attribute docstring (the string literal under the field) as the ``--help``
text. A field without a default is required. ``field(metadata=...)`` can say ``positional``, ``metavar``,
``nargs``, ``repeatable`` (a list flag given several times adds up, as in ``fit --config A --config B``) and
``default_help`` (what ``--help`` shows instead of a long default). The class docstring's first line is the
subcommand's one-line help, the rest its description.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import typing
from functools import cache
from pathlib import Path
from typing import Literal

METAVARS = {Path: "PATH", int: "INT", float: "FLOAT", str: "TEXT"}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal under each field), joined into one line each."""
    docs, body = {}, ast.parse(inspect.getsource(cls)).body[0].body
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def class_help(cls: type) -> tuple[str, str]:
    """(one-line help, description) from the class docstring."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    summary = lines[0] if lines else ""
    return summary, " ".join(" ".join(lines[1:]).split()) or summary


def _without_none(hint):
    """``X | None`` -> X; anything else as is."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and type(None) in typing.get_args(hint) else hint


def _argument(item: dataclasses.Field, hint, doc: str) -> tuple[list[str], dict]:
    """The ``add_argument`` call for one field: (names, keyword arguments)."""
    meta, hint = item.metadata, _without_none(hint)
    if meta.get("positional"):
        return [item.name], {"help": doc, "type": hint}
    kwargs: dict = {"dest": item.name, "help": doc}
    if item.default is dataclasses.MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = item.default
    if hint is bool:  # off by default: --flag; on by default: --flag / --no-flag (argparse adds the default)
        action = argparse.BooleanOptionalAction if item.default else "store_true"
        return ["--" + item.name.replace("_", "-")], kwargs | {"action": action}
    if kwargs.get("default") is not None:
        kwargs["help"] = f"{kwargs['help'].rstrip('.')} (default: {meta.get('default_help', '%(default)s')})"
    if typing.get_origin(hint) is Literal:
        kwargs["choices"] = typing.get_args(hint)
    elif typing.get_origin(hint) in (tuple, list):
        element = typing.get_args(hint)[0]
        kwargs |= {"nargs": meta.get("nargs", "+"), "type": element}
        if meta.get("repeatable"):
            kwargs["action"] = "extend"
        kwargs["metavar"] = meta.get("metavar", METAVARS.get(element))
    else:
        kwargs |= {"type": hint, "metavar": meta.get("metavar", METAVARS.get(hint, item.name.upper()))}
    return ["--" + item.name.replace("_", "-")], kwargs


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument per field of ``cls`` (see the module docstring)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        names, kwargs = _argument(item, hints[item.name], docs.get(item.name, ""))
        parser.add_argument(*names, **kwargs)


def from_namespace(namespace: argparse.Namespace, cls: type):
    """The dataclass instance the parsed arguments describe."""
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if f.init})
