"""RL starts from an SFT run's chosen cell (``--model.init_from RUN``), through the command line: the RL run's
starting adapters, and its reference, are the SFT run's chosen epoch's tensors at its chosen scale, bit for bit; and
the RL run's best.json compares that start with its RL steps on the same held-out rows."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers.fit import DEMO_RAW, REPO

from qwen_tts_lit.cli.app import main
from qwen_tts_lit.errors import UserError
from qwen_tts_lit.metrics.evidence import START_EPOCH
from qwen_tts_lit.runs.records import read_best, read_rows
from qwen_tts_lit.train.rl_start import resolve_start


def _cell_at_scale(run, epoch: int, scale: float) -> dict[str, torch.Tensor]:
    """The oracle, read by hand: the epoch checkpoint's tensors, lora_B times the scale (running LoRA at a scale)."""
    state = torch.load(run / "checkpoints" / f"epoch={epoch:03d}.ckpt", weights_only=False)["state_dict"]
    return {k.removeprefix("tts."): v * scale if "lora_B" in k else v for k, v in state.items()}


def test_fit_from_an_sft_run_starts_at_its_chosen_cell(demo_run, run_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main([
        "fit", "--config", str(REPO / "configs" / "rl_demo.yaml"), "--data.raw", str(DEMO_RAW),
        "--model.init_from", str(demo_run), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
        "--trainer.callbacks.num_utterances", "2", "--trainer.callbacks.judges.dnsmos", "false",  # the EvalSuite's
        "--trainer.callbacks+=helpers.callbacks.SaveRLStart", "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    assert code == 0
    best = json.loads((demo_run / "best.json").read_text())
    saved = torch.load(next((tmp_path / "runs" / "rl_demo").glob("version_*/rl_start.pt")), weights_only=False)
    expected = _cell_at_scale(demo_run, int(best["epoch"]), float(best["lora_scale"]))
    for adapters in (saved["start"], saved["reference"]):
        assert adapters.keys() == expected.keys() and all(torch.equal(adapters[k], expected[k]) for k in expected)
    # best.json chooses among the start (evaluated before the first step, epoch -1) and the RL steps, on the same rows
    rl_run = next((tmp_path / "runs" / "rl_demo").glob("version_*"))
    rows = read_rows(rl_run)
    start = sorted(r["utt_id"] for r in rows if r["epoch"] == START_EPOCH and not r.get("baseline"))
    assert len(start) == 2 and start == sorted(r["utt_id"] for r in rows if r["epoch"] == 0)
    rl_best = read_best(rl_run)
    assert rl_best["candidates"] == 2 and {(c["epoch"], c["lora_scale"]) for c in rl_best["cells"]} == {
        (-1, 1.0), (0, 1.0)}  # fmt: skip


def test_an_explicit_epoch_and_scale_of_a_run_are_loaded_at_that_scale(demo_run, run_cache):
    from qwen_tts_lit.model.lora import LoraSpec, trainable_state_dict
    from qwen_tts_lit.train.rl import GRPOModule

    module = GRPOModule(lora=LoraSpec(rank=8, alpha=16, dropout=0.0), init_from=str(demo_run), init_epoch=0,
                        init_scale=0.5)  # fmt: skip
    module.configure_model()
    expected = _cell_at_scale(demo_run, 0, 0.5)
    adapters = trainable_state_dict(module.tts)
    assert module.start.epoch == 0 and module.start.scale == 0.5
    assert adapters.keys() == expected.keys() and all(torch.equal(adapters[k], expected[k]) for k in expected)
    assert any(v.abs().max() > 0 for k, v in expected.items() if "lora_B" in k)  # trained: the scale mattered


def test_a_run_without_best_json_or_without_that_epoch_is_one_line(demo_run_copy, tmp_path):
    with pytest.raises(UserError, match=r"best\.json: not found.*model\.init_epoch") as error:
        resolve_start(str(demo_run_copy), None, None)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"epoch 7 was not saved \(saved epochs: 0, 1\)"):
        resolve_start(str(demo_run_copy), 7, None)
    assert resolve_start(str(demo_run_copy), 1, None).scale == 1.0  # as trained, without best.json
    with pytest.raises(UserError, match="neither an SFT run folder nor a checkpoint"):
        resolve_start(str(tmp_path / "missing"), None, None)
    empty = tmp_path / "empty_run"
    shutil.copytree(demo_run_copy, empty, ignore=shutil.ignore_patterns("*.ckpt"))
    with pytest.raises(UserError, match="no epoch=NNN.ckpt"):
        resolve_start(str(empty), None, None)
