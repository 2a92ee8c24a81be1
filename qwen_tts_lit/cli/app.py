"""``python -m qwen_tts_lit SUBCOMMAND``: one entry point and the one map from failures to exit codes.

Exit codes: 0 success, 2 bad input or config (:class:`~qwen_tts_lit.errors.UserError`: the message names the file,
line and field), 1 a run that could not finish (:class:`~qwen_tts_lit.errors.RunFailed`: NaN loss, runaway
generation, failed ablation runs; a full or read-only disk, also when code we do not own hit it) or was interrupted
(Ctrl-C: :class:`~qwen_tts_lit.errors.Interrupted` says how to resume). Anything else is a bug and keeps its
traceback. Heavy imports (torch, qwen_tts, lightning) happen inside the handlers, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from qwen_tts_lit.cli.commands import COMMANDS, LIGHTNING_COMMANDS
from qwen_tts_lit.cli.parser import class_help, parse_request
from qwen_tts_lit.errors import RunFailed, UserError
from qwen_tts_lit.files import storage_error
from qwen_tts_lit.runs.checkpoints import TRUST_ENV, TRUST_FLAG, trust_runs

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UserError, EXIT_BAD_INPUT),
    (RunFailed, EXIT_RUN_FAILED),
    (KeyboardInterrupt, EXIT_RUN_FAILED),
)


def user_facing(error: BaseException) -> BaseException:
    """The error as the user should see it: a full or read-only disk becomes a one-line StorageError."""
    return storage_error(error) or error


def exit_code(error: BaseException) -> int | None:
    """The exit code for an error the user should see as one line; None for a bug (keep the traceback)."""
    return next((code for kind, code in EXIT_CODES if isinstance(user_facing(error), kind)), None)


def message(error: BaseException) -> str:
    """The line printed for a user-facing error."""
    if isinstance(error, KeyboardInterrupt):
        return str(error) or "interrupted"
    return f"error: {user_facing(error)}"


def build_parser() -> argparse.ArgumentParser:
    """The list of subcommands (``--help``, and an unknown name refused with the choices): each subcommand's options
    are its own parser's (jsonargparse: :mod:`~qwen_tts_lit.cli.parser`, LightningCLI for fit and validate)."""
    parser = argparse.ArgumentParser(
        prog="python -m qwen_tts_lit",
        description="Fine-tune Qwen3-TTS on one voice, correctly, and pick the best checkpoint by measurement.",
        epilog="python -m qwen_tts_lit SUBCOMMAND --help lists its options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for name, help_text in LIGHTNING_COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=class_help(command.request)[0], add_help=False)
    return parser


def dispatch(argv: list[str]) -> None:
    trust_before = os.environ.get(TRUST_ENV)  # a DDP rank inherits the trust of the command that started it
    if TRUST_FLAG in argv:  # any subcommand: the user vouches for the run folders it reads (docs/sharing.md)
        if sys.argv[1:] == argv:
            sys.argv.remove(TRUST_FLAG)  # fit re-reads sys.argv (and DDP re-runs it): the flag travels as TRUST_ENV
        argv = [arg for arg in argv if arg != TRUST_FLAG]
        trust_runs()
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from qwen_tts_lit.cli.lightning import run_lightning

            run_lightning(argv)
            return
        if not argv or argv[0] not in COMMANDS:
            build_parser().parse_args(argv)  # --help, or exit 2 with the list of subcommands on an unknown one
            return
        command = COMMANDS[argv[0]]
        command.handler(parse_request(argv[0], command.request, argv[1:]))
    finally:
        if trust_before is None:  # the flag vouches for this command only: a notebook's next call is checked again
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = trust_before


def main(argv: Sequence[str] | None = None) -> int:
    try:
        dispatch(list(sys.argv[1:] if argv is None else argv))
    except (Exception, KeyboardInterrupt) as error:
        code = exit_code(error)
        if code is None:
            raise
        print(message(error), file=sys.stderr)
        return code
    return EXIT_OK
