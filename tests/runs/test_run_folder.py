"""The run-folder contract on hand-made folders: the speaker file, evaluation records, the chosen cell, choices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qwen_tts_lit.errors import UserError
from qwen_tts_lit.model.lora import LoraSpec
from qwen_tts_lit.runs.choice import choose
from qwen_tts_lit.runs.config import callback_args, data_args, model_args
from qwen_tts_lit.runs.folder import relocated_state, saved_epochs
from qwen_tts_lit.runs.records import merge_rows, read_best, read_rows, write_best, write_rows
from qwen_tts_lit.runs.run import Run
from qwen_tts_lit.speaker_file import read_speaker, speaker_bytes, write_speaker


def test_speaker_file_is_deterministic_and_readable_by_safetensors(tmp_path: Path):
    from safetensors import safe_open

    vector = np.arange(7, dtype=np.float32) / 3
    data = speaker_bytes(vector, {"source": "mean_of_train", "model": "m", "format": "f"})
    assert data == speaker_bytes(vector, {"format": "f", "model": "m", "source": "mean_of_train"})  # any key order
    assert data == speaker_bytes(torch.from_numpy(vector), {"format": "f", "model": "m", "source": "mean_of_train"})
    path = write_speaker(tmp_path, vector, {"source": "mean_of_train", "model": "m", "format": "f"})
    assert path.read_bytes() == data
    with safe_open(str(path), "np") as handle:
        assert handle.metadata() == {"source": "mean_of_train", "model": "m", "format": "f"}
        np.testing.assert_array_equal(handle.get_tensor("xvector"), vector)
    assert read_speaker(tmp_path).tolist() == vector.tolist()


def test_a_missing_speaker_file_names_the_file(tmp_path: Path):
    with pytest.raises(UserError, match="speaker.safetensors: the speaker x-vector is missing from this run folder"):
        read_speaker(tmp_path, "run folder")


def _run(tmp_path: Path, epochs=(0, 2)) -> Path:
    (tmp_path / "checkpoints").mkdir(parents=True)
    for epoch in epochs:
        (tmp_path / "checkpoints" / f"epoch={epoch:03d}.ckpt").write_bytes(b"x")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return tmp_path


def test_saved_epochs_and_checkpoint_paths(tmp_path: Path):
    run = _run(tmp_path)
    assert list(saved_epochs(run)) == [0, 2]
    assert Run.open(run).checkpoint(2).name == "epoch=002.ckpt"
    with pytest.raises(UserError, match=r"epoch 1 was not saved \(saved epochs: 0, 2\)"):
        Run.open(run).checkpoint(1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no epoch=NNN.ckpt"):
        Run.open(tmp_path / "empty")
    with pytest.raises(UserError, match="run folder not found"):
        Run.open(tmp_path / "nowhere")


def test_a_moved_checkpoint_folder_keeps_its_record_under_the_new_path():
    """What a ModelCheckpoint saved, as if written in the folder the run now lies in: the files it names move with
    it, a file it names elsewhere stays, the scores are untouched, and a record already in place is returned as is."""
    old, new = "/disk1/runs/demo/version_0/checkpoints", "/disk2/copy/version_0/checkpoints"
    state = {
        "dirpath": old, "best_model_path": f"{old}/epoch=001.ckpt", "kth_best_model_path": "/elsewhere/x.ckpt",
        "last_model_path": f"{old}/last.ckpt", "best_k_models": {f"{old}/epoch=000.ckpt": 2.0, f"{old}/b/a.ckpt": 1.0},
        "best_model_score": 1.0, "monitor": None,
    }  # fmt: skip
    assert relocated_state(state, new) == {
        "dirpath": new, "best_model_path": f"{new}/epoch=001.ckpt", "kth_best_model_path": "/elsewhere/x.ckpt",
        "last_model_path": f"{new}/last.ckpt", "best_k_models": {f"{new}/epoch=000.ckpt": 2.0, f"{new}/b/a.ckpt": 1.0},
        "best_model_score": 1.0, "monitor": None,
    }  # fmt: skip
    assert state["dirpath"] == old  # the loaded record is not edited in place
    assert relocated_state(state, old) is state
    assert relocated_state({**state, "last_model_path": ""}, new)["last_model_path"] == ""


def test_rows_merge_replaces_rescored_cells_only(tmp_path: Path):
    old = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "b"}, {"epoch": 0, "lora_scale": 1.0, "utt_id": "a"}]
    new = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "a", "wer": 0.1}]
    merged = merge_rows(old, new)
    assert merged == [new[0], old[1]]
    write_rows(tmp_path, merged)
    assert read_rows(tmp_path) == merged
    assert read_rows(tmp_path / "nowhere") == []


def test_the_chosen_cell_round_trips_and_a_broken_one_is_named(tmp_path: Path):
    assert read_best(tmp_path) is None
    write_best(tmp_path, {"epoch": 1, "lora_scale": 0.35, "metrics": {}})
    assert read_best(tmp_path)["lora_scale"] == 0.35
    (tmp_path / "best.json").write_text(json.dumps({"epoch": "x"}))
    with pytest.raises(UserError, match="best.json: unreadable"):
        read_best(tmp_path)


def test_choice_explicit_wins_then_best_then_trained_strength(tmp_path: Path):
    run = _run(tmp_path)
    best = {"epoch": 2, "lora_scale": 0.3}
    assert (choose(best, None, None, run).epoch, choose(best, None, None, run).lora_scale) == (2, 0.3)
    assert choose(best, 0, 0.5, run).lora_scale == 0.5
    assert choose(None, 0, None, run).lora_scale == 1.0
    with pytest.raises(UserError, match=r"--epoch N \(saved epochs: 0, 2\)"):
        choose(None, None, None, run)
    with pytest.raises(UserError, match=r"--lora_scale 2.5: must be in \[0, 2\]"):
        choose(best, None, 2.5, run)


def test_config_sections_read_either_spelling():
    suite = {"class_path": "qwen_tts_lit.callbacks.EvalSuite", "init_args": {"seed": 7}}
    config = {"model": {"class_path": "x.M", "init_args": {"model": "tiny"}}, "data": {"raw": "r.jsonl"},
              "trainer": {"callbacks": [suite]}}  # fmt: skip
    assert model_args(config) == {"model": "tiny"} and data_args(config) == {"raw": "r.jsonl"}
    assert callback_args(config, "EvalSuite") == {"seed": 7} and callback_args(config, "Other") is None


def test_lora_spec_reads_new_and_first_version_hyper_parameters():
    assert LoraSpec.from_hparams({"lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "code_predictor": True}}) == \
        LoraSpec(4, 8, 0.0, True)  # fmt: skip
    legacy = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "lora_code_predictor": False}
    assert LoraSpec.from_hparams(legacy) == LoraSpec(8, 16, 0.0, False)
    assert LoraSpec(rank=0).problems() == ["lora.rank 0: must be >= 1"]
