"""qwen_tts_lit.analysis on hand-built run folders and frames: loading, tables (exact mean/std), writers, plots."""

from __future__ import annotations

import math
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.ablation import eval_row, write_run
from matplotlib.collections import PathCollection

from qwen_tts_lit import analysis

# Lightning's CSVLogger layout: step rows per batch, LearningRateMonitor rows without an epoch, one val row per epoch.
METRICS_CSV = """epoch,lr-AdamW,step,train/loss_step,train/loss_epoch,val/loss,val/wer
,0.001,0,,,,
0,,0,4.0,,,
,0.0008,1,,,,
0,,1,2.0,,,
0,,1,,,1.5,0.9
0,,1,,3.0,,
,0.0004,2,,,,
1,,2,1.0,,,
1,,2,,,1.25,0.5
1,,2,,1.0,,
"""


def test_load_metrics_merges_one_row_per_epoch(tmp_path: Path):
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    merged = analysis.load_metrics(tmp_path / "metrics.csv").set_index("epoch")
    assert list(merged.index) == [0, 1]
    assert merged.loc[0, "train/loss_step"] == 3.0  # logged every step: the epoch's mean
    assert merged.loc[0, "lr-AdamW"] == pytest.approx(0.0009)  # rows without an epoch join their step's epoch
    assert merged.loc[1, "lr-AdamW"] == pytest.approx(0.0004)
    assert (merged.loc[0, "val/loss"], merged.loc[1, "val/wer"], merged.loc[1, "train/loss_epoch"]) == (1.5, 0.5, 1.0)
    assert list(merged["step"]) == [1, 2]
    assert len(analysis.load_metrics(tmp_path / "metrics.csv", per_epoch=False)) == 10


def test_load_run_reads_every_file_and_adds_frame_ratio(tmp_path: Path):
    rows = [eval_row(0, 1.0, "a", frames=60, real_frames=30), eval_row(0, 1.0, "b", frames=45, real_frames=30)]
    rows += [eval_row(1, 0.5, "a", wer=0.0, frames=30), eval_row(1, 0.5, "b", wer=0.0, frames=15)]
    run = analysis.load_run(write_run(tmp_path / "run", rows, metrics_csv=METRICS_CSV))
    assert run.config["trainer"]["max_epochs"] == 2
    assert list(run.metrics["epoch"]) == [0, 1] and len(run.rows) == 4
    assert list(run.rows["frame_ratio"]) == [2.0, 1.5, 1.0, 0.5]
    assert (run.best["epoch"], run.best["lora_scale"]) == (1, 0.5) and run.status is None
    assert list(run.best_rows()["utt_id"]) == ["a", "b"]
    cells = run.cells.set_index(["epoch", "lora_scale"])
    assert cells.loc[(0, 1.0), "frame_ratio"] == 1.75 and cells.loc[(1, 0.5), "frames"] == 22.5
    assert cells.loc[(1, 0.5), "wer"] == 0.0 and cells.loc[(0, 1.0), "n"] == 2


def test_load_run_without_eval_outputs(tmp_path: Path):
    run = analysis.load_run(write_run(tmp_path / "run", rows=None))
    assert run.best is None and run.rows.empty and run.metrics.empty and run.best_rows().empty
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        analysis.load_run(tmp_path / "missing")


def test_old_rows_and_best_json_are_read_by_runs_records(tmp_path: Path):
    """analysis reads a run's rows and best.json through runs.records, the one reader: rows of an earlier version
    (no heldout_text, their text the transcript as written; a baseline named "icl") read as the evaluation reads
    them, and a broken best.json is the one-line error naming the file, not a JSON traceback."""
    from qwen_tts_lit.errors import UserError
    from qwen_tts_lit.runs.records import read_rows

    old = [{k: v for k, v in eval_row(0, 1.0, "a", text="Hi <laugh> there.").items() if k != "heldout_text"}]
    old += [eval_row(-1, 0.0, "a", baseline="icl")]
    run = analysis.load_run(write_run(tmp_path / "run", old))
    assert list(run.rows["heldout_text"]) == [row["heldout_text"] for row in read_rows(tmp_path / "run")]
    assert list(run.rows["heldout_text"]) == ["Hi <laugh> there.", "text of a"]
    assert list(run.rows["baseline"].fillna("")) == ["", "voice_clone_non_streaming"]
    (tmp_path / "run" / "best.json").write_text("{")
    with pytest.raises(UserError, match=r"run/best.json: unreadable"):
        analysis.load_run(tmp_path / "run")


