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


def _prepare(args: argparse.Namespace) -> None:
    from qwen_tts_lit.data.options import from_namespace
    from qwen_tts_lit.data.prepare import prepare

    output = prepare(from_namespace(args))
    print((output / "report.txt").read_text(), end="")
    print(output)


def _add_prepare(sub: argparse._SubParsersAction) -> Callable[[argparse.Namespace], None]:
    from qwen_tts_lit.data.options import add_arguments

    parser = sub.add_parser(
        "prepare",
        help="check, clean and codec-encode raw clips + transcripts into a training dataset",
        description="Check every row first and report all problems at once (exit 2, nothing written); then write "
        "cleaned 24 kHz audio, 12 Hz codec codes (cached: a re-run or an interrupted run resumes), the speaker "
        "x-vector, train/val manifests and a report into --output.",
    )
    add_arguments(parser)
    return _prepare


SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], Callable[[argparse.Namespace], None]]] = {
    "make-tiny": _add_make_tiny,
    "prepare": _add_prepare,
}

# Handled by LightningCLI (jsonargparse): configs, --print_config, --help of every model/data/trainer argument.
LIGHTNING_SUBCOMMANDS = {
    "fit": "train: python -m qwen_tts_lit fit --config configs/demo.yaml",
    "validate": "run the validation loop: python -m qwen_tts_lit validate --config ... --ckpt_path ...",
}


def run_lightning(argv: list[str]) -> None:
    """Run LightningCLI on ``argv`` (which starts with fit or validate)."""
    from qwen_tts_lit.lightning_cli import QwenTTSCLI

    # LightningCLI warns when given args that are also sys.argv: let it read the command line itself then.
    QwenTTSCLI(args=None if argv == sys.argv[1:] else argv)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], None]]]:
    parser = argparse.ArgumentParser(
        prog="python -m qwen_tts_lit",
        description="Fine-tune Qwen3-TTS on one voice, correctly, and pick the best checkpoint by measurement.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    handlers = {name: add(sub) for name, add in SUBCOMMANDS.items()}
    for name, help_text in LIGHTNING_SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)  # listed here; parsed by LightningCLI
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
            run_lightning(argv)
            return EXIT_OK
        parser, handlers = build_parser()
        args = parser.parse_args(argv)  # argparse exits 2 with the list of subcommands on an unknown one
        handlers[args.command](args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        if type(error).__name__ != "NonFiniteLossError":
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK
