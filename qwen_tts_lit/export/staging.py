"""Where an export is written: checked first, then staged in a temporary sibling folder and renamed into place at
the end (``files.staged_folder``), so an interrupted export never leaves a half-written OUT, a finished one replaces
the old one in one step, and the staging folder of a killed export is removed by the next one.

``--force`` replaces only a folder that an earlier export wrote (it holds our metadata file); anything else that is
not empty is refused with a list of what it holds: a user's own files are never deleted.
"""

from __future__ import annotations

from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.export_folder import EXPORT_METADATA_FILE

SHOWN_ENTRIES = 5


def listing(folder: Path) -> str:
    """The first few entries of a folder, for a message."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    more = f" and {len(names) - SHOWN_ENTRIES} more" if len(names) > SHOWN_ENTRIES else ""
    return ", ".join(names[:SHOWN_ENTRIES]) + more


def check_output(output: Path, force: bool, protected: list[Path]) -> Path:
    """OUT may not exist, or be empty, or (with force) be an earlier export to replace; never the run or the base."""
    output = output.expanduser().resolve()
    for path in protected:
        if path == output or output in path.parents:
            raise UserError(f"--output {output}: contains {path}; choose a folder of its own")
    if output.is_file():
        raise UserError(f"--output {output}: is a file; give a folder")
    if not output.is_dir() or not any(output.iterdir()):
        return output
    if not (output / EXPORT_METADATA_FILE).is_file():
        raise UserError(
            f"--output {output}: is not empty and is not an export ({listing(output)}); --force true replaces only a "
            f"folder an earlier export wrote (it holds {EXPORT_METADATA_FILE}): choose another folder"
        )
    if not force:
        raise UserError(f"--output {output}: holds an earlier export; pass --force true to replace it")
    return output