def test_load_runs_parses_the_ablate_layout(tmp_path: Path):
    done, failed = {"status": "done", "returncode": 0, "command": "c"}, {"status": "failed", "returncode": 1}
    write_run(tmp_path / "a" / "seed_0", [eval_row(0, 1.0, "u", wer=0.2, frames=60)], status=done, seed=0)
    write_run(tmp_path / "a" / "seed_1", [eval_row(0, 1.0, "u", wer=0.4)], best=False, status=done, seed=1)
    write_run(tmp_path / "b" / "seed_3", rows=None, status=failed, seed=3)
    runs = analysis.load_runs(tmp_path).set_index(["variant", "seed"])
    assert sorted(runs.index) == [("a", 0), ("a", 1), ("b", 3)]
    assert runs.loc[("a", 0), "wer"] == 0.2 and runs.loc[("a", 0), "frame_ratio"] == 2.0
    assert runs.loc[("a", 1), "best_source"] == "rows" and runs.loc[("a", 1), "wer"] == 0.4  # no best.json: the rule
    assert runs.loc[("b", 3), "status"] == "failed" and math.isnan(runs.loc[("b", 3), "wer"])
    assert runs.loc[("a", 0), "command"] == "c" and not runs.loc[("b", 3), "has_eval"]


def test_run_finished(tmp_path: Path):
    rows = [eval_row(0, 1.0, "u"), eval_row(1, 1.0, "u")]
    assert analysis.run_finished(write_run(tmp_path / "last_epoch_evaluated", rows, max_epochs=2))
    assert not analysis.run_finished(write_run(tmp_path / "killed_after_epoch_0", rows[:1], max_epochs=2))
    assert not analysis.run_finished(write_run(tmp_path / "no_eval", rows=None))
    assert not analysis.run_finished(write_run(tmp_path / "failed", rows, status={"status": "failed"}))
    assert analysis.run_finished(write_run(tmp_path / "ablate_says_done", rows=None, status={"status": "done"}))


def hand_built_runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "variant": ["corrected", "corrected", "corrected", "upstream", "upstream", "broken", "corrected"],
            "seed": [0, 1, 2, 0, 1, 0, 3],
            "status": ["done", "done", "done", "done", "failed", "failed", "incomplete"],  # seed 3 still running
            "epoch": [2, 4, 6, 9, np.nan, np.nan, 1],
            "wer": [0.1, 0.2, 0.6, 0.25, np.nan, np.nan, 0.9],
            "rate_ratio": [1.0, None, 0.8, 0.9, None, None, 0.1],
        }
    )


def test_ablation_table_mean_std_over_seeds_is_exact():
    table = analysis.ablation_table(hand_built_runs(), metrics=["epoch", "wer", "rate_ratio"])
    assert list(table.index) == ["corrected", "upstream", "broken"]  # grid order, not alphabetical
    assert list(table["n"]) == [3, 1, 0] and list(table["failed"]) == [0, 1, 1]
    row = table.loc["corrected"]
    assert row["epoch_mean"] == 4.0 and row["epoch_std"] == 2.0  # sample std (ddof=1) of 2, 4, 6
    assert row["wer_mean"] == pytest.approx(0.3) and row["wer_std"] == pytest.approx(math.sqrt(0.07))
    assert row["rate_ratio_mean"] == pytest.approx(0.9) and row["rate_ratio_std"] == pytest.approx(math.sqrt(0.02))
    assert table.loc["upstream", "wer_mean"] == 0.25 and math.isnan(table.loc["upstream", "wer_std"])  # one seed
    assert math.isnan(table.loc["broken", "wer_mean"])


