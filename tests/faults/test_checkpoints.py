"""Checkpoints under faults: the writer on a full disk keeps the last good checkpoint, a damaged checkpoint is named
with the run's intact epochs (never a torch traceback), and a full disk in the middle of a fit stops it with one
line and the resume command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from helpers.faults import fake_disk, mounted_tmpfs
from helpers.prepare import tree_bytes
from helpers.runs import main

from qwen_tts_lit.cli.run_folder import expand_resume
from qwen_tts_lit.files import StorageError
from qwen_tts_lit.train.checkpoint_io import AtomicCheckpointIO

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


@pytest.fixture(scope="module")
def checkpoint(demo_run: Path) -> dict:
    return torch.load(demo_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def _run_with_damaged_last(demo_run: Path, target: Path, damage: bytes | None = None) -> Path:
    """A copy of the demo run's config and checkpoints whose last.ckpt is cut short (or replaced by ``damage``)."""
    (target / "checkpoints").mkdir(parents=True)
    shutil.copy(demo_run / "config.yaml", target / "config.yaml")
    for name in ("epoch=000.ckpt", "epoch=001.ckpt"):
        shutil.copy(demo_run / "checkpoints" / name, target / "checkpoints" / name)
    last = (demo_run / "checkpoints" / "last.ckpt").read_bytes()
    (target / "checkpoints" / "last.ckpt").write_bytes(damage if damage is not None else last[: len(last) * 2 // 3])
    return target


@pytest.mark.parametrize("where", ["tmpfs", "simulated"])
def test_a_full_disk_never_truncates_last_ckpt(where: str, checkpoint: dict, tmp_path: Path, monkeypatch):
    writer = AtomicCheckpointIO()
    folder = tmp_path / "disk"
    with mounted_tmpfs(folder, "400k") if where == "tmpfs" else _plain(folder):
        last = folder / "last.ckpt"
        writer.save_checkpoint(checkpoint, last)
        good = last.read_bytes()
        if where == "simulated":
            fake_disk(monkeypatch, free=len(good) // 2)
        with pytest.raises(StorageError) as raised:
            writer.save_checkpoint(checkpoint, last)  # a tmpfs of 400k holds one, not two
        assert str(last) in str(raised.value) and "no space left on the device" in str(raised.value)
        assert last.read_bytes() == good and [p.name for p in folder.iterdir()] == ["last.ckpt"]
        assert writer.load_checkpoint(last)["global_step"] == checkpoint["global_step"]


class _plain:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)

    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


@pytest.mark.parametrize("damage", [None, b"\x93\x07 random bytes" * 40], ids=["truncated", "random_bytes"])
def test_resuming_from_a_damaged_checkpoint_names_it_and_the_intact_epochs(
    damage, demo_run: Path, tmp_path: Path, capsys, run_cache
):
    run = _run_with_damaged_last(demo_run, tmp_path / "version_0", damage)
    before = tree_bytes(run)
    # --resume RUN takes the newest intact checkpoint (tests/e2e/test_fit_relocated.py); the damaged file named
    # itself is refused in one line that says which epochs are intact
    assert main("fit", "--resume", f"{run}/checkpoints/last.ckpt") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        f"error: {run}/checkpoints/last.ckpt: is damaged or not a checkpoint (cut short by a full disk or a killed "
        f"copy?); intact epochs of {run}: 0, 1; resume from the newest: python -m qwen_tts_lit fit --resume "
        f"{run}/checkpoints/epoch=001.ckpt"
    )
    assert tree_bytes(run) == before  # nothing touched
    config, checkpoint = expand_resume(["fit", "--resume", f"{run}/checkpoints/epoch=001.ckpt"])[2:5:2]
    assert (config, checkpoint) == (f"{run}/config.yaml", f"{run}/checkpoints/epoch=001.ckpt")  # the advice works


def test_a_random_file_given_to_lightning_spelling_is_named(tmp_path: Path, capsys, run_cache):
    junk = tmp_path / "model.ckpt"
    junk.write_bytes(bytes(range(256)) * 10)
    assert main("fit", "--config", DEMO_CONFIG, "--ckpt_path", junk) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {junk}: is damaged or not a checkpoint (cut short by a full disk or a killed copy?)"
    )
    assert not (tmp_path / "runs").exists()


def test_export_of_a_damaged_epoch_names_the_file(demo_run: Path, tmp_path: Path, capsys, run_cache):
    run = _run_with_damaged_last(demo_run, tmp_path / "version_0")
    (run / "checkpoints" / "epoch=001.ckpt").write_bytes(b"PK\x03\x04 cut")
    args = ("--run", run, "--epoch", 1, "--output", tmp_path / "out", "--speaker_name", "demo")
    assert main("export", *args) == 2
    err = capsys.readouterr().err
    assert f"{run}/checkpoints/epoch=001.ckpt: is damaged or not a checkpoint" in err and "intact epochs" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
