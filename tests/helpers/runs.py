"""Helpers for the export and synthesize tests: copies of a finished run folder and in-process CLI calls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from qwen_tts_lit import cli


def copy_run(run: Path, target: Path, best: dict | None = None) -> Path:
    """A copy of ``run`` (checkpoints, config, speaker) with ``best.json`` = ``best``, or without one when None."""
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("eval", "report.html", "events.out.*"))
    (target / "best.json").unlink(missing_ok=True)
    if best is not None:
        (target / "best.json").write_text(json.dumps(best))
    return target


def main(*args: object) -> int:
    """``python -m qwen_tts_lit ARGS`` in this process (no interpreter start, no model reload between calls)."""
    return cli.main([str(a) for a in args])
