"""What a fit prints when its output goes to a file (a SLURM or CI log), read from the real command's output: progress
as whole lines, and nothing that looks like failure (Lightning's litlogger tip, torch's LeafSpec deprecation raised in
Lightning's code, tqdm's ESC[A cursor moves, the logger's v_num in the bar)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.fit import run_demo_fit

pytestmark = pytest.mark.slow

QUICK = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.callbacks.num_utterances", "1", "--trainer.callbacks.scales", "[0.5]",
         "--trainer.callbacks.baselines", "[]", "--trainer.callbacks.max_new_tokens", "4")  # fmt: skip


def test_a_fit_logged_to_a_file_prints_plain_progress_and_no_noise(fit_cache: Path, tmp_path: Path):
    result = run_demo_fit(tmp_path, *QUICK, cache=fit_cache)  # stdout and stderr are pipes: not a terminal
    out, err = result.stdout, result.stderr
    for noise in ("litlogger", "LeafSpec", "\x1b[A", "v_num"):
        assert noise not in out + err, noise
    assert "\r" not in out  # Lightning's bars redraw with carriage returns; the plain bar writes lines
    assert "epoch 0: done, 2 batches [" in out and "train/loss" in out
    assert "evaluating epoch 0: synthesis 1/1 clips (1 cells x 1 sentences)" in err
    assert "evaluating epoch 0: VAD 1/1 clips" in err and "fit: done" in err