def test_ablation_table_groups_by_several_keys_and_ignores_missing_metrics():
    runs = hand_built_runs().assign(lr=[1, 1, 2, 1, 1, 1, 1])
    table = analysis.ablation_table(runs, by=["variant", "lr"], metrics=["wer", "spk_sim"])
    assert table.loc[("corrected", 1), "wer_mean"] == pytest.approx(0.15) and table.loc[("corrected", 2), "n"] == 1
    assert table["spk_sim_mean"].isna().all()


def test_writers_show_mean_std_and_commands():
    table = analysis.ablation_table(hand_built_runs(), metrics=["epoch", "wer"])
    commands = {"corrected": "python -m qwen_tts_lit fit --config a_b.yaml", "upstream": "cmd2", "broken": "cmd3"}
    markdown = analysis.table_markdown(table, commands)
    lines = markdown.splitlines()
    assert lines[0] == "| variant | n | epoch | WER | command |"
    assert lines[2] == "| corrected | 3 | 4.0 ± 2.0 | 0.300 ± 0.265 | `python -m qwen_tts_lit fit --config a_b.yaml` |"
    assert lines[3] == "| upstream | 1 (1 failed) | 9.0 | 0.250 | `cmd2` |"
    assert lines[4] == "| broken | 0 (1 failed) | – | – | `cmd3` |"
    latex = analysis.table_latex(table, commands)
    assert r"corrected & 3 & 4.0 $\pm$ 2.0 & 0.300 $\pm$ 0.265 \\" in latex
    assert "\n% python -m qwen_tts_lit fit --config a_b.yaml\n" in latex and r"broken & 0 (1 failed) & -- & --" in latex
    parsed = pd.read_csv(StringIO(analysis.table_csv(table, commands))).set_index("variant")
    assert parsed.loc["corrected", "wer_std"] == pytest.approx(math.sqrt(0.07))
    assert parsed.loc["upstream", "command"] == "cmd2" and parsed.loc["broken", "failed"] == 1


def test_plots_draw_the_cell_means(tmp_path: Path):
    rows = [eval_row(e, s, u, wer=0.1 * e + s + (0.02 if u == "b" else 0.0)) for e in (0, 1, 2) for s in (0.5, 1.0)
            for u in ("a", "b")]  # fmt: skip
    run = analysis.load_run(write_run(tmp_path / "run", rows, max_epochs=3))
    figure = analysis.plot_metric_vs_epoch(run, "wer")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["scale 0.5", "scale 1"]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.51, 0.61, 0.71])
    np.testing.assert_allclose(lines[1].get_xdata(), [0, 1, 2])
    chosen = figure.axes[0].collections[0].get_offsets()  # the circled cell: best.json's (0, 0.5)
    np.testing.assert_allclose(chosen, [[0, 0.51]])
    heat = analysis.plot_heatmap(run, "wer").axes[0].images[0].get_array()
    np.testing.assert_allclose(heat, [[0.51, 1.01], [0.61, 1.11], [0.71, 1.21]])
    bars = analysis.plot_ablation(hand_built_runs(), "wer").axes[0].patches  # unfinished seed 3 left out
    np.testing.assert_allclose([b.get_height() for b in bars[:2]], [0.3, 0.25])
    collections = analysis.plot_ablation(hand_built_runs(), "wer").axes[0].collections
    dots = [c.get_offsets()[:, 1] for c in collections if isinstance(c, PathCollection)]  # not the error bars
    np.testing.assert_allclose(dots[0], [0.1, 0.2, 0.6])


def test_analysis_imports_no_lightning():
    import subprocess

    code = "import sys, qwen_tts_lit.analysis; sys.exit('lightning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
