"""Writing outputs so that nothing is ever half-written: a temporary sibling, fsync, then one rename.

Readers (a resumed ``prepare``, a browser on report.html, ``ablate`` deciding whether a run finished, a resumed
``fit`` opening last.ckpt) see the old file or the complete new one, whatever kills the process: the data is
flushed to disk (fsync) before the rename, and the folder after it, so a power cut cannot leave a renamed but empty
file either.

A write that fails because the disk is full or read-only becomes :class:`StorageError` (a
:class:`~qwen_tts_lit.errors.RunFailed`, exit 1): one line naming the path and the space needed and free; the
temporary file is removed and the previous file, if any, is untouched. :func:`storage_error` turns the same
``OSError`` raised by code we do not own (Lightning's loggers, libsndfile) into that message (``cli/app.py``), also
when ``shutil.copytree`` folded it into the text of a ``shutil.Error``. Files and folders are copied with
:func:`copy_file` and :func:`copy_tree`, which write the same way and fail with the same line.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

from qwen_tts_lit.errors import RunFailed

# The write errors that are the machine's state, not a bug: each becomes one line for the user.
STORAGE_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
}


class StorageError(RunFailed):
    """A write failed because the disk is full, over quota or read-only. Files written before are intact."""


def shown(path: Path | str) -> str:
    """A path as commands show it: relative to the current directory when inside it, else absolute."""
    path = Path(path).absolute()
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def free_bytes(path: Path | str) -> int | None:
    """Free bytes on the file system that holds ``path`` (its nearest existing ancestor); None when unknown."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def unwritable(folder: Path | str) -> str | None:
    """Why nothing can be written into ``folder`` (or created there: its nearest existing ancestor is what counts),
    or None. Checked before the work (prepare, synthesize) so that a read-only output is found out in a second, not
    after hours of it."""
    folder = Path(folder).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK):  # a read-only file system refuses even root
        return f"{existing} is not writable (a read-only file system, or no permission)"
    return None


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KB' (powers of 1024, one decimal)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


RUST_IO_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors, tokenizers) spell an errno
PYTHON_IO_ERROR = re.compile(r"\[Errno (\d+)\]")  # str(OSError): shutil.Error keeps only this text of each failure


def _copytree_cause(error: shutil.Error) -> OSError | None:
    """The first full-disk or read-only failure among those ``shutil.copytree`` collected: it catches every OSError
    of the copy, carries on with the next file and raises one ``shutil.Error`` listing (source, target, str(error))."""
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    for entry in entries:
        if isinstance(entry, tuple) and len(entry) == 3:
            found = PYTHON_IO_ERROR.search(str(entry[2]))
            if found and int(found.group(1)) in STORAGE_ERRORS:
                return OSError(int(found.group(1)), str(entry[2]), str(entry[1]))
    return None


