"""Reading a run's checkpoints safely: a damaged file (cut short by a full disk or a killed copy, or not a
checkpoint at all) is named in one line with the run's intact epochs and the command that resumes from the newest,
never a raw torch traceback.

A checkpoint is torch's zip format, whose every member carries a CRC-32: :func:`is_intact` checks them all, so a
truncated or overwritten file is told apart from a good one without unpickling anything.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import shown
from qwen_tts_lit.runs.folder import (
    LAST_CHECKPOINT,
    checkpoint_files,
    resume_command,
    run_of_checkpoint,
    saved_epochs,
)


def is_intact(path: Path | str) -> bool:
    """True when ``path`` is a complete zip archive whose members all match their CRC (what torch.save writes)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def intact_epochs(run_dir: Path) -> dict[int, Path]:
    """The saved epochs of ``run_dir`` whose checkpoint is intact, sorted by epoch."""
    return {epoch: path for epoch, path in saved_epochs(run_dir).items() if is_intact(path)}


def damaged_checkpoint(path: Path | str, error: BaseException | None = None) -> UserError:
    """The one-line error for a checkpoint that cannot be read: what it is, which epochs of its run are intact and
    how to resume from the newest of them."""
    path = Path(path)
    what = "is damaged or not a checkpoint (cut short by a full disk or a killed copy?)"
    if error is not None and is_intact(path):  # a complete file that still fails: say why, it is not damage
        what = f"cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"
    run = run_of_checkpoint(path)
    if run is None:
        return UserError(f"{path}: {what}")
    intact = intact_epochs(run)
    if not intact:
        return UserError(f"{path}: {what}; {shown(run)} has no intact epoch checkpoint to resume from")
    listed = ", ".join(str(epoch) for epoch in intact)
    newest = intact[max(intact)]
    return UserError(f"{path}: {what}; intact epochs of {shown(run)}: {listed}; resume from the newest: "
                     f"{resume_command(newest)}")  # fmt: skip


def read_checkpoint(path: Path | str, mmap: bool = False) -> dict:
    """A checkpoint this project wrote (its hyper-parameters are plain objects, hence ``weights_only=False``);
    UserError naming the file when it is missing or damaged. ``mmap`` leaves the tensors on disk."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # a damaged pickle can raise almost anything (RuntimeError, UnpicklingError, ...)
        raise damaged_checkpoint(path, error) from error


@dataclass(frozen=True)
class SavedAt:
    """Where a training checkpoint was saved: its progress and the folder its ModelCheckpoint wrote into."""

    epoch: int
    global_step: int
    checkpoint_dirs: tuple[str, ...] = ()
    """``dirpath`` of each ModelCheckpoint state, spelled as the run spelled it (it is restored only when the
    resumed run spells its folder the same way; otherwise Lightning starts a ``last-v1.ckpt``)."""


def saved_at(path: Path | str) -> SavedAt:
    """The progress and checkpoint folders recorded in a checkpoint; the tensors stay on disk."""
    checkpoint = read_checkpoint(path, mmap=True)
    states = (checkpoint.get("callbacks") or {}).values()
    dirs = tuple(str(s["dirpath"]) for s in states if isinstance(s, dict) and s.get("dirpath"))
    return SavedAt(int(checkpoint.get("epoch", 0)), int(checkpoint.get("global_step", 0)), dirs)


def resume_checkpoint(run_dir: Path | str) -> Path | None:
    """What ``fit --resume RUN`` continues from: of the intact checkpoints in ``RUN/checkpoints``, the one whose
    record says it trained furthest (global step, then epoch; ``last.ckpt`` among equals), whatever its name.
    None when there is none.

    File names can lie: a ``last.ckpt`` left behind while an earlier version of this project wrote ``last-v1.ckpt``
    (a moved run folder), or an epoch copied in by hand. A file cut short (a kill, a full disk) is passed over; a
    complete one that cannot be read is an error, not a reason to go back silently to an older epoch.
    """
    progress: dict[Path, tuple[int, int, bool]] = {}
    for path in checkpoint_files(run_dir):
        try:
            saved = saved_at(path)
        except UserError:
            if is_intact(path):
                raise
            continue
        progress[path] = (saved.global_step, saved.epoch, path.name == LAST_CHECKPOINT)
    # Only the winner's every byte is checked (a full CRC read of each file would cost a whole run's size).
    return next((path for path in sorted(progress, key=progress.get, reverse=True) if is_intact(path)), None)
