"""A run folder is relocatable: copied elsewhere (``cp -a``, another disk, another node), ``fit --resume COPY``
continues the copy as its own run, and every resume takes the newest checkpoint the folder holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from helpers.fit import run_cli

pytestmark = pytest.mark.slow

SHORT = ("--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0")  # one step an epoch, no eval


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def _epoch(checkpoint: Path) -> int:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"]


def _bytes(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}


def test_a_copied_run_folder_resumes_as_its_own_run(demo_run: Path, fit_cache: Path, tmp_path: Path):
    """The session's 2-epoch demo run copied as ``cp -a`` does (the original stays where it was, so its recorded
    checkpoint folder still exists): two resumes of the copy update its ``last.ckpt`` in place, write no
    ``last-v1.ckpt`` or ``epoch=NNN-v1.ckpt``, the second continues where the first ended, and the original is
    not touched."""
    original = _bytes(demo_run)
    copy = tmp_path / "elsewhere" / "version_0"
    shutil.copytree(demo_run, copy, symlinks=True)

    first = run_cli(tmp_path, "fit", "--resume", "elsewhere/version_0", "--trainer.max_epochs", "3", *SHORT,
                    cache=fit_cache)  # fmt: skip
    assert "fit: resuming elsewhere/version_0 from elsewhere/version_0/checkpoints/last.ckpt (epoch 1" in first.stderr
    assert "dirpath has changed" not in first.stderr
    assert _checkpoints(copy) == ["epoch=000.ckpt", "epoch=001.ckpt", "epoch=002.ckpt", "last.ckpt"]
    assert _epoch(copy / "checkpoints" / "last.ckpt") == 2

    second = run_cli(tmp_path, "fit", "--resume", "elsewhere/version_0", "--trainer.max_epochs", "4", *SHORT,
                     cache=fit_cache)  # fmt: skip
    assert "from elsewhere/version_0/checkpoints/last.ckpt (epoch 2" in second.stderr
    assert _checkpoints(copy) == ["epoch=000.ckpt", "epoch=001.ckpt", "epoch=002.ckpt", "epoch=003.ckpt", "last.ckpt"]
    assert _epoch(copy / "checkpoints" / "last.ckpt") == 3
    saved = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    (state,) = (s for s in saved["callbacks"].values() if "dirpath" in s)
    assert Path(state["dirpath"]) == (copy / "checkpoints").absolute()  # the copy now records itself
    assert all(Path(path).parent == (copy / "checkpoints").absolute() for path in state["best_k_models"])
    assert _bytes(demo_run) == original


def _as_first_version(run: Path) -> None:
    """Spell ``run``'s config.yaml and checkpoints' hyper-parameters as the first version did (flat
    ``model.lora_rank``, ``model.fix_*``, ``data.use_language_tag``)."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["model"].update({f"lora_{k}": v for k, v in config["model"].pop("lora").items()})
    config["model"].update({f"fix_{k}": v for k, v in config["model"].pop("fixes").items()})
    config["data"]["use_language_tag"] = config["data"].pop("language_tag") == "on"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for path in (run / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        hparams = checkpoint["hyper_parameters"]
        hparams.update({f"lora_{k}": v for k, v in hparams.pop("lora").items()})
        hparams.update({f"fix_{k}": v for k, v in hparams.pop("fixes").items()})
        torch.save(checkpoint, path)


def test_a_run_folder_of_the_first_version_resumes_with_one_line_per_renamed_key(
    demo_run: Path, fit_cache: Path, tmp_path: Path
):
    """Its config.yaml and its checkpoints spell the LoRA and bug-switch settings the old way: the resume reads them
    under the new names (the demo's rank 8, not the default 16), says so once per key, and the config.yaml it
    writes back uses the new names."""
    run = tmp_path / "old" / "version_0"
    shutil.copytree(demo_run, run, symlinks=True)
    _as_first_version(run)
    resumed = run_cli(tmp_path, "fit", "--resume", "old/version_0", "--trainer.max_epochs", "3", *SHORT,
                      cache=fit_cache)  # fmt: skip
    notes = [line for line in resumed.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 9 and all(f"{(run / 'config.yaml').absolute()}: " in line for line in notes), notes
    assert "note: " in resumed.stderr and "model.lora_rank is now called model.lora.rank" in resumed.stderr
    assert _epoch(run / "checkpoints" / "last.ckpt") == 2
    hparams = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hparams["lora"] == {"rank": 8, "alpha": 16, "dropout": 0.0, "code_predictor": False}
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["lora"]["rank"] == 8 and "lora_rank" not in saved["model"]
