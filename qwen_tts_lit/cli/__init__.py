"""The command line: :func:`~qwen_tts_lit.cli.app.main` (the exit-code map), the subcommands
(:mod:`~qwen_tts_lit.cli.commands`: a documented request dataclass and a thin handler each), options generated from
those dataclasses (:mod:`~qwen_tts_lit.cli.options`) and ``fit``/``validate`` (:mod:`~qwen_tts_lit.cli.lightning`)."""

from qwen_tts_lit.cli.app import main

__all__ = ["main"]
