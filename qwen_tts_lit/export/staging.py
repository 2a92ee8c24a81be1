"""Where an export is written: checked first, staged in a temporary sibling folder, renamed into place at the end,
so an interrupted export never leaves a half-written OUT and a finished one replaces the old one in one step."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwen_tts_lit.errors import UserError


def check_output(output: Path, force: bool, protected: list[Path]) -> Path:
    """OUT may not exist, or be empty, or (with force) be replaced; it may never hold the run or the base model."""
    output = output.expanduser().resolve()
    for path in protected:
        if path == output or output in path.parents:
            raise UserError(f"--output {output}: contains {path}; choose a folder of its own")
    if output.is_file():
        raise UserError(f"--output {output}: is a file; give a folder")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise UserError(f"--output {output}: exists and is not empty; pass --force to replace it")
    return output


@contextmanager
def staged_folder(output: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``output``; on success it replaces ``output`` (renames), else it is removed."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; an export is meant to be shared
    try:
        yield staging
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            os.replace(output, old / output.name)  # keep the old one until the new one is in place
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
