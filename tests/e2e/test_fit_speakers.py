"""``fit`` on a prepared corpus of three espeak-ng speakers, as a user runs it: every voice trains in one model, is
evaluated on its own held-out sentences, the worst speaker's figures choose the cell, the report has a speaker
dimension (export of such a run: tests/export/test_export_speakers.py)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch
from helpers.fit import DEMO_CONFIG, latest_run, run_cli

from qwen_tts_lit.speaker_file import read_voices

pytestmark = pytest.mark.slow

OVERLAY = """
trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args: {filename: "epoch={epoch:03d}", auto_insert_metric_name: false, save_top_k: -1, save_last: true}
    - class_path: qwen_tts_lit.callbacks.EvalSuite
      init_args:
        scales: [1.0]
        num_utterances: 1
        max_new_tokens: 8
        rule: {speaker_aggregate: worst}
        judges: {dnsmos: false}  # naturalness is tested elsewhere; on, each of the 2 runs loads DNSMOS for 3 voices
"""


def test_a_fit_of_several_speakers_trains_and_evaluates_every_voice(prepared_speakers, fit_cache, tmp_path: Path):
    overlay = tmp_path / "speakers.yaml"
    overlay.write_text(OVERLAY)
    fit = run_cli(tmp_path, "fit", "--config", str(DEMO_CONFIG), "--config", str(overlay), "--data.raw", "null",
            "--data.prepared_dir", str(prepared_speakers), "--data.speaker_sampling", "balanced",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", cache=fit_cache)  # fmt: skip
    run = latest_run(tmp_path)
    _, voices = read_voices(run)
    assert list(voices) == ["ann", "bob", "cleo"]
    checkpoint = torch.load(run / "checkpoints" / "epoch=000.ckpt", map_location="cpu", weights_only=False)
    assert sorted(checkpoint["voices"]) == ["ann", "bob", "cleo"] and "xvector" not in checkpoint
    rows = [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]
    baselines = [row for row in rows if row.get("baseline")]  # the zero-shot x-vector rows, one per speaker too
    assert sorted(row["speaker"] for row in baselines) == ["ann", "bob", "cleo"]
    rows = [row for row in rows if not row.get("baseline")]
    assert sorted(row["speaker"] for row in rows) == ["ann", "bob", "cleo"]  # one held-out sentence each
    assert all(row["utt_id"].startswith(row["speaker"]) for row in rows)
    best = json.loads((run / "best.json").read_text())
    assert best["rule"]["speaker_aggregate"] == "worst" and sorted(best["metrics"]["by_speaker"]) == list(voices)
    worst = max(cell["wer"] for cell in best["metrics"]["by_speaker"].values())
    assert best["metrics"]["wer"] == pytest.approx(worst)
    assert "<h2>By speaker</h2>" in (run / "report.html").read_text()

    # The closing hint's export command runs as printed and exports every voice (export refuses --speaker_name here).
    (hint,) = [line.split("export: ", 1)[1] for line in fit.stderr.splitlines() if line.startswith("  export: ")]
    command = shlex.split(hint)
    assert command[:4] == ["python", "-m", "qwen_tts_lit", "export"] and "--speaker_name" not in command
    run_cli(tmp_path, *command[3:], cache=fit_cache)
    exported = tmp_path / command[command.index("--output") + 1]
    assert json.loads((exported / "config.json").read_text())["talker_config"]["spk_id"].keys() == set(voices)
