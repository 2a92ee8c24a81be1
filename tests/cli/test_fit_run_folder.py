"""Where fit and validate write: --resume spelled out, validate of a saved checkpoint beside its run (labelled with
the checkpoint's own epoch), and the settings check as a pure function."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from helpers.prepare import tree_bytes
from helpers.runs import main

from qwen_tts_lit.cli.fit_settings import settings_problems
from qwen_tts_lit.cli.run_folder import expand_resume
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.runs.records import read_best, read_rows

QUIET = ("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false")


def _save(path: Path, epoch: int, step: int) -> None:
    """A checkpoint file in torch's format recording ``epoch`` and ``step`` (all that choosing one reads)."""
    torch.save({"epoch": epoch, "global_step": step, "state_dict": {"w": torch.full((64,), 7.0)}}, path)


def _run(tmp_path: Path, checkpoints=("epoch=000.ckpt", "last.ckpt")) -> Path:
    run = tmp_path / "runs" / "demo" / "version_3"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {}\n")
    for name in checkpoints:
        _save(run / "checkpoints" / name, 0, 5)
    return run


def test_resume_stands_for_the_saved_config_and_the_last_checkpoint(tmp_path: Path):
    run = _run(tmp_path)
    assert expand_resume(["fit", "--resume", str(run), "--trainer.max_epochs", "5"]) == [
        "fit", "--config", f"{run}/config.yaml", "--ckpt_path", f"{run}/checkpoints/last.ckpt",
        "--trainer.max_epochs", "5",
    ]  # fmt: skip
    epoch = f"{run}/checkpoints/epoch=000.ckpt"
    expanded = ["fit", "--config", f"{run}/config.yaml", "--ckpt_path", epoch]
    assert expand_resume(["fit", f"--resume={epoch}"]) == expanded
    assert expand_resume(["fit", "--config", "c.yaml"]) == ["fit", "--config", "c.yaml"]  # untouched without it


def test_resume_says_what_is_missing(tmp_path: Path):
    with pytest.raises(UserError, match="no such run folder or checkpoint"):
        expand_resume(["fit", "--resume", str(tmp_path / "nowhere")])
    empty = _run(tmp_path, checkpoints=())
    with pytest.raises(UserError, match="no checkpoint was saved yet, so there is nothing to resume; start again"):
        expand_resume(["fit", "--resume", str(empty)])
    (empty / "config.yaml").unlink()
    with pytest.raises(UserError, match="config.yaml not found; is this a run folder"):
        expand_resume(["fit", "--resume", str(empty)])


