"""The keys ``fit`` and ``validate`` read: renamed keys of earlier versions read under their new names with one line
saying so (so an old config or run folder still runs), and a key that does not exist refused in one line with the
closest valid ones, instead of jsonargparse's whole usage.

:data:`RENAMED_KEYS` is the one table of renamed keys. Config files reach :func:`rename_keys` through the parser mode
:data:`PARSER_MODE` (jsonargparse calls its loader on every config text it reads, with the file's path), command-line
flags through :func:`rename_flags`, and a checkpoint's hyper-parameters through :class:`KeyParser`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from qwen_tts_lit.cli.parse_errors import error_line
from qwen_tts_lit.errors import UserError

# Old key -> new key, as a fit config spells them. The first version's flat LoRA and bug-switch arguments became
# settings records (commit ea6ac19), and use_language_tag became the off/on/mixed language_tag (commit 0d823e0).
RENAMED_KEYS: dict[str, str] = {
    "model.lora_rank": "model.lora.rank",
    "model.lora_alpha": "model.lora.alpha",
    "model.lora_dropout": "model.lora.dropout",
    "model.lora_code_predictor": "model.lora.code_predictor",
    "model.fix_text_projection": "model.fixes.text_projection",
    "model.fix_talker_shift": "model.fixes.talker_shift",
    "model.fix_sub_talker_alignment": "model.fixes.sub_talker_alignment",
    "model.fix_sub_talker_shift": "model.fixes.sub_talker_shift",
    "data.use_language_tag": "data.language_tag",
}
PARSER_MODE = "qwen_tts_lit"  # YAML, with renamed keys read under their new names
_YAML = get_loader("yaml")
_announced: set[tuple[str, str]] = set()


def rename_keys(config: dict) -> tuple[dict, list[tuple[str, str]]]:
    """``config`` (a fit config as a nested dict) with every key of :data:`RENAMED_KEYS` moved to its new name, and
    the (old, new) pairs moved. UserError when a config gives both names of one key."""
    config, moved = _copy(config), []
    for old, new in RENAMED_KEYS.items():
        found, value = _pop(config, old)
        if not found:
            continue
        if _pop(_copy(config), new)[0]:
            raise UserError(f"{old} and {new} both given: {old} is the old name of {new}; keep {new} only")
        _put(config, new, value)
        moved.append((old, new))
    return config, moved


def _copy(config: dict) -> dict:
    return {key: _copy(value) if isinstance(value, dict) else value for key, value in config.items()}


def _pop(config: dict, key: str) -> tuple[bool, Any]:
    """Remove ``key`` (dotted) from ``config``, nested or spelled with its dots; (found, value)."""
    if key in config:
        return True, config.pop(key)
    head, _, rest = key.partition(".")
    if rest and isinstance(config.get(head), dict):
        return _pop(config[head], rest)
    return False, None


def _put(config: dict, key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if not rest:
        config[head] = value
        return
    if not isinstance(config.get(head), dict):
        if config.get(head) is not None:
            raise UserError(f"{key}: cannot be set inside {head}={config[head]!r}")
        config[head] = {}
    _put(config[head], rest, value)


def announce(moved: Iterable[tuple[str, str]], where: str) -> None:
    """One line per renamed key read (once per process, rank 0 only), on stderr beside fit's own lines."""
    for old, new in moved:
        if (where, old) not in _announced and rank_zero_only.rank == 0:
            print(f"note: {where}: {old} is now called {new}; read as {new} (rename it there)", file=sys.stderr)
        _announced.add((where, old))


def _load(value: str, path: str = "") -> Any:
    """The loader of :data:`PARSER_MODE`: YAML, renamed keys moved. ``path`` is the config file being read, by its
    name: jsonargparse reads a config file from inside its folder."""
    loaded = _YAML(value)
    if isinstance(loaded, dict):
        where = os.path.abspath(path) if path else "the command line"
        try:
            loaded, moved = rename_keys(loaded)
        except UserError as error:
            raise UserError(f"{where}: {error}") from None
        announce(moved, where)
    return loaded


set_loader(PARSER_MODE, _load, (yaml.YAMLError,))


def rename_flags(args: list[str]) -> list[str]:
    """``args`` with every ``--OLD`` / ``--OLD=VALUE`` flag of :data:`RENAMED_KEYS` spelled with its new name."""
    renamed, moved = [], []
    for arg in args:
        flag, equals, value = arg.partition("=")
        if flag.startswith("--") and flag[2:] in RENAMED_KEYS:
            new = RENAMED_KEYS[flag[2:]]
            moved.append((flag[2:], new))
            arg = f"--{new}{equals}{value}"
        renamed.append(arg)
    announce(moved, "the command line")
    return renamed


class KeyParser(LightningArgumentParser):
    """The parser of fit and validate: config files read in :data:`PARSER_MODE`, errors raised (the CLI turns them
    into one line) rather than printed with the whole usage, and a checkpoint's hyper-parameters (the only object
    LightningCLI parses) read with renamed keys moved: an old run's checkpoint cannot be edited, so that is silent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_mode", PARSER_MODE)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def parse_object(self, cfg_obj: Any, *args: Any, **kwargs: Any):
        if isinstance(cfg_obj, dict):
            cfg_obj = {key: rename_keys(value)[0] if isinstance(value, dict) else value for key, value in
                       cfg_obj.items()}  # fmt: skip
        return super().parse_object(cfg_obj, *args, **kwargs)


def parse_error_line(message: str, subcommand: str, valid: Iterable[str]) -> str:
    """jsonargparse's error as one line (:func:`~qwen_tts_lit.cli.parse_errors.error_line`), a renamed key by its
    new name."""
    return error_line(message, subcommand, valid, RENAMED_KEYS)
