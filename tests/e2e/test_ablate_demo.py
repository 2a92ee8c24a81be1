"""The shipped CI grid (configs/ablations/grid_demo.yaml: corrected vs upstream_talker_shift, 2 seeds x 2 epochs on
the tiny demo model) through ``python -m qwen_tts_lit ablate`` end to end, then notebook 02 on its root.

The grid runs as shipped (its configs, variants, seeds and args) plus FAST: what these tests check (folders, seeds,
epochs, best.json, tables, skipping) needs neither the zero-shot baselines (tested in tests/e2e/test_fit.py and
tests/train/test_eval_suite.py) nor the naturalness judge (tests/evaluation/test_naturalness.py) nor more than one
held-out sentence and two batches an epoch: 190 CPU-seconds for this file instead of 450."""

from __future__ import annotations

import json
import shlex
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.fit import REPO, run_cli
from helpers.notebooks import execute_notebook

from qwen_tts_lit.analysis import load_run

pytestmark = pytest.mark.slow
SHIPPED_GRID = REPO / "configs" / "ablations" / "grid_demo.yaml"
VARIANTS, SEEDS = ("corrected", "upstream_talker_shift"), (0, 1)
FAST = ("--trainer.limit_train_batches=2", "--trainer.callbacks.num_utterances=1", "--trainer.callbacks.baselines=[]",
        "--trainer.callbacks.judges.dnsmos=false")  # fmt: skip


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped grid with its config paths made absolute and FAST appended to its args."""
    shipped = yaml.safe_load(SHIPPED_GRID.read_text())

    def absolute(paths: list[str]) -> list[str]:
        return [str((SHIPPED_GRID.parent / p).resolve()) for p in paths]

    assert shipped["args"] == ["--trainer.max_epochs=2"]  # what the tests below expect of the shipped grid
    shipped |= {"base": absolute(shipped["base"]), "args": [*shipped["args"], *FAST],
                "variants": {name: absolute(overlays) for name, overlays in shipped["variants"].items()}}  # fmt: skip
    path = tmp_path_factory.mktemp("grid") / "grid_demo.yaml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def demo_ablation(grid: Path, fit_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The grid's root after one ablate run (4 fits, about 3 CPU-minutes), and ablate's stderr."""
    root = tmp_path_factory.mktemp("ablation") / "demo"
    result = run_cli(REPO, "ablate", "--grid", str(grid), "--root", str(root), cache=fit_cache)  # paths shown from REPO
    return root, result.stderr


def test_every_run_lands_in_its_folder_with_its_variant_and_seed(demo_ablation):
    root, stderr = demo_ablation
    assert "0 finished and skipped, 4 to run" in stderr
    for variant in VARIANTS:
        for seed in SEEDS:
            run = load_run(root / variant / f"seed_{seed}")
            assert run.status["status"] == "done" and run.best is not None, (variant, seed)
            assert (run.config["seed_everything"], run.config["model"]["seed"]) == (seed, seed)
            assert run.config["model"]["fixes"]["talker_shift"] is (variant == "corrected")
            trained = run.rows[run.rows["epoch"] >= 0]  # epoch -1: the zero-shot baseline rows
            assert sorted(trained["epoch"].unique()) == [0, 1]  # the grid's --trainer.max_epochs=2
            assert (run.path / "checkpoints" / "epoch=001.ckpt").is_file() and not run.metrics.empty
    assert sorted(p.name for p in root.iterdir()) == ["ablation.csv", "ablation.md", "ablation.tex", *VARIANTS]


def test_tables_have_one_row_per_variant_with_its_command(demo_ablation):
    root, _ = demo_ablation
    table = pd.read_csv(StringIO((root / "ablation.csv").read_text())).set_index("variant")
    assert list(table.index) == list(VARIANTS) and list(table["n"]) == [2, 2] and list(table["failed"]) == [0, 0]
    for variant in VARIANTS:
        bests = [json.loads((root / variant / f"seed_{s}" / "best.json").read_text()) for s in SEEDS]
        assert table.loc[variant, "epoch_mean"] == pytest.approx(sum(b["epoch"] for b in bests) / 2)
        assert table.loc[variant, "wer_mean"] == pytest.approx(sum(b["metrics"]["wer"] for b in bests) / 2)
        overlay = " --config configs/ablations/upstream_talker_shift.yaml" if variant != "corrected" else ""
        assert table.loc[variant, "command"] == (
            f"for s in 0 1; do python -m qwen_tts_lit fit --config configs/demo.yaml{overlay} "
            f"--config {root}/{variant}/seed_$s/ablate.yaml --trainer.max_epochs=2 {shlex.join(FAST)}; done"
        )
    markdown, tex = (root / "ablation.md").read_text(), (root / "ablation.tex").read_text()
    assert all(f"| {v} | 2 |" in markdown for v in VARIANTS) and r"upstream\_talker\_shift & 2 &" in tex


def test_a_second_ablate_skips_the_finished_runs(grid: Path, demo_ablation, fit_cache: Path):
    root, _ = demo_ablation
    before = {p: p.stat().st_mtime_ns for p in root.glob("*/seed_*/ablate.json")}
    table = (root / "ablation.csv").read_text()
    result = run_cli(REPO, "ablate", "--grid", str(grid), "--root", str(root), cache=fit_cache)
    assert "4 finished and skipped, 0 to run" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/seed_*/ablate.json")} == before
    assert (root / "ablation.csv").read_text() == table


def test_notebook_02_on_the_demo_ablation(demo_ablation):
    root, _ = demo_ablation
    output = execute_notebook("02_ablations.ipynb", {"QWEN_TTS_LIT_ABLATION": str(root)})
    assert f"root: {root}\n4 runs, 2 variants" in output
    assert all(f"| {v} | 2 |" in output for v in VARIANTS) and "<Figure" in output
