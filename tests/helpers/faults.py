"""Faults on demand: a disk that fills up or is read-only, for real (a tmpfs mount, where the machine allows one) and
simulated (the one atomic writer, ``qwen_tts_lit.files``, opening files on a disk with a byte budget)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qwen_tts_lit import files


@contextmanager
def mounted_tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` (e.g. "300k"); the test is skipped where mounting is not allowed
    (not root, no CAP_SYS_ADMIN). Unmounted afterwards."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def remount(folder: Path, options: str) -> None:
    """Change a mounted tmpfs (a bigger size: the user freed space; rw/ro)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True, capture_output=True)


class FakeDisk:
    """Monkeypatched into :mod:`qwen_tts_lit.files`: every file the atomic writer opens lives on a disk with ``free``
    bytes left (then ENOSPC, as ``write`` raises it), or on a read-only file system (EROFS at ``open``)."""

    def __init__(self, free: int, read_only: bool = False) -> None:
        self.free, self.read_only, self.failures = free, read_only, []

    def open(self, path, mode="r", *args, **kwargs):
        if self.read_only:
            self.failures.append(path)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return _BudgetFile(open(path, mode, *args, **kwargs), self, path)


class _BudgetFile:
    def __init__(self, handle, disk: FakeDisk, path) -> None:
        self.handle, self.disk, self.path = handle, disk, path

    def write(self, data) -> int:
        if len(data) > self.disk.free:
            self.handle.write(data[: self.disk.free])  # a full disk takes what fits, then refuses
            self.disk.free = 0
            self.disk.failures.append(self.path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.free -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def fake_disk(monkeypatch: pytest.MonkeyPatch, free: int = 0, read_only: bool = False) -> FakeDisk:
    """Put the atomic writer on a :class:`FakeDisk` for the rest of the test."""
    disk = FakeDisk(free, read_only)
    monkeypatch.setattr(files, "open", disk.open, raising=False)
    return disk
