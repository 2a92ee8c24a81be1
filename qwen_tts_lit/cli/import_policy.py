"""While LightningCLI parses and instantiates a config from someone else's run folder (``fit --resume``, ``fit`` or
``validate`` with ``--ckpt_path``, a ``--config`` inside a run folder), jsonargparse imports nothing outside the
trusted packages (``runs.checkpoints.TRUSTED_IMPORT_PATHS``, the rule's one owner) and the modules the user named
themselves, on the command line or in a config file of their own (one outside any run folder).

This is the backstop behind the file checks (a run's ``config.yaml`` and the checkpoint's hyper-parameters, read as
plain data by ``runs.checkpoints``): it sees every import path jsonargparse resolves from a value, also those the
checks do not look for (a plain dotted string given to a callable-typed option, a sub-config file the run's config
points to). jsonargparse 4.53 checks the path as written before it imports anything, and the path the object is
defined under after (``jsonargparse._util.import_object``): a module a run folder names is denied before it runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwen_tts_lit.runs.checkpoints import TRUSTED_IMPORT_PATHS, runs_trusted, untrusted_code
from qwen_tts_lit.runs.folder import is_run_dir

DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
FILE_OPTIONS = ("--config", "-c", "--ckpt_path")  # their values are files, never import paths
DENIED = re.compile(r"Importing '([\w.]+)' is not allowed")  # how jsonargparse 4.53 words a denial


def option_values(args: list[str], *names: str) -> list[str]:
    """The values given to any of ``names`` (``--name VALUE`` or ``--name=VALUE``), in order."""
    values = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(f"{name}="):
                values.append(arg.split("=", 1)[1])
    return values


def in_run_folder(config: str) -> bool:
    """Whether a ``--config`` file lies in a folder ``fit`` wrote (it has a checkpoints folder)."""
    return is_run_dir(Path(config).expanduser().absolute().parent)


def reads_a_run_folder(args: list[str]) -> bool:
    """Whether the command starts from a checkpoint (whose hyper-parameters LightningCLI merges) or parses a config
    that lies in a run folder."""
    return bool(option_values(args, "--ckpt_path")) or any(map(in_run_folder, option_values(args, "--config", "-c")))


def _dotted_values(tree: object) -> Iterator[str]:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _dotted_values(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _dotted_values(value)
    elif isinstance(tree, str) and DOTTED.match(tree):
        yield tree


def user_modules(args: list[str]) -> set[str]:
    """The modules of the import paths the user wrote: option values on the command line and values in a config file
    of their own. ``mylab.callbacks.MyCallback`` allows ``mylab.callbacks`` (importing it is what the user asked
    for); the module, not the one path, because jsonargparse also checks where the class is defined."""
    files = set(option_values(args, *FILE_OPTIONS))
    named = []
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value not in files and DOTTED.match(value):
            named.append(value)
    for config in option_values(args, "--config", "-c"):
        path = Path(config).expanduser()
        if path.is_file() and not in_run_folder(config):
            import yaml

            try:
                named += _dotted_values(yaml.safe_load(path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # the config parser names an unreadable file in its own words
    # jsonargparse refuses to allow its own package (a value could change the policy), so that never enters
    return {name.rsplit(".", 1)[0] for name in named if not name.startswith("jsonargparse")}


@contextmanager
def import_policy(allowed: set[str]) -> Iterator[None]:
    """jsonargparse imports only paths under ``allowed`` while the block runs; its global settings are put back
    after it (notebooks and tests run several commands in one process)."""
    from jsonargparse import set_parsing_settings
    from jsonargparse._common import parsing_settings  # no public getter: saved to be restored as it was

    saved = {key: parsing_settings[key] for key in ("import_path_verdicts", "import_paths_enforced")}
    set_parsing_settings(import_path_denylist=["*"], import_path_allowlist=sorted(allowed))
    try:
        yield
    finally:
        parsing_settings.update(saved)


def denied_import(error: BaseException) -> str | None:
    """The import path the policy denied, when ``error`` (or what caused it) is that denial; else None."""
    while error is not None:
        found = DENIED.search(str(error))
        if found:
            return found.group(1)
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def run_folder_policy(args: list[str]) -> Iterator[None]:
    """The policy for one ``fit``/``validate`` command line, when it reads a run folder and the user did not say
    --trust-run; a denial becomes the one line naming the class and the run-folder files involved."""
    if runs_trusted() or not reads_a_run_folder(args):
        yield
        return
    try:
        with import_policy(set(TRUSTED_IMPORT_PATHS) | user_modules(args)):
            yield
    except (Exception, SystemExit) as error:
        name = denied_import(error)
        if name is None:
            raise
        sources = [*filter(in_run_folder, option_values(args, "--config", "-c")), *option_values(args, "--ckpt_path")]
        raise untrusted_code(" and ".join(sources), f"the class {name}") from None
