"""``python -m qwen_tts_lit SUBCOMMAND``: one entry point, one small function per subcommand.

Exit codes: 0 success, 2 bad input or config (the message names the file, line and field), 1 internal error.
Heavy imports (torch, qwen_tts, lightning) happen inside the subcommands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from qwen_tts_lit.errors import UserError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


def _make_tiny(args: argparse.Namespace) -> None:
    from qwen_tts_lit.tiny import TinyDirError, make_tiny

    try:
        path = make_tiny(args.dir)
    except TinyDirError as error:
        raise UserError(str(error)) from error
    print(path)


def _add_make_tiny(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    parser = sub.add_parser(
        "make-tiny",
        help="build the tiny random Qwen3-TTS checkpoint (official layout) used by the demo and the tests",
        description="Write a complete tiny Qwen3-TTS checkpoint (random weights, fixed seed) into DIR. "
        "Re-running on a finished DIR is a no-op; an interrupted build leaves nothing behind.",
    )
    parser.add_argument("dir", help="target directory (created; must be empty or a finished tiny build)")
    return _make_tiny


SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], Callable[[argparse.Namespace], None]]] = {
    "make-tiny": _add_make_tiny,
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], None]]]:
    parser = argparse.ArgumentParser(
        prog="python -m qwen_tts_lit",
        description="Fine-tune Qwen3-TTS on one voice, correctly, and pick the best checkpoint by measurement.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    handlers = {name: add(sub) for name, add in SUBCOMMANDS.items()}
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, handlers = build_parser()
    args = parser.parse_args(argv)  # argparse exits 2 with the list of subcommands on an unknown one
    try:
        handlers[args.command](args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK
