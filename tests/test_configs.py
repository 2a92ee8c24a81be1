"""Every YAML in configs/ parses; the CPU-runnable ones survive a fast_dev_run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if "model" in yaml.safe_load(p.read_text()))
# grid_*.yaml are ablation grids (base configs + variants), not overlays: tests/test_ablate.py loads them.
OVERLAYS = sorted(
    set((REPO / "configs").rglob("*.yaml")) - set(MODEL_CONFIGS) - set(REPO.glob("configs/**/grid_*.yaml"))
)
BASE = REPO / "configs" / "qwen3_tts_1.7b_lora.yaml"


def _print_config(*configs: Path, capsys) -> dict:
    from qwen_tts_lit.cli import main

    args = ["fit"] + [a for c in configs for a in ("--config", str(c))] + ["--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def _not_applied(overlay, composed, key: str = "") -> list[str]:
    """Keys whose value in the overlay is not the composed config's."""
    if isinstance(overlay, dict) and isinstance(composed, dict):
        return [k for name, v in overlay.items() for k in _not_applied(v, composed.get(name), f"{key}.{name}")]
    if isinstance(overlay, list) and isinstance(composed, list) and len(overlay) == len(composed):
        return [
            k for i, (a, b) in enumerate(zip(overlay, composed, strict=True)) for k in _not_applied(a, b, f"{key}[{i}]")
        ]
    return [] if overlay == composed else [key]


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.name)
def test_model_config_parses(config: Path, capsys):
    parsed = _print_config(config, capsys=capsys)
    assert "model" not in parsed["data"]  # linked from model.model: data is prepared for the model it trains
    assert parsed["trainer"]["use_distributed_sampler"] is False


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_overlay_composes_on_a_model_config(overlay: Path, capsys):
    base = _print_config(BASE, capsys=capsys)
    composed = _print_config(BASE, overlay, capsys=capsys)
    assert _not_applied(yaml.safe_load(overlay.read_text()), composed) == []  # every value it sets took effect
    # An overlay that changes nothing is a mistake, except an ablation arm restating the base's value (lr_2e-6.yaml).
    assert composed != base or overlay.parent.name == "ablations"


def test_seed_guide_recipe_is_what_the_1_7b_config_says(capsys):
    parsed = _print_config(BASE, capsys=capsys)
    trainer, model, data = parsed["trainer"], parsed["model"], parsed["data"]
    assert (trainer["precision"], trainer["accumulate_grad_batches"], trainer["max_epochs"]) == ("bf16-mixed", 4, 10)
    assert (data["batch_size"], model["optimizer"]["init_args"]["lr"]) == (2, 2e-6)
    checkpoint = next(c for c in trainer["callbacks"] if c["class_path"].endswith("ModelCheckpoint"))
    assert checkpoint["init_args"]["save_top_k"] == -1  # every epoch kept


def test_demo_config_fast_dev_run_from_scratch(tmp_path: Path):
    """The demo as a fresh clone runs it: builds the tiny checkpoint and prepares the corpus on first use."""
    env = {**__import__("os").environ, "QWEN_TTS_LIT_CACHE": str(tmp_path / "cache")}
    result = subprocess.run(
        [sys.executable, "-m", "qwen_tts_lit", "fit", "--config", str(REPO / "configs/demo.yaml"),
         "--data.raw", str(REPO / "data/demo/raw/train_raw.jsonl"), "--trainer.fast_dev_run", "true"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "cache").glob("tiny-*/config.json"))
    assert list((tmp_path / "cache" / "prepared").glob("*/train.jsonl"))
