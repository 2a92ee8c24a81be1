"""How ``fit`` writes and reads checkpoints (Lightning's extension point for it: a ``CheckpointIO`` plugin, which
the CLI installs unless a config brings its own).

Writing: a temporary sibling, fsync, one rename (``files.write_with``, streamed, no second copy in memory), so
``last.ckpt`` is always the previous complete checkpoint or the new complete one, also when the disk fills up or
the process is killed mid-write; a full disk stops the run with one line naming the file and the space needed.
Reading: a damaged file becomes one line naming it, the run's intact epochs and the command that resumes from the
newest (``runs.checkpoints``), not a torch traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.files import write_with
from qwen_tts_lit.runs.checkpoints import runs_trusted, unreadable_checkpoint


def tensor_bytes(value: Any) -> int:
    """Bytes of every tensor in a nested checkpoint (what the file will at least take on disk)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def is_local(path: Any) -> bool:
    return "://" not in str(path)  # s3://, gs://, ...: Lightning's fsspec writer handles those


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary sibling, fsync, rename; damaged checkpoints named, not unpickled blindly."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_with(Path(path), lambda handle: torch.save(checkpoint, handle), needed=tensor_bytes(checkpoint))

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None) -> dict[str, Any]:
        if not is_local(path):
            return super().load_checkpoint(path, map_location, weights_only)
        if not Path(path).is_file():
            raise UserError(f"{path}: checkpoint not found")
        if weights_only is None:  # Lightning's resume: the safe loader, as every other read of a run's checkpoint
            weights_only = not runs_trusted()
        try:
            return super().load_checkpoint(path, map_location or (lambda storage, loc: storage), weights_only)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as error:  # a damaged pickle can raise almost anything
            raise unreadable_checkpoint(path, error) from error
