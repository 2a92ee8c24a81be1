"""``fit`` end to end, as a user runs it: subprocesses on the demo config, CPU, tiny checkpoint, shipped corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from helpers.fit import latest_run, run_cli, run_demo_fit

pytestmark = pytest.mark.slow
# For fits whose evaluation is not about naturalness (the demo run's test is: tests/train/test_eval_suite.py): off,
# a fit neither loads DNSMOS nor scores its real recordings with it.
NO_DNSMOS = ("--trainer.callbacks.judges.dnsmos", "false")


def _adapters(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def _epoch_losses(run: Path, name: str) -> list[float]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return [float(r[name]) for r in rows if r.get(name)]


def test_demo_fit_from_an_empty_cache_builds_what_it_needs(demo_run: Path):
    """As on a fresh clone: the tiny checkpoint is built and the corpus prepared on first use, into the cache."""
    cache = demo_run.parents[2] / "first_use_cache"  # WORKDIR/runs/demo/version_0 -> WORKDIR/first_use_cache
    assert list(cache.glob("tiny-*/config.json")) and list(cache.glob("prepared/*/train.jsonl"))


def test_demo_fit_trains_and_writes_the_run_folder(demo_run: Path):
    for name in ("config.yaml", "metrics.csv", "hparams.yaml", "speaker.safetensors"):
        assert (demo_run / name).is_file(), name
    saved = sorted(p.name for p in (demo_run / "checkpoints").glob("*.ckpt"))
    assert saved == ["epoch=000.ckpt", "epoch=001.ckpt", "last.ckpt"]
    assert list(demo_run.glob("events.out.tfevents.*"))  # TensorBoard beside the CSV, in the same folder

    train, val = _epoch_losses(demo_run, "train/loss_epoch"), _epoch_losses(demo_run, "val/loss")
    assert len(train) == len(val) == 2
    assert train[1] < train[0] and val[1] < val[0], (train, val)
    for metric in ("train/talker_loss_epoch", "train/sub_talker_loss_epoch", "train/padding_ratio", "lr-AdamW"):
        assert _epoch_losses(demo_run, metric), metric


def test_checkpoints_hold_only_the_adapters_and_the_xvector(demo_run: Path):
    checkpoint = torch.load(demo_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    keys = list(checkpoint["state_dict"])
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert checkpoint["qwen_tts_lit"] == {"base_model": "tiny", "finetune": "lora"}
    assert checkpoint["xvector"].ndim == 1 and checkpoint["optimizer_states"]
    assert (demo_run / "checkpoints" / "last.ckpt").stat().st_size < 2_000_000  # the 21 MB base is not in it


def _logged_steps(run: Path) -> list[int]:
    """The global steps metrics.csv holds a training loss for, in file order."""
    return [int(r["step"]) for r in csv.DictReader((run / "metrics.csv").open()) if r.get("train/loss_step")]


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def test_killed_run_resumes_in_its_own_folder_to_the_same_weights(demo_run: Path, fit_cache: Path, tmp_path: Path):
    """SIGKILL in the middle of epoch 1, then the documented ``fit --resume RUN``: the same folder continues (no
    second version), to the same final step and bit-identical adapters as the uninterrupted run, every step logged
    once. Without validation here and with it in the reference run, so it also proves that evaluation leaves
    training untouched. Then Lightning's own spelling, ``--config RUN/config.yaml --ckpt_path
    RUN/checkpoints/last.ckpt``, trains one more epoch into the same folder, and Ctrl-C names the resume command."""
    no_eval = ("--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0")
    killed = run_demo_fit(
        tmp_path, *no_eval, "--trainer.callbacks+=helpers.callbacks.KillAtStep", "--trainer.callbacks.step", "8",
        cache=fit_cache, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert "fit: run folder runs/demo/version_0" in killed.stderr  # said at the start
    run = latest_run(tmp_path)
    assert _checkpoints(run) == ["epoch=000.ckpt", "last.ckpt"]
    epoch_0 = (run / "checkpoints" / "epoch=000.ckpt").read_bytes()

    # the run's config names the test's own KillAtStep callback: a class outside the project, so the user vouches
    resumed = run_cli(tmp_path, "fit", "--resume", "runs/demo/version_0", "--trust-run", cache=fit_cache)
    assert "fit: resuming runs/demo/version_0 from runs/demo/version_0/checkpoints/last.ckpt (epoch 0" in resumed.stderr
    assert "train further: python -m qwen_tts_lit fit --resume runs/demo/version_0 --trainer.max_epochs N" in (
        resumed.stderr
    )
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]
    assert _checkpoints(run) == ["epoch=000.ckpt", "epoch=001.ckpt", "last.ckpt"]
    assert (run / "checkpoints" / "epoch=000.ckpt").read_bytes() == epoch_0  # nothing earlier was touched
    resumed_state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    reference = torch.load(demo_run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert resumed_state["global_step"] == reference["global_step"] > 8
    assert resumed_state["state_dict"].keys() == reference["state_dict"].keys()
    for key, tensor in reference["state_dict"].items():
        assert torch.equal(resumed_state["state_dict"][key], tensor), key
    assert _logged_steps(run) == list(range(reference["global_step"]))  # the killed run's steps past epoch 0: once

    stopped = run_cli(
        tmp_path, "fit", "--config", "runs/demo/version_0/config.yaml",
        "--ckpt_path", "runs/demo/version_0/checkpoints/last.ckpt", "--trainer.max_epochs", "4",
        "--trainer.limit_train_batches", "2", "--trainer.callbacks+=helpers.callbacks.CtrlCAtEpoch",
        "--trainer.callbacks.epoch", "3", cache=fit_cache, check=False,
    )  # fmt: skip
    assert stopped.returncode == 1, stopped.stderr[-2000:]
    resume = "resume with: python -m qwen_tts_lit fit --resume runs/demo/version_0"
    assert stopped.stderr.strip().splitlines()[-1] == f"interrupted; run folder runs/demo/version_0; {resume}"
    assert [p.name for p in run.parent.iterdir()] == ["version_0"]
    assert _checkpoints(run) == ["epoch=000.ckpt", "epoch=001.ckpt", "epoch=002.ckpt", "last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["epoch"] == 2
    assert _logged_steps(run) == list(range(reference["global_step"] + 1))  # epoch 2: one step of 2 micro-batches


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(fit_cache: Path, tmp_path: Path):
    """gloo DDP, 2 ranks x batch 2 x accumulate 1 == 1 rank x batch 2 x accumulate 2, over two epochs: each rank
    takes its share of the same plan in each epoch, epoch 1's included (Lightning sets the epoch on every rank; a
    rank left on epoch 0's plan would train other batches). The DDP run evaluates one held-out sentence (the
    baselines, then each epoch); the single run's evaluation would prove nothing here (evaluation leaves training
    untouched: test_killed_run_resumes_in_its_own_folder_to_the_same_weights)."""
    common = ("--trainer.max_epochs", "2", "--data.batch_size", "2")
    run_demo_fit(tmp_path / "ddp", *common, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                 "--trainer.accumulate_grad_batches", "1", "--trainer.callbacks.num_utterances", "1", *NO_DNSMOS,
                 cache=fit_cache)  # fmt: skip
    run_demo_fit(tmp_path / "single", *common, "--trainer.accumulate_grad_batches", "2",
                 "--trainer.limit_val_batches", "0", cache=fit_cache)  # fmt: skip
    ddp = torch.load(latest_run(tmp_path / "ddp") / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    single = torch.load(latest_run(tmp_path / "single") / "checkpoints/last.ckpt", map_location="cpu",
                        weights_only=False)  # fmt: skip
    assert ddp["global_step"] == single["global_step"] > 0
    ddp_run = latest_run(tmp_path / "ddp")  # EvalSuite ran on rank 0 while rank 1 waited for the broadcast
    rows = [json.loads(line) for line in (ddp_run / "eval" / "rows.jsonl").read_text().splitlines()]
    assert (ddp_run / "best.json").is_file() and len(rows) == 2 + 2 * 2  # 2 zero-shot modes, 2 epochs x 2 scales
    assert sorted((r["epoch"], r["lora_scale"], r.get("baseline")) for r in rows) == [
        (-1, 0.0, "voice_clone"), (-1, 0.0, "xvector"), (0, 0.5, None), (0, 1.0, None), (1, 0.5, None), (1, 1.0, None),
    ]  # fmt: skip
    for key, tensor in single["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][key], tensor, rtol=1e-5, atol=1e-7, msg=key)


def test_nan_loss_stops_the_run_naming_step_and_utterances(fit_cache: Path, tmp_path: Path):
    result = run_demo_fit(
        tmp_path, "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "0",
        "--trainer.callbacks+=helpers.callbacks.PoisonWeightsAtStep", "--trainer.callbacks.step", "7",
        cache=fit_cache, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "loss is nan at global step 7" in message and "utterances in this batch: utt_" in message
    run = latest_run(tmp_path)
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == ["epoch=000.ckpt", "last.ckpt"]
    good = _adapters(run / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(t).all() for t in good.values())


def test_full_finetune_trains_checkpoints_the_talker_and_evaluates_at_scale_1(fit_cache: Path, tmp_path: Path):
    overlay = Path(__file__).resolve().parents[2] / "configs" / "ablations" / "full_finetune.yaml"
    run_demo_fit(tmp_path, "--config", str(overlay), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                 "--trainer.callbacks.num_utterances", "1", *NO_DNSMOS, cache=fit_cache)  # fmt: skip
    run = latest_run(tmp_path)
    keys = _adapters(run / "checkpoints" / "last.ckpt").keys()
    assert keys and all(k.startswith("tts.talker.") for k in keys)  # no speaker encoder, no codec
    scales = {json.loads(line)["lora_scale"] for line in (run / "eval" / "rows.jsonl").read_text().splitlines()}
    assert scales == {1.0}  # no adapters to scale
