"""Reading a run's checkpoints safely: a damaged file (cut short by a full disk or a killed copy, or not a
checkpoint at all) is named in one line with the run's intact epochs and the command that resumes from the newest,
never a raw torch traceback.

A checkpoint is torch's zip format, whose every member carries a CRC-32: :func:`is_intact` checks them all, so a
truncated or overwritten file is told apart from a good one without unpickling anything.

A checkpoint is also a pickle, and a pickle can run code. Run folders are shared (a colleague's run, a cluster's
scratch, a downloaded ablation), so every checkpoint is loaded with torch's safe loader (``weights_only=True``):
ours hold only tensors and plain values (dicts, lists, numbers, strings), which it accepts. Anything else is refused
in one line naming the file and what it wanted to run, unless the user passed ``--trust-run`` (:func:`trust_runs`).
The same rule covers the classes a run's ``config.yaml`` names when ``fit --resume`` instantiates them, and those a
checkpoint's hyper-parameters name, which LightningCLI merges into the config of ``fit``/``validate --ckpt_path``
(:func:`untrusted_classes`); while LightningCLI parses a run folder's config, jsonargparse may import nothing outside
:data:`TRUSTED_IMPORT_PATHS` (``cli/import_policy.py`` applies it). docs/sharing.md says what is safe to share.
"""

from __future__ import annotations

import os
import re
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

TRUST_FLAG = "--trust-run"
TRUST_ENV = "QWEN_TTS_LIT_TRUST_RUN"  # how the flag reaches the DDP processes Lightning starts
TRUSTED_PACKAGES = ("qwen_tts_lit", "lightning", "pytorch_lightning", "torch")
"""Packages whose classes a run folder may name without --trust-run: importing them runs nothing a fit of ours does
not run anyway."""
TRUSTED_CLASS_PREFIXES = tuple(f"{package}." for package in TRUSTED_PACKAGES)
TRUSTED_CLASSES = ("transformers.Adafactor", "transformers.optimization.Adafactor")
"""Single classes of other packages that a shipped config names (configs/gpu/24gb_full_sft.yaml's optimizer, under
its import path and the one it is defined under, which jsonargparse checks too): a run trained from any shipped
config resumes without the flag. Not all of ``transformers.``: some of its classes load models and tokenizers when
instantiated, which init_args can point at remote code."""
TRUSTED_IMPORT_PATHS = (*TRUSTED_PACKAGES, *TRUSTED_CLASSES)
"""The same, as jsonargparse's import-path allowlist entries (an entry covers every path under it)."""
CLASS_KEYS = ("class_path", "_class_path")  # jsonargparse's, and Lightning's in a checkpoint's hyper_parameters


def trust_runs(trusted: bool = True) -> None:
    """Load run folders' checkpoints and config classes without the safety checks (the user vouches for them)."""
    if trusted:
        os.environ[TRUST_ENV] = "1"
    else:
        os.environ.pop(TRUST_ENV, None)


def runs_trusted() -> bool:
    return os.environ.get(TRUST_ENV) == "1"


def untrusted_code(path: Path | str, wanted: str) -> UserError:
    return UserError(
        f"{path}: refused to load: it asks to run {wanted}, which no checkpoint or config of this project holds (a "
        f"run folder from elsewhere can carry code). If you trust whoever made it, add {TRUST_FLAG}; docs/sharing.md"
    )


def unsafe_global(error: BaseException) -> str | None:
    """The global a safe torch.load refused ("posix.system"), or None when the error is something else."""
    found = re.search(r"GLOBAL ([\w.]+)|Unsupported global: ([\w.]+)|unsupported (?:class|global) ([\w.]+)",
                      str(error))  # fmt: skip
    return next((g for g in found.groups() if g), None) if found else None


def is_trusted_class(name: str) -> bool:
    """Whether a run folder may name the class ``name`` (``package.module.Class``) without --trust-run."""
    return name.startswith(TRUSTED_CLASS_PREFIXES) or name in TRUSTED_CLASSES


def untrusted_classes(config: object, key: str = "") -> list[tuple[str, str]]:
    """(key, class) of every ``class_path`` (or Lightning's ``_class_path``) in a run's config or a checkpoint's
    hyper-parameters outside the trusted ones, e.g. ``("trainer.callbacks[3].class_path", "mylab.Hook")``; empty
    when trusted. Plain dotted strings are left to the import policy, which sees every import jsonargparse makes."""
    if runs_trusted():
        return []
    found: list[tuple[str, str]] = []
    if isinstance(config, dict):
        for name, value in config.items():
            inner = f"{key}.{name}" if key else str(name)
            if name in CLASS_KEYS and isinstance(value, str):
                found += [] if is_trusted_class(value) else [(inner, value)]
            else:
                found += untrusted_classes(value, inner)
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            found += untrusted_classes(value, f"{key}[{index}]")
    return found


def untrusted_class(path: Path | str, found: tuple[str, str]) -> UserError:
    """The one line for a config or checkpoint naming a class outside the trusted ones."""
    key, name = found
    return untrusted_code(path, f"the class {name} (at {key})")


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
    """A checkpoint this project wrote, loaded safely (tensors and plain values only, unless :func:`trust_runs`);
    UserError naming the file when it is missing, damaged or asks to run code. ``mmap`` leaves the tensors on disk."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=not runs_trusted(), mmap=mmap)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as error:  # a damaged pickle can raise almost anything (RuntimeError, UnpicklingError, ...)
        raise unreadable_checkpoint(path, error) from error


def unreadable_checkpoint(path: Path | str, error: BaseException) -> UserError:
    """The one line for a checkpoint torch could not load: one that asks to run code (the safe loader refused a
    global), else a damaged one. Our reads and Lightning's resume read (``AtomicCheckpointIO``) both say this."""
    wanted = unsafe_global(error)
    return untrusted_code(path, wanted) if wanted else damaged_checkpoint(path, error)


@dataclass(frozen=True)
class SavedAt:
    """How far a training checkpoint had trained. (Where its ModelCheckpoint wrote is no longer needed: a resumed
    run relocates that record, ``cli/run_folder.SessionCallback``.)"""

    epoch: int
    global_step: int


def saved_at(path: Path | str) -> SavedAt:
    """The progress recorded in a checkpoint a fit or validate starts from; the tensors stay on disk. Its
    hyper-parameters may name only trusted classes (unless trusted): LightningCLI merges them into the config it
    instantiates, after this read and before anything else looks at them."""
    checkpoint = read_checkpoint(path, mmap=True)
    for field in ("hyper_parameters", "datamodule_hyper_parameters"):
        for found in untrusted_classes(checkpoint.get(field) or {}, field)[:1]:
            raise untrusted_class(path, found)
    return SavedAt(int(checkpoint.get("epoch", 0)), int(checkpoint.get("global_step", 0)))


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
