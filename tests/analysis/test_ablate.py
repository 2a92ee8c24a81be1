"""``ablate``: grid files, the exact dry-run commands, the per-run overlay, skip/failure handling, the tables.

The end-to-end grid on the demo model is in test_ablate_demo.py (slow)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import yaml
from helpers.ablation import eval_row, write_run

from qwen_tts_lit import cli
from qwen_tts_lit.analysis.grid import load_grid

REPO = Path(__file__).resolve().parents[2]
SHIPPED_GRIDS = sorted(REPO.glob("configs/**/grid_*.yaml"))


def main(*args: object) -> int:
    """``python -m qwen_tts_lit ARGS`` in this process; its exit code (handlers and --print_config raise SystemExit)."""
    try:
        return cli.main([str(a) for a in args])
    except SystemExit as exit_info:
        return exit_info.code or 0


def make_grid(folder: Path, **overrides) -> Path:
    """A grid with two variants over a copy of the demo config, in ``folder`` (paths relative to the grid)."""
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    (folder / "configs" / "base.yaml").write_text((REPO / "configs" / "demo.yaml").read_text())
    (folder / "configs" / "shift.yaml").write_text("model:\n  fixes: {talker_shift: false}\n")
    grid = {
        "base": "configs/base.yaml",
        "variants": {"corrected": [], "shift": ["configs/shift.yaml"]},
        "seeds": [0, 1],
        "args": ["--trainer.max_epochs=1"],
    } | overrides
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


@pytest.mark.parametrize("grid", SHIPPED_GRIDS, ids=lambda p: p.name)
def test_shipped_grids_load(grid: Path):
    parsed = load_grid(grid)
    assert parsed.variants and all(p.is_file() for p in (*parsed.base, *sum(parsed.variants.values(), ())))
    if "demo" in grid.name:  # bug 1 crashes the tiny model by design: never in a CPU grid
        assert not any(
            "text_projection" in p.name or "upstream_all" in p.name for v in parsed.variants.values() for p in v
        )


def test_dry_run_prints_the_exact_commands_and_runs_nothing(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path)
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--dry_run", "true") == 0
    printed = capsys.readouterr().out.splitlines()
    fit = "python -m qwen_tts_lit fit --config configs/base.yaml"
    assert printed == [
        f"{fit} --config out/corrected/seed_0/ablate.yaml --trainer.max_epochs=1",
        f"{fit} --config out/corrected/seed_1/ablate.yaml --trainer.max_epochs=1",
        f"{fit} --config configs/shift.yaml --config out/shift/seed_0/ablate.yaml --trainer.max_epochs=1",
        f"{fit} --config configs/shift.yaml --config out/shift/seed_1/ablate.yaml --trainer.max_epochs=1",
    ]
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == [f"{v}/seed_{s}/ablate.yaml" for v in ("corrected", "shift") for s in (0, 1)]  # nothing ran

    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--dry_run", "true", "--seeds", "7") == 0
    assert capsys.readouterr().out.splitlines()[1] == f"{fit} --config configs/shift.yaml --config " + (
        "out/shift/seed_7/ablate.yaml --trainer.max_epochs=1"
    )


def test_dry_run_skips_finished_runs(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path)
    write_run(tmp_path / "out" / "corrected" / "seed_0", status={"status": "done", "returncode": 0})
    write_run(tmp_path / "out" / "shift" / "seed_1", status={"status": "failed", "returncode": 1})  # runs again
    main("ablate", "--grid", "grid.yaml", "--root", "out", "--dry_run", "true")
    captured = capsys.readouterr()
    assert [line.split("--config ")[-1].split()[0] for line in captured.out.splitlines()] == [
        "out/corrected/seed_1/ablate.yaml", "out/shift/seed_0/ablate.yaml", "out/shift/seed_1/ablate.yaml",
    ]  # fmt: skip
    assert "1 finished and skipped, 3 to run" in captured.err


def test_run_overlay_puts_every_logger_and_both_seeds_into_the_run_folder(tmp_path: Path, monkeypatch, capsys):
    """Composed on a base with two loggers, the overlay moves both (a CLI override would move only the last)."""
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path)
    main("ablate", "--grid", "grid.yaml", "--root", "out", "--dry_run", "true", "--seeds", "5")
    command = capsys.readouterr().out.splitlines()[0].split()
    assert main(*command[3:], "--print_config") == 0
    config = yaml.safe_load(capsys.readouterr().out)
    loggers = [(c["class_path"].rsplit(".", 1)[1], c["init_args"]) for c in config["trainer"]["logger"]]
    assert [(name, a["save_dir"], a["name"], a["version"]) for name, a in loggers] == [
        ("CSVLogger", "out", "corrected", "seed_5"), ("TensorBoardLogger", "out", "corrected", "seed_5"),
    ]  # fmt: skip
    assert config["trainer"]["default_root_dir"] == "out/corrected/seed_5"
    assert (config["seed_everything"], config["model"]["seed"], config["trainer"]["max_epochs"]) == (5, 5, 1)
    assert any(c["class_path"].endswith("EvalSuite") for c in config["trainer"]["callbacks"])  # the base's, kept


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variant": {}}, r"grid.yaml:\d+: variant: unknown key"),
        ({"variants": {}}, r"grid.yaml:\d+: variants: expected a non-empty mapping"),
        ({"variants": {"bad name": []}}, r"grid.yaml:\d+: variants.bad name: a variant name is a folder name"),
        ({"variants": {"x": ["configs/nope.yaml"]}}, r"grid.yaml:4: variants.x\[0\]: no such file: configs/nope.yaml"),
        ({"base": []}, r"grid.yaml:\d+: base: expected a config file or a non-empty list"),
        ({"seeds": [0, 0]}, r"grid.yaml:\d+: seeds: expected a non-empty list of distinct integers"),
        ({"seeds": ["0"]}, r"grid.yaml:\d+: seeds: expected a non-empty list of distinct integers"),
        ({"args": "--trainer.max_epochs=1"}, r"grid.yaml:\d+: args: expected a list of strings"),
    ],
)
def test_bad_grid_exits_2_naming_file_line_and_key(tmp_path: Path, monkeypatch, capsys, overrides, message):
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, **overrides)
    assert main("ablate", "--grid", "grid.yaml", "--root", "out", "--dry_run", "true") == 2
    assert re.search(message, capsys.readouterr().err), message
    assert not (tmp_path / "out").exists()


def test_unreadable_grid_exits_2(tmp_path: Path, capsys):
    assert main("ablate", "--grid", tmp_path / "missing.yaml", "--root", tmp_path / "out") == 2
    assert "missing.yaml: cannot read it" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("base: [a\n")
    assert main("ablate", "--grid", tmp_path / "bad.yaml", "--root", tmp_path / "out") == 2
    assert "bad.yaml: not valid YAML" in capsys.readouterr().err


def test_finished_runs_are_skipped_failures_reported_and_tabled(tmp_path: Path, monkeypatch, capsys):
    """One variant finished earlier (hand-built), one whose fit fails at config parsing: exit 1, tables list both."""
    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, seeds=[0])
    (tmp_path / "configs" / "shift.yaml").write_text("model:\n  lora_rank: not-a-number\n")  # fit exits 2, fast
    done = {"status": "done", "returncode": 0, "seconds": 1.0, "command": "earlier"}
    rows = [eval_row(e, 1.0, u, wer=w, frames=f) for e, w, f in ((0, 0.5, 60), (1, 0.25, 45)) for u in ("a", "b")]
    write_run(tmp_path / "out" / "corrected" / "seed_0", rows, status=done)
    stale = write_run(tmp_path / "out" / "shift" / "seed_0", rows, status={"status": "failed", "returncode": 1})

    assert main("ablate", "--grid", "grid.yaml", "--root", "out") == 1
    err = capsys.readouterr().err
    assert "1 finished and skipped, 1 to run" in err and "shift seed 0: FAILED (exit 2)" in err
    assert "lora_rank" in err  # the log's tail names the problem
    assert not (stale / "best.json").exists()  # the earlier failed attempt was cleared, not mixed in
    assert json.loads((stale / "ablate.json").read_text())["returncode"] == 2

    markdown = (tmp_path / "out" / "ablation.md").read_text()
    assert "| corrected | 1 | 2 | 1.0 | 1.00 | 0.250 [0.250, 0.250] |" in markdown  # n, sentences, epoch, ...
    assert "| shift | 0 (1 failed) | 0 | – |" in markdown and "- failed: shift seed 0 (exit 2;" in markdown
    fit = "python -m qwen_tts_lit fit --config configs/base.yaml"
    assert f"`{fit} --config configs/shift.yaml --config out/shift/seed_0/ablate.yaml --trainer.max_epochs=1`" in (
        markdown
    )
    assert "ablate --grid grid.yaml --root out`" in markdown
    tex, csv = (tmp_path / "out" / "ablation.tex").read_text(), (tmp_path / "out" / "ablation.csv").read_text()
    assert r"corrected & 1 & 2 & 1.0 & 1.00 & 0.250 [0.250, 0.250]" in tex and "shift,0,1," in csv
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ablation.csv", "ablation.md", "ablation.tex", "corrected", "shift",
    ]  # fmt: skip


def test_multi_seed_row_command_loops_over_the_seed_overlays(tmp_path: Path, monkeypatch):
    from qwen_tts_lit.analysis.grid import plan_runs, variant_commands

    monkeypatch.chdir(tmp_path)
    commands = variant_commands(plan_runs(load_grid(make_grid(tmp_path)), Path("out")))
    assert commands["shift"] == (
        "for s in 0 1; do python -m qwen_tts_lit fit --config configs/base.yaml --config configs/shift.yaml "
        "--config out/shift/seed_$s/ablate.yaml --trainer.max_epochs=1; done"
    )


def test_the_tables_give_intervals_over_sentences_and_paired_differences(tmp_path: Path, monkeypatch):
    """Known answer through ablate (every run finished, so nothing is run): "shift" plants +0.1 WER on each of 8
    sentences for each of 3 seeds and no change in similarity; the tables find the first and not the second, with
    the interval and the paired difference the statistics give on the seed-averaged sentences (the oracle)."""
    import numpy as np
    import pandas as pd

    from qwen_tts_lit.metrics.uncertainty import mean_interval, paired_difference

    monkeypatch.chdir(tmp_path)
    make_grid(tmp_path, seeds=[0, 1, 2])
    rng = np.random.default_rng(4)
    difficulty, done = rng.gamma(1.0, 0.1, 8), {"status": "done", "returncode": 0, "seconds": 1.0, "command": "c"}
    wer: dict[str, np.ndarray] = {}
    sim: dict[str, np.ndarray] = {}
    for variant, shift in (("corrected", 0.0), ("shift", 0.1)):
        wer[variant] = difficulty + shift + rng.normal(0, 0.01, (3, 8))  # (seed, sentence)
        sim[variant] = 0.8 + rng.normal(0, 0.02, (3, 8))
        for seed in range(3):
            rows = [eval_row(0, 1.0, f"u{i}", wer=wer[variant][seed, i], spk_sim=sim[variant][seed, i])
                    for i in range(8)]  # fmt: skip
            write_run(tmp_path / "out" / variant / f"seed_{seed}", rows, status=done, max_epochs=1, seed=seed)
    assert main("ablate", "--grid", "grid.yaml", "--root", "out") == 0

    table = pd.read_csv(tmp_path / "out" / "ablation.csv").set_index("variant")
    expected = mean_interval(wer["shift"].mean(axis=0))
    assert table.loc["shift", "sentences"] == 8 and table.loc["shift", "n"] == 3
    assert (table.loc["shift", "wer_low"], table.loc["shift", "wer_high"]) == pytest.approx(
        (expected.low, expected.high)
    )
    gap = paired_difference(dict(enumerate((wer["shift"] - wer["corrected"]).mean(axis=0))), dict.fromkeys(range(8), 0))
    shift = table.loc["shift"]
    assert (shift["d_wer_mean"], shift["d_wer_low"], shift["d_wer_high"], shift["d_wer_p"]) == pytest.approx(
        (gap.interval.mean, gap.interval.low, gap.interval.high, gap.p_value)
    )
    assert shift["d_wer_low"] > 0 and shift["d_wer_p"] == pytest.approx(2 / 2**8)  # found, at the exact floor
    assert shift["d_spk_sim_low"] < 0 < shift["d_spk_sim_high"] and shift["d_spk_sim_p"] > 0.05  # none planted
    assert math.isnan(table.loc["corrected", "d_wer_mean"])  # the reference

    markdown = (tmp_path / "out" / "ablation.md").read_text()
    head = next(line for line in markdown.splitlines() if line.startswith("| variant"))
    assert head == "| variant | n | sentences | epoch | scale | WER | SIM | rate_ratio | eos_fail | frames/real | " + (
        "ΔWER vs corrected | ΔSIM vs corrected | command |"
    )
    row = next(line for line in markdown.splitlines() if line.startswith("| shift |"))
    assert f"| {shift['wer_mean']:.3f} [{expected.low:.3f}, {expected.high:.3f}] |" in row
    assert f"| {gap.interval.mean:+.3f} [{gap.interval.low:+.3f}, {gap.interval.high:+.3f}] (n=8, p=0.0078) |" in row
    assert row.endswith("--config out/shift/seed_$s/ablate.yaml --trainer.max_epochs=1; done` |")  # its command
    assert "| corrected | 3 | 8 |" in markdown and "| reference | reference |" in markdown
    from qwen_tts_lit.analysis import load_runs

    runs = load_runs(tmp_path / "out")  # a notebook's view: each run's chosen cell with its interval
    assert ((runs["wer_low"] < runs["wer"]) & (runs["wer"] < runs["wer_high"])).all()
    assert (runs["wer_sentences"] == 8).all()
    tex = (tmp_path / "out" / "ablation.tex").read_text()
    assert r"$\Delta$WER vs corrected" in tex and "(n=8, p=0.0078)" in tex and "\n% for s in 0 1 2; do python" in tex
