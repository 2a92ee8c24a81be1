"""export onto a full disk: one line, exit 1, the earlier export byte for byte and no staging folder left; a real
tmpfs where the machine allows mounting one (the model files fill it), a simulated disk always (our metadata)."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from helpers.faults import fake_disk, mounted_tmpfs
from helpers.prepare import tree_bytes
from helpers.runs import main

pytestmark = pytest.mark.usefixtures("run_cache")


def _earlier_export(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "qwen_tts_lit.json").write_text('{"earlier": true}\n')
    (out / "adapter_model.safetensors").write_bytes(b"the earlier export")
    return out


def _export(run: Path, out: Path) -> int:
    args = ("--epoch", 1, "--speaker_name", "demo", "--format", "adapter", "--force", "true")
    return main("export", "--run", run, "--output", out, *args)


def _assert_one_line_and_intact(capsys, out: Path, before: dict) -> None:
    err = capsys.readouterr().err
    assert "cannot write: no space left on the device" in err.strip().splitlines()[-1] and "Traceback" not in err
    assert tree_bytes(out) == before and [p.name for p in out.parent.iterdir()] == [out.name]


def test_export_onto_a_full_tmpfs_keeps_the_earlier_export(demo_run: Path, tmp_path: Path, capsys):
    with mounted_tmpfs(tmp_path / "disk", "48k") as disk:
        out = _earlier_export(disk / "demo")
        before = tree_bytes(out)
        assert _export(demo_run, out) == 1
        _assert_one_line_and_intact(capsys, out, before)


def test_export_onto_a_simulated_full_disk_keeps_the_earlier_export(demo_run, tmp_path, capsys, monkeypatch):
    out = _earlier_export(tmp_path / "exports" / "demo")
    before = tree_bytes(out)
    fake_disk(monkeypatch, free=0)
    assert _export(demo_run, out) == 1
    _assert_one_line_and_intact(capsys, out, before)


def _failure_line(capsys) -> str:
    """stderr, checked to be export's notes (which epoch and scale) and then one error line."""
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("export: ")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return err


def _export_custom_voice(run: Path, out: Path) -> int:
    """The custom_voice format copies the base folder's files (speech_tokenizer/: 7.6 MB on the tiny model)."""
    return main("export", "--run", run, "--output", out, "--epoch", 1, "--speaker_name", "demo", "--force", "true")


def test_export_whose_model_copy_fills_a_tmpfs_is_one_line(demo_run: Path, tmp_path: Path, capsys):
    """3 MB free: the disk fills while speech_tokenizer/ is copied (shutil.copytree's shutil.Error, a 30-line
    traceback before), not while the weights are written (12 MB free)."""
    with mounted_tmpfs(tmp_path / "disk", "3m") as disk:
        out = _earlier_export(disk / "demo")
        before = tree_bytes(out)
        assert _export_custom_voice(demo_run, out) == 1
        err = _failure_line(capsys)
        assert "shutil.Error" not in err
        assert "cannot write: no space left on the device" in err and f"{out} is unchanged" in err
        assert tree_bytes(out) == before and [p.name for p in out.parent.iterdir()] == [out.name]


def test_export_whose_model_copy_hits_a_simulated_full_disk_is_one_line(demo_run, tmp_path, capsys, monkeypatch):
    """Every file copy fails as a full disk fails it (part written, then ENOSPC): one line, nothing half-written."""

    def full_disk_copy(source, target, **kwargs):
        Path(target).write_bytes(Path(source).read_bytes()[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    monkeypatch.setattr(shutil, "copyfile", full_disk_copy)
    out = _earlier_export(tmp_path / "exports" / "demo")
    before = tree_bytes(out)
    assert _export_custom_voice(demo_run, out) == 1
    err = _failure_line(capsys)
    assert "cannot write: no space left on the device" in err and f"{out} is unchanged" in err
    assert tree_bytes(out) == before and [p.name for p in out.parent.iterdir()] == [out.name]
