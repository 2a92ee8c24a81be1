"""fit and evaluate under faults, in-process on the tiny checkpoint: impossible settings refused before any folder
exists, a dataset that is missing or could never be evaluated refused before training, a full disk in the middle of a
fit and during an evaluation. Each: the exit code, the one line, and that nothing earlier was lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from helpers.faults import fake_disk
from helpers.prepare import tree_bytes
from helpers.runs import main

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG, DEMO_RAW = REPO / "configs" / "demo.yaml", REPO / "data" / "demo" / "raw" / "train_raw.jsonl"
QUIET = ("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false")

# Each impossible setting and its line (all reported at once, one line each, exit 2).
IMPOSSIBLE = {
    ("--model.lora.rank", "0"): "model.lora.rank 0: must be >= 1",
    ("--model.lora.alpha", "0"): "model.lora.alpha 0: must be > 0",
    ("--model.optimizer.init_args.lr", "-0.001"): (
        "model.optimizer.init_args.lr -0.001: the learning rate must be a positive number"
    ),
    ("--trainer.max_epochs", "0"): "trainer.max_epochs 0: nothing would be trained; give at least 1 (-1: no limit)",
    ("--trainer.accumulate_grad_batches", "0"): "trainer.accumulate_grad_batches 0: must be an integer >= 1",
    ("--data.batch_size", "0"): "data.batch_size 0: must be >= 1",
    ("--trainer.callbacks.scales", "[0.5, 3.0]"): (
        "EvalSuite.scales: 3.0: must be in [0, 2] (0 = base model, 1 = as trained)"
    ),
}


def test_every_impossible_setting_is_one_line_before_any_folder_exists(tmp_path, capsys, monkeypatch, run_cache):
    monkeypatch.chdir(tmp_path)
    assert main("fit", "--config", DEMO_CONFIG, *(a for flags in IMPOSSIBLE for a in flags)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    error_lines = lines[lines.index(next(x for x in lines if x.startswith("error: "))) :]
    assert sorted(line.removeprefix("error: ") for line in error_lines) == sorted(IMPOSSIBLE.values())
    assert list(tmp_path.iterdir()) == []  # no run folder, no version number consumed


def test_validate_needs_the_checkpoint_it_measures(tmp_path, capsys, monkeypatch, run_cache):
    monkeypatch.chdir(tmp_path)
    assert main("validate", "--config", DEMO_CONFIG) == 2
    assert "validate: give --ckpt_path RUN/checkpoints/epoch=NNN.ckpt" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_that_could_never_be_evaluated_is_refused_before_training(
    prepared_demo, tmp_path, capsys, monkeypatch, run_cache
):
    """Lightning skips a validation split with no rows: the run would train, never evaluate and write no best.json."""
    data = tmp_path / "prepared"
    shutil.copytree(prepared_demo, data, ignore=shutil.ignore_patterns(".cache"))
    (data / "val.jsonl").write_text("")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main("fit", "--config", DEMO_CONFIG, "--data.raw", "null", "--data.prepared_dir", data, *QUIET) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {data}/val.jsonl: no held-out rows; without held-out sentences fit never ")
    assert "--trainer.limit_val_batches 0" in line  # the documented opt-out
    assert list((tmp_path / "work").iterdir()) == []  # the folder it claimed is gone again


def test_a_missing_prepared_dataset_fails_at_start(tmp_path, capsys, monkeypatch, run_cache):
    monkeypatch.chdir(tmp_path)
    args = ("--data.raw", "null", "--data.prepared_dir", tmp_path / "nowhere", *QUIET)
    assert main("fit", "--config", DEMO_CONFIG, "--data.raw", DEMO_RAW, *args) == 2
    err = capsys.readouterr().err
    assert "data.prepared_dir" in err and "nowhere holds no train.jsonl" in err
    assert not (tmp_path / "runs").exists()  # refused before the trainer made a run folder


def test_a_full_disk_mid_fit_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    demo_run, tmp_path, capsys, monkeypatch, run_cache
):
    """A disk with room for epoch 0's two checkpoints and not for epoch 1's: exit 1, one line naming the file and
    the resume command; last.ckpt is still epoch 0's, complete; no temporary left."""
    size = (demo_run / "checkpoints" / "epoch=000.ckpt").stat().st_size
    disk = fake_disk(monkeypatch, free=size * 5 // 2)
    monkeypatch.chdir(tmp_path)
    args = ("--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0")
    assert main("fit", "--config", DEMO_CONFIG, "--data.raw", DEMO_RAW, *args, *QUIET) == 1
    run = tmp_path / "runs" / "demo" / "version_0"
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: {run}/checkpoints/epoch=001.ckpt: cannot write: no space left on the device (")
    assert line.endswith(
        "files written before are intact (run folder runs/demo/version_0; resume with: "
        "python -m qwen_tts_lit fit --resume runs/demo/version_0)"
    )
    assert [Path(p).name.split(".ckpt.")[0] for p in disk.failures] == [".epoch=001"]  # the temporary, not the file
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=000.ckpt", "last.ckpt"]
    last, first = (torch.load(run / "checkpoints" / n, map_location="cpu", weights_only=False)
                   for n in ("last.ckpt", "epoch=000.ckpt"))  # fmt: skip
    assert last["epoch"] == first["epoch"] == 0 and last["global_step"] == first["global_step"] == 1
    assert all(torch.equal(last["state_dict"][k], v) for k, v in first["state_dict"].items())


def test_a_full_disk_during_evaluation_is_one_line_and_keeps_the_runs_results(
    demo_run, tmp_path, capsys, monkeypatch, run_cache
):
    run = tmp_path / "version_0"
    shutil.copytree(demo_run, run)
    before = tree_bytes(run)
    fake_disk(monkeypatch, free=0)
    args = ("--epochs", "1", "--scales", "1.0", "--num_utterances", "1", "--judges.dnsmos", "false")  # not its topic
    assert main("evaluate", "--run", run, *args) == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {run}/eval/epoch=001/scale=1/") and "no space left on the device" in line
    assert "Traceback" not in err and tree_bytes(run) == before


# ModelCheckpoint settings under which saved_epochs (evaluate, export) would find no epoch, and their lines.
CHECKPOINT_OVERLAY = """
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {filename: "{epoch}-{val/score:.3f}", save_top_k: -1}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {dirpath: /tmp/elsewhere, save_last: true}
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {filename: "epoch={epoch:03d}", auto_insert_metric_name: false, every_n_train_steps: 50}
"""
CHECKPOINT_LINES = (
    "trainer.callbacks[0].init_args.filename {epoch}-{val/score:.3f}: fit names epoch checkpoints "
    "epoch={epoch:03d}.ckpt itself",
    "trainer.callbacks[1].init_args.dirpath /tmp/elsewhere: checkpoints are written into the run folder's checkpoints/",
    "trainer.callbacks[2].init_args.filename epoch={epoch:03d}: this ModelCheckpoint saves mid-epoch "
    "(every_n_train_steps or train_time_interval) but names its files as epoch checkpoints are named "
    "(epoch=003.ckpt)",
    "trainer.callbacks[0], trainer.callbacks[1]: 2 ModelCheckpoint callbacks save at epoch ends",
)


def test_a_checkpoint_name_evaluate_would_not_find_is_refused_before_anything_starts(
    tmp_path, capsys, monkeypatch, run_cache
):
    """Another filename for epoch checkpoints, another folder, mid-epoch checkpoints named like epoch ones, two
    callbacks writing the same names: each one line naming its config key, exit 2, no run folder."""
    (tmp_path / "checkpoints.yaml").write_text(CHECKPOINT_OVERLAY)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    short = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0")
    overlay = ("--config", tmp_path / "checkpoints.yaml", "--data.raw", DEMO_RAW)
    assert main("fit", "--config", DEMO_CONFIG, *overlay, *short, *QUIET) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = lines[lines.index(next(x for x in lines if x.startswith("error: "))) :]
    assert len(errors) == len(CHECKPOINT_LINES)
    assert all(line.removeprefix("error: ").startswith(start)
               for line, start in zip(errors, CHECKPOINT_LINES, strict=True))  # fmt: skip
    assert list((tmp_path / "work").iterdir()) == []


def test_fit_names_the_epoch_checkpoints_itself(tmp_path, capsys, monkeypatch, run_cache):
    """The shipped demo config spells no checkpoint name: fit writes checkpoints/epoch=NNN.ckpt, saved_epochs finds
    them, and the run's config.yaml records the name; a config without any ModelCheckpoint (Lightning's default
    one) gets the same name."""
    import yaml

    from qwen_tts_lit.runs.folder import saved_epochs

    assert "filename" not in DEMO_CONFIG.read_text()
    monkeypatch.chdir(tmp_path)
    short = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0")
    assert main("fit", "--config", DEMO_CONFIG, "--data.raw", DEMO_RAW, *short, *QUIET) == 0
    run = tmp_path / "runs" / "demo" / "version_0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=000.ckpt", "last.ckpt"]
    assert list(saved_epochs(run)) == [0]
    saved = yaml.safe_load((run / "config.yaml").read_text())["trainer"]["callbacks"][0]["init_args"]
    assert (saved["filename"], saved["auto_insert_metric_name"]) == ("epoch={epoch:03d}", False)

    no_checkpoint_callback = "trainer:\n  callbacks:\n    - class_path: qwen_tts_lit.callbacks.EvalSuite\n"
    (tmp_path / "default.yaml").write_text(no_checkpoint_callback)
    default = ("--config", DEMO_CONFIG, "--config", tmp_path / "default.yaml", "--data.raw", DEMO_RAW)
    assert main("fit", *default, *short, *QUIET) == 0
    assert sorted(p.name for p in (run.parent / "version_1" / "checkpoints").iterdir()) == ["epoch=000.ckpt"]