def test_resume_takes_the_checkpoint_that_trained_furthest_whatever_its_name(tmp_path: Path):
    """File names can lie (a stale last.ckpt beside the last-v1.ckpt an earlier version wrote into a moved run
    folder): the record inside each file decides; a file cut short or corrupted is passed over; among equals,
    last.ckpt."""
    run = _run(tmp_path, checkpoints=())
    folder = run / "checkpoints"
    for name, epoch, step in [("epoch=000.ckpt", 0, 5), ("epoch=001.ckpt", 1, 10), ("last.ckpt", 0, 5),
                              ("last-v1.ckpt", 2, 15)]:  # fmt: skip
        _save(folder / name, epoch, step)

    def resumed() -> str:
        return Path(expand_resume(["fit", "--resume", str(run)])[4]).name

    assert resumed() == "last-v1.ckpt"
    data = (folder / "last-v1.ckpt").read_bytes()
    (folder / "last-v1.ckpt").write_bytes(data[: len(data) // 2])  # cut short by a kill: unreadable
    assert resumed() == "epoch=001.ckpt"
    _save(folder / "last.ckpt", 1, 10)
    assert resumed() == "last.ckpt"  # the same progress as epoch=001.ckpt
    data = bytearray((folder / "last.ckpt").read_bytes())
    start = data.index(torch.full((64,), 7.0).numpy().tobytes())  # a weight: still loads, its CRC fails
    data[start] ^= 0xFF
    (folder / "last.ckpt").write_bytes(bytes(data))
    assert resumed() == "epoch=001.ckpt"
    for name in ("epoch=000.ckpt", "epoch=001.ckpt"):
        (folder / name).write_bytes(b"x")
    with pytest.raises(UserError, match=r"no checkpoint in .*checkpoints is intact \(cut short by a kill or a full"):
        expand_resume(["fit", "--resume", str(run)])


def test_settings_problems_are_one_line_each():
    config = {
        "trainer": {"max_epochs": 0, "max_steps": -1, "limit_train_batches": 0.0, "accumulate_grad_batches": 1},
        "model": {"finetune": "lora", "lora": {"rank": 4, "alpha": -1, "dropout": 1.0}, "warmup_ratio": 1.5,
                  "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.0, "weight_decay": -1}}},
        "data": {"batch_size": 2, "num_workers": -1},
    }  # fmt: skip
    assert settings_problems(config, "fit") == [
        "trainer.max_epochs 0: nothing would be trained; give at least 1 (-1: no limit)",
        "trainer.limit_train_batches 0.0: nothing would be trained; must be > 0",
        "model.lora.alpha -1: must be > 0",
        "model.lora.dropout 1.0: must be in [0, 1)",
        "model.optimizer.init_args.lr 0.0: the learning rate must be a positive number",
        "model.optimizer.init_args.weight_decay -1: must be >= 0",
        "model.warmup_ratio 1.5: must be in [0, 1)",
        "data.num_workers -1: must be >= 0",
    ]
    config["model"] = {"finetune": "full", "lora": {"rank": 0}}  # LoRA settings do not matter in full fine-tuning
    config["trainer"] = {"max_epochs": -1}
    assert settings_problems(config, "fit") == ["data.num_workers -1: must be >= 0"]


def test_validate_writes_beside_the_run_labelled_with_the_checkpoints_epoch(
    demo_run: Path, tmp_path: Path, capsys, monkeypatch, run_cache
):
    """``validate --ckpt_path RUN/checkpoints/last.ckpt`` of a 2-epoch run: rows and the chosen cell say epoch 1
    (Lightning's counter says 0), in RUN/validate/epoch=001/version_0; no new run version, the run's files untouched."""
    run = tmp_path / "runs" / "demo" / "version_0"
    shutil.copytree(demo_run, run)
    before = tree_bytes(run)
    monkeypatch.chdir(tmp_path)
    evaluation = ("--trainer.callbacks.scales", "[1.0]", "--trainer.callbacks.num_utterances", "1")
    args = ("--config", run / "config.yaml", "--ckpt_path", run / "checkpoints" / "last.ckpt", *evaluation)
    assert main("validate", *args, "--trainer.limit_val_batches", "1", *QUIET) == 0
    results = run / "validate" / "epoch=001" / "version_0"
    assert {row["epoch"] for row in read_rows(results)} == {1} and read_best(results)["epoch"] == 1
    err = capsys.readouterr().err
    shown = results.relative_to(tmp_path)
    assert f"validate: epoch 1 of runs/demo/version_0/checkpoints/last.ckpt; results in {shown}" in err
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]
    assert {k: v for k, v in tree_bytes(run).items() if not k.startswith("validate/")} == before


@pytest.mark.parametrize(
    ("name", "voices", "speaker"),
    [("demo", [], "demo"), ("My Voice", [], "voice"), ("Ünï", [], "ünï"), ("demo", ["ann", "bob"], None)],
)
def test_the_closing_export_hint_passes_exports_own_checks(name: str, voices: list[str], speaker, tmp_path: Path,
                                                           monkeypatch, capsys):  # fmt: skip
    """fit's last line proposes an export command; parsed by export's own parser, it passes export's checks of the
    flags and of the run's speakers (several speakers: no --speaker_name, which export refuses for them)."""
    import shlex

    import numpy as np

    from qwen_tts_lit.cli.parser import parse_request
    from qwen_tts_lit.export.request import ExportRequest
    from qwen_tts_lit.runs.folder import export_command
    from qwen_tts_lit.speaker_file import run_speakers, write_speaker, write_speakers

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / name / "version_2"
    run.mkdir(parents=True)
    if voices:
        write_speakers(run, {voice: np.full(4, i, dtype=np.float32) for i, voice in enumerate(voices)})
    else:
        write_speaker(run, np.ones(4, dtype=np.float32))
    command = shlex.split(export_command(run))
    assert command[:4] == ["python", "-m", "qwen_tts_lit", "export"]
    request = parse_request("export", ExportRequest, command[4:])
    assert "note:" not in capsys.readouterr().err  # spelled as export spells its options now
    request.check()
    request.check_speakers(run_speakers(run))
    assert request.run == Path("runs") / name / "version_2" and request.speaker_name == speaker
    assert request.output == Path("exports") / f"{name}-version_2"