def _storage_cause(error: BaseException | None) -> OSError | None:
    """The full-disk or read-only OSError behind ``error``, also when a library raised its own error while handling
    it (torch.save's zip writer does) or reports one as text (safetensors does)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in STORAGE_ERRORS:
            return error
        if isinstance(error, shutil.Error) and (cause := _copytree_cause(error)) is not None:
            return cause
        found = RUST_IO_ERROR.search(str(error)) if not isinstance(error, OSError) else None
        if found and int(found.group(1)) in STORAGE_ERRORS:
            return OSError(int(found.group(1)), str(error))
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def storage_error(
    error: BaseException, path: Path | str | None = None, needed: int | None = None
) -> StorageError | None:
    """The one-line :class:`StorageError` for a full or read-only disk, else None (any other error is not ours).
    ``path`` names what could not be written (default: the file the OSError names)."""
    if isinstance(error, StorageError) and path is None:
        return error
    cause = _storage_cause(error)
    if cause is None:
        return None
    where = Path(path if path is not None else (cause.filename or "(unknown path)"))
    reason = f"{where}: cannot write: {STORAGE_ERRORS[cause.errno]}"
    if cause.errno == errno.EROFS:
        return StorageError(f"{reason}; files written before are intact; choose a writable folder")
    free = free_bytes(where)
    sizes = [f"{human_bytes(needed)} needed" if needed else "", "" if free is None else f"{human_bytes(free)} free"]
    detail = ", ".join(s for s in sizes if s)
    return StorageError(reason + (f" ({detail})" if detail else "") + "; files written before are intact")


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_file(path: Path | str, needed: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary sibling that is fsynced and renamed onto ``path`` when
    the block ends, and removed when it raises. ``needed`` (bytes) only improves a disk-full message."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        _abandon(temporary, error, path, needed)
        raise
    _fsync_folder(path.parent)


def raise_storage_error(error: BaseException, path: Path | str | None = None, needed: int | None = None) -> None:
    """Raise the one-line :func:`storage_error` in place of ``error`` when it is one (the caller re-raises ``error``
    itself otherwise)."""
    failure = storage_error(error, path, needed)
    if failure is not None and failure is not error:
        raise failure from error


def _abandon(temporary: Path, error: BaseException, path: Path, needed: int | None) -> None:
    """An atomic write that failed: remove its temporary; a full or read-only disk becomes StorageError."""
    with suppress(OSError):  # a read-only file system refuses even removing a file that is not there
        temporary.unlink(missing_ok=True)
    raise_storage_error(error, path, needed)


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_file`; parent folders are created."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, needed=len(payload)) as handle:
        handle.write(payload)
    return Path(path)


def write_with(path: Path | str, writer: Callable[[BinaryIO], None], needed: int | None = None) -> Path:
    """Atomic write of whatever ``writer(file)`` streams (e.g. ``torch.save``), without a copy in memory."""
    with atomic_file(path, needed) as handle:
        writer(handle)
    return Path(path)


@contextmanager
def atomic_path(path: Path | str, needed: int | None = None) -> Iterator[Path]:
    """A temporary sibling path for writers that take a file name (``shutil.copyfile``): renamed onto ``path`` when
    the block ends, removed when it raises; a full or read-only disk becomes :class:`StorageError`, as in
    :func:`atomic_file`."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException as error:
        _abandon(temporary, error, path, needed)
        raise
    _fsync_folder(path.parent)


def copy_file(source: Path | str, target: Path | str) -> Path:
    """Copy a file's bytes and times (``shutil.copy2``) atomically: ``target`` is the whole copy or absent (or its
    previous contents); a full or read-only disk is one line naming ``target``."""
    source = Path(source)
    with atomic_path(target, needed=source.stat().st_size) as temporary:
        shutil.copy2(source, temporary)
    return Path(target)


def copy_tree(source: Path | str, target: Path | str) -> Path:
    """Copy a folder (``target`` must not exist), every file through :func:`copy_file`. A failure stops at the first
    file (``shutil.copytree`` alone would try every other file on a full disk and raise one error listing them all),
    and the part copied so far is removed: ``target`` is the whole copy or absent."""
    target = Path(target)
    try:
        shutil.copytree(source, target, copy_function=copy_file)
    except BaseException as error:
        shutil.rmtree(target, ignore_errors=True)
        raise_storage_error(error)  # names the file that did not fit
        raise
    return target


def remove_temporaries(folder: Path | str) -> None:
    """Remove the temporary files a killed process left in ``folder`` (:func:`atomic_file`'s ``.NAME.*.tmp``)."""
    for leftover in Path(folder).glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _stale(folder: Path, prefix: str) -> bool:
    """A staging folder whose process is gone (names carry the creator's pid; a name without one is stale)."""
    pid = folder.name[len(prefix) :].split("-", 1)[0]
    return not pid.isdigit() or not _pid_alive(int(pid))


@contextmanager
def staged_folder(output: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of ``output`` to write a whole folder into; when the block ends it replaces
    ``output`` (renames: the old one is kept until the new one is in place), when it raises it is removed.

    Staging folders that a killed earlier run left (``.NAME.partial-PID-*``, ``.NAME.old-PID-*`` whose process is
    gone; at real size, gigabytes) are removed first.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for kind in ("partial", "old"):
        prefix = f".{output.name}.{kind}-"
        for leftover in output.parent.glob(f"{prefix}*"):
            if leftover.is_dir() and _stale(leftover, prefix):
                shutil.rmtree(leftover, ignore_errors=True)
    pid = os.getpid()
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-{pid}-", dir=output.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; what is staged here is meant to be shared
    try:
        yield staging
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-{pid}-", dir=output.parent))
            os.replace(output, old / output.name)  # keep the old one until the new one is in place
            os.replace(staging, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, output)
        _fsync_folder(output.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """A 16-bit PCM WAV file's bytes (int16 input as is; float input clipped to [-1, 1])."""
    import soundfile as sf

    if np.issubdtype(np.asarray(audio).dtype, np.floating):
        audio = np.clip(audio, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: Path | str, audio: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV, written atomically."""
    return write_atomic(path, wav_bytes(audio, rate))
