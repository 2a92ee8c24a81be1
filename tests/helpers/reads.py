"""Counting what a verb reads of a folder: every ``open`` and folder listing below it (Python's audit events: they
fire for ``open``, ``Path.read_text``, ``torch.load``, ``zipfile``, ...), plus the speaker file's ``safe_open``
(safetensors reads from Rust, where no event fires)."""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_active: list[tuple[Path, collections.Counter]] = []  # the counters of the open ``counting_reads`` blocks
_EVENTS = {"open": "open", "os.listdir": "list", "os.scandir": "list"}


def _below(path: object, root: Path) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # a file descriptor: its open was counted
    try:
        relative = Path(os.fsdecode(path)).absolute().relative_to(root)
    except ValueError:
        return None
    return relative.as_posix()


def _reading(event: str, args: tuple) -> bool:
    """A listing, or an open for reading of a file (not a write, not a folder opened to fsync it)."""
    if event != "open":
        return True
    mode, flags = (tuple(args[1:3]) + (None, None))[:2]
    if isinstance(mode, str):
        writes = any(c in mode for c in "wax+")
    else:
        writes = bool((flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    path = args[0]
    return not writes and not (isinstance(path, (str, bytes, os.PathLike)) and os.path.isdir(path))


def _hook(event: str, args: tuple) -> None:
    kind = _EVENTS.get(event)
    if kind is None or not _active or not _reading(event, args):
        return
    for root, counter in _active:
        name = _below(args[0] if args else None, root)
        if name is not None:
            counter[kind, name] += 1


_installed = False


@contextmanager
def counting_reads(root: Path) -> Iterator[collections.Counter]:
    """Within the block, (kind, path relative to ``root``) -> count, kind "open" (a file opened for reading) or
    "list" (a folder listed)."""
    global _installed
    if not _installed:  # an audit hook cannot be removed: one for the process, idle outside the blocks
        sys.addaudithook(_hook)
        _installed = True
    import safetensors

    counter: collections.Counter = collections.Counter()
    entry = (Path(root).absolute(), counter)
    original = safetensors.safe_open

    def safe_open(filename, *args, **kwargs):
        _hook("open", (filename, "rb", 0))
        return original(filename, *args, **kwargs)

    _active.append(entry)
    safetensors.safe_open = safe_open
    try:
        yield counter
    finally:
        safetensors.safe_open = original
        _active.remove(entry)
