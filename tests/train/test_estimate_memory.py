"""estimate-memory reads a fit config as fit runs it and prints the peak by category (tiny model: seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from qwen_tts_lit.cli import main
from qwen_tts_lit.cli.lightning import resolved_fit_config
from qwen_tts_lit.train.memory import ASR_PUBLISHED_PEAK_MB, asr_judge, longest_clip_frames, training_setup

RECIPE = ["configs/recipe.yaml", "configs/models/qwen3_tts_1.7b.yaml"]


def _setup(*overlays: str):
    config = resolved_fit_config([*RECIPE, *overlays])
    return training_setup(config["model"], config["trainer"]), config


def test_the_recipes_become_the_setups_fit_runs(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    recipe, config = _setup()
    assert (recipe.finetune, recipe.weights_dtype, recipe.autocast_dtype) == ("lora", torch.bfloat16, torch.bfloat16)
    assert (recipe.accumulate, recipe.gradient_clip, recipe.lora.rank) == (4, 1.0, 16)
    assert recipe.optimizer.func is torch.optim.AdamW and recipe.optimizer.keywords["fused"] is True
    assert asr_judge(config["trainer"]["callbacks"])[0].bytes == ASR_PUBLISHED_PEAK_MB["large-v3", "float16"] * 2**20
    assert _setup("configs/gpu/16gb.yaml")[0].gradient_checkpointing
    full, config = _setup("configs/gpu/24gb_full_sft.yaml")
    assert (full.finetune, full.weights_dtype, full.gradient_checkpointing) == ("full", torch.float32, True)
    assert full.optimizer.func is transformers.Adafactor and tuple(full.optimizer.keywords["eps"]) == (1e-30, 1e-3)
    assert asr_judge(config["trainer"]["callbacks"])[0].bytes == ASR_PUBLISHED_PEAK_MB["large-v3-turbo", "int8"] * 2**20
    t4 = _setup("configs/gpu/t4.yaml")[0]
    assert (t4.weights_dtype, t4.autocast_dtype, t4.loss_scaling) == (torch.float16, torch.float16, True)


def test_the_clip_length_comes_from_the_prepared_data(prepared_demo):
    rows = [json.loads(line) for line in (prepared_demo / "train.jsonl").read_text().splitlines() if line.strip()]
    assert longest_clip_frames({"prepared_dir": str(prepared_demo)}, "tiny") == max(r["num_frames"] for r in rows)
    assert longest_clip_frames({"prepared_dir": str(prepared_demo / "nothing")}, "tiny") is None


def test_estimate_memory_prints_the_peak_by_category(repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    assert (
        main(["estimate-memory", "--fit_config", "configs/demo.yaml", "--clip_seconds", "2", "--batch_size", "1"]) == 0
    )
    out = capsys.readouterr().out
    lines = {line[:62].strip(): line[62:].split() for line in out.splitlines() if "GiB" in line}
    parts = ["frozen weights", "trained weights", "gradients", "optimizer state", "optimizer temporaries",
             "activations", "backward temporaries", "batch"]  # fmt: skip
    found = {part: float(v[0]) for part in parts for label, v in lines.items() if label.startswith(part)}
    assert set(found) == set(parts)
    peak = next(float(v[0]) for label, v in lines.items() if label.startswith("peak of the training step"))
    assert abs(sum(found.values()) - peak) <= 0.01 * len(parts)  # two decimals per line
    assert "allocator rounding" in out and "plan for about" in out and "micro-batch: 1 clips of 2.0 s" in out


def test_a_missing_config_is_a_user_error(tmp_path, capsys):
    assert main(["estimate-memory", "--fit_config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--clip_seconds", "0"], ["--batch_size", "0"]])
def test_impossible_sizes_are_refused(bad, capsys):
    assert main(["estimate-memory", "--fit_config", "configs/demo.yaml", *bad]) == 2


def test_config_files_compose_as_fit_composes_them(capsys):
    """``--fit_config A --fit_config B`` keeps both files, in order (a plain list flag kept only the last one, so the
    1.7B recipe was estimated as the bare model overlay: float32, no autocast, no accumulation); the older
    ``--config A --config B C`` (fit configs, before --config was every subcommand's own file) still reads so."""
    from qwen_tts_lit.cli.parser import parse_request
    from qwen_tts_lit.train.request import EstimateMemoryRequest

    today = ["--fit_config", RECIPE[0], "--fit_config", RECIPE[1], "--fit_config", "c.yaml"]
    request = parse_request("estimate-memory", EstimateMemoryRequest, today)
    assert request.fit_config == tuple(map(Path, [*RECIPE, "c.yaml"])) and capsys.readouterr().err == ""
    older = parse_request(
        "estimate-memory", EstimateMemoryRequest, ["--config", RECIPE[0], "--config", RECIPE[1], "c.yaml"]
    )
    assert older.fit_config == request.fit_config
    assert "note: --config configs/recipe.yaml is an older spelling, read as --fit_config" in capsys.readouterr().err


def test_a_config_fit_refuses_is_refused_with_fits_own_line(repo_root, tmp_path, monkeypatch, capsys):
    """data.batch_size 0 crashed deep in the estimate (`max() arg is an empty sequence`); fit's check names it."""
    monkeypatch.chdir(repo_root)
    overlay = tmp_path / "zero.yaml"
    overlay.write_text("data:\n  batch_size: 0\n")
    assert main(["estimate-memory", "--fit_config", "configs/demo.yaml", "--fit_config", str(overlay)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: data.batch_size 0: must be >= 1" and "Traceback" not in err
    from qwen_tts_lit.cli.fit_settings import settings_problems

    assert "data.batch_size 0: must be >= 1" in settings_problems(resolved_fit_config(["configs/demo.yaml",
                                                                                     str(overlay)]), "fit")  # fmt: skip


def test_a_clip_longer_than_prepare_accepts_is_refused(repo_root, monkeypatch, capsys):
    """--clip_seconds 100000 printed 1981 GiB: no training clip can be longer than prepare's file limit."""
    from qwen_tts_lit.data.prepare.options import MAX_FILE_SECONDS

    monkeypatch.chdir(repo_root)
    for seconds in ("100000", ".inf", str(MAX_FILE_SECONDS + 1)):  # .inf: infinity as YAML (jsonargparse) spells it
        assert main(["estimate-memory", "--fit_config", "configs/demo.yaml", "--clip_seconds", seconds]) == 2
        err = capsys.readouterr().err
        assert f"--clip_seconds {float(seconds.replace('.inf', 'inf'))}: no training clip can be that long" in err
        assert f"give at most {MAX_FILE_SECONDS:g}" in err and len(err.strip().splitlines()) == 1


def test_the_rl_step_adds_its_rollouts_kv_cache_by_the_hand_formula(repo_root, monkeypatch):
    """The RL configs resolve as fit runs them (GRPOModule's arguments); the rollouts' KV cache is 2 (key, value) x
    layers x kv heads x head dim x positions x rows x bytes, counted by hand from the released 1.7B config; and it
    grows with group_size (more rollouts, more memory), as the update's rows do."""
    from qwen_tts_lit.model.memory import rollout_memory
    from qwen_tts_lit.train.memory import rl_step
    from qwen_tts_lit.train.request import EstimateMemoryRequest
    from qwen_tts_lit.upstream.architectures import model_config

    monkeypatch.chdir(repo_root)
    config = resolved_fit_config(["configs/rl_1.7b.yaml"])
    model, data = config["model"], config["data"]
    architecture = model_config(model["model"])
    setup = training_setup(model, config["trainer"])
    request = EstimateMemoryRequest(fit_config=("configs/rl_1.7b.yaml",), text_tokens=20)
    shape, rollout, notes = rl_step(architecture, model, data, request, setup)
    assert (shape.batch_size, shape.frames, shape.text_tokens) == (2 * 8, 400, 20)  # prompts x G rows, the cap
    # the 1.7B talker: 28 layers, 8 kv heads of 128. Positions: 3 role + 4 think/speaker + tts_bos + 20 text +
    # tts_eos + codec_bos + 400 frames (the EOS is never fed back)
    positions = 3 + 4 + 1 + 20 + 1 + 1 + 400
    assert rollout.positions == positions
    assert rollout.talker_kv_cache == 2 * 28 * 8 * 128 * positions * 16 * 2  # bfloat16: 2 bytes
    assert rollout.talker_kv_cache / 2**30 == pytest.approx(0.735, abs=0.001)
    doubled = rollout_memory(architecture, 2 * 16, 20, 400, torch.bfloat16)
    assert doubled.talker_kv_cache == 2 * rollout.talker_kv_cache and doubled.total > rollout.total
    assert any("reference pass" in note for note in notes)


def test_estimate_memory_of_the_rl_demo_counts_rollouts_and_grows_with_group_size(repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)

    def plan(group: int) -> tuple[float, str]:
        overlay = Path(f"/tmp/rl_group_{group}_{id(plan)}.yaml")
        overlay.write_text(f"model:\n  group_size: {group}\n  max_new_tokens: 16\n")
        try:
            code = main(["estimate-memory", "--fit_config", "configs/rl_demo.yaml", "--fit_config", str(overlay),
                         "--batch_size", "1"])  # fmt: skip
        finally:
            overlay.unlink()
        assert code == 0
        out = capsys.readouterr().out
        kv = next(line for line in out.splitlines() if line.strip().startswith("talker KV cache"))
        return float(kv[62:].split()[0]), out

    _, two = plan(2)
    assert "RL: 2 rollouts per step" in two and "peak of the RL rollouts" in two and "reference pass" in two
    _, eight = plan(8)
    assert "RL: 8 rollouts per step" in eight
    peak = {n: float(next(line for line in out.splitlines() if line.startswith("peak of the training"))[62:].split()[0])
            for n, out in ((2, two), (8, eight))}  # fmt: skip
    assert peak[8] > peak[2]  # the update trains on every rollout of the step
