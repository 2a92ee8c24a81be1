"""Every YAML in configs/ parses and composes. The CPU-runnable one (demo.yaml) runs in full, from an empty cache,
in tests/e2e/test_fit.py."""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "recipe.yaml"
MODELS = sorted((REPO / "configs" / "models").glob("*.yaml"))
BASE = (RECIPE, REPO / "configs" / "models" / "qwen3_tts_1.7b.yaml")  # the 1.7B recipe
# Complete configs: the demo, and the recipe on each model. grid_*.yaml are ablation grids (base configs + variants),
# not overlays: tests/analysis/test_ablate.py loads them.
# The RL stage's configs (a model section with group_size: GRPOModule) are complete configs of their own.
RL_CONFIGS = sorted((REPO / "configs").glob("rl*.yaml"))
COMPLETE = [(REPO / "configs" / "demo.yaml",), *((RECIPE, model) for model in MODELS), *((c,) for c in RL_CONFIGS)]
OVERLAYS = sorted(
    set((REPO / "configs").rglob("*.yaml"))
    - {RECIPE, REPO / "configs" / "demo.yaml", *MODELS, *RL_CONFIGS}
    - set(REPO.glob("configs/**/grid_*.yaml"))
)


def _print_config(*configs: Path) -> dict:
    from qwen_tts_lit.cli import main

    args = ["fit"] + [a for c in configs for a in ("--config", str(c))] + ["--print_config"]
    printed = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stdout(printed):
        main(args)
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(printed.getvalue())


@pytest.fixture(scope="module")
def base() -> dict:
    """The 1.7B recipe as parsed, once for the file (each overlay is composed on it and compared with it); a test
    that changes it works on a copy."""
    return _print_config(*BASE)


def _not_applied(overlay, composed, key: str = "") -> list[str]:
    """Keys whose value in the overlay is not the composed config's."""
    if isinstance(overlay, dict) and isinstance(composed, dict):
        return [k for name, v in overlay.items() for k in _not_applied(v, composed.get(name), f"{key}.{name}")]
    if isinstance(overlay, list) and isinstance(composed, list) and len(overlay) == len(composed):
        return [
            k for i, (a, b) in enumerate(zip(overlay, composed, strict=True)) for k in _not_applied(a, b, f"{key}[{i}]")
        ]
    return [] if overlay == composed else [key]


@pytest.mark.parametrize("configs", COMPLETE, ids=lambda c: "+".join(p.name for p in c))
def test_complete_config_parses(configs: tuple[Path, ...]):
    parsed = _print_config(*configs)
    assert "model" not in parsed["data"]  # linked from model.model: data is prepared for the model it trains
    assert parsed["trainer"]["use_distributed_sampler"] is False


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_overlay_composes_on_a_model_config(overlay: Path, base: dict):
    composed = _print_config(*BASE, overlay)
    assert _not_applied(yaml.safe_load(overlay.read_text()), composed) == []  # every value it sets took effect
    # An overlay that changes nothing is a mistake, except an ablation arm restating the base's value (lr_2e-6.yaml).
    assert composed != base or overlay.parent.name == "ablations"


def test_model_overlays_change_only_the_model():
    recipe = _print_config(RECIPE)
    for model in MODELS:
        composed = _print_config(RECIPE, model)
        assert composed["model"]["model"] == yaml.safe_load(model.read_text())["model"]["model"] != "tiny"
        composed["model"]["model"] = recipe["model"]["model"]
        assert composed == recipe, model.name


def test_seed_guide_recipe_is_what_the_recipe_says(base: dict):
    parsed = copy.deepcopy(base)
    trainer, model, data = parsed["trainer"], parsed["model"], parsed["data"]
    assert (trainer["precision"], trainer["accumulate_grad_batches"], trainer["max_epochs"]) == ("bf16-mixed", 4, 10)
    assert (data["batch_size"], model["optimizer"]["init_args"]["lr"]) == (2, 2e-6)
    checkpoint = next(c for c in trainer["callbacks"] if c["class_path"].endswith("ModelCheckpoint"))
    assert checkpoint["init_args"]["save_top_k"] == -1  # every epoch kept
