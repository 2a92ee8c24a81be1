"""The atomic writer against a full or read-only disk: one line naming the path and the space, the previous file
byte for byte, no temporary left; a real tmpfs where the machine allows mounting one, a simulated disk always."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from helpers.faults import fake_disk, mounted_tmpfs

from qwen_tts_lit.cli.app import EXIT_RUN_FAILED, exit_code, message
from qwen_tts_lit.files import StorageError, write_atomic

OLD, NEW = b"old contents\n", b"x" * 200_000


def _assert_refused_and_intact(error: StorageError, target: Path, reason: str) -> None:
    assert str(target) in str(error) and reason in str(error) and "\n" not in str(error)
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # the temporary is gone


def test_a_full_tmpfs_refuses_the_write_and_keeps_the_old_file(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        target = write_atomic(disk / "best.out", OLD)
        with pytest.raises(StorageError) as raised:
            write_atomic(target, NEW)
        _assert_refused_and_intact(raised.value, target, "no space left on the device (195.3 KB needed")


def test_a_simulated_full_disk_refuses_the_write_and_keeps_the_old_file(tmp_path: Path, monkeypatch):
    target = write_atomic(tmp_path / "best.out", OLD)
    disk = fake_disk(monkeypatch, free=1000)
    with pytest.raises(StorageError) as raised:
        write_atomic(target, NEW)
    _assert_refused_and_intact(raised.value, target, "no space left on the device (195.3 KB needed, ")
    assert disk.failures and exit_code(raised.value) == EXIT_RUN_FAILED


def test_a_read_only_mount_refuses_the_write(tmp_path: Path):
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        target = write_atomic(disk / "best.out", OLD)
        from helpers.faults import remount

        remount(disk, "ro")
        with pytest.raises(StorageError) as raised:
            write_atomic(target, NEW)
        assert "the file system is read-only" in str(raised.value) and target.read_bytes() == OLD


def test_a_simulated_read_only_disk_refuses_the_write(tmp_path: Path, monkeypatch):
    target = write_atomic(tmp_path / "best.out", OLD)
    fake_disk(monkeypatch, read_only=True)
    with pytest.raises(StorageError, match="best.out: cannot write: the file system is read-only"):
        write_atomic(target, NEW)
    assert target.read_bytes() == OLD


def test_a_full_disk_in_code_we_do_not_own_is_one_line_and_exit_1(tmp_path: Path):
    """Lightning's CSV logger or libsndfile raise a plain OSError; the exit-code map turns it into the same line."""
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "metrics.csv"))
    assert exit_code(error) == EXIT_RUN_FAILED
    assert message(error).startswith(f"error: {tmp_path / 'metrics.csv'}: cannot write: no space left on the device")
    assert exit_code(OSError(errno.ENOENT, "missing")) is None  # any other OSError is a bug: traceback kept


def test_a_copytree_error_on_a_full_disk_is_the_same_one_line(tmp_path: Path):
    """shutil.copytree folds each file's OSError into the text of one shutil.Error; that is still a full disk."""
    import shutil

    target = tmp_path / "out" / "model.safetensors"
    error = shutil.Error([("src/model.safetensors", str(target), "[Errno 28] No space left on device")])
    assert exit_code(error) == EXIT_RUN_FAILED
    assert message(error).startswith(f"error: {target}: cannot write: no space left on the device")
    assert exit_code(shutil.Error([("a", "b", "[Errno 2] No such file or directory")])) is None  # a bug: traceback


def test_copying_a_folder_onto_a_full_tmpfs_leaves_nothing_behind(tmp_path: Path):
    from qwen_tts_lit.files import copy_file, copy_tree

    source = tmp_path / "source"
    (source / "inner").mkdir(parents=True)
    (source / "small.json").write_bytes(b"{}")
    (source / "inner" / "big.bin").write_bytes(NEW)
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        with pytest.raises(StorageError) as raised:
            copy_tree(source, disk / "copy")
        assert "big.bin: cannot write: no space left on the device (195.3 KB needed" in str(raised.value)
        assert list(disk.iterdir()) == []  # neither the part copied nor a temporary
        with pytest.raises(StorageError):
            copy_file(source / "inner" / "big.bin", disk / "big.bin")
        assert list(disk.iterdir()) == []
        assert copy_file(source / "small.json", disk / "small.json").read_bytes() == b"{}"
