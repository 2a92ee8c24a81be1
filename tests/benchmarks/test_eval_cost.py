"""benchmarks/eval_cost.py's default path (python benchmarks/eval_cost.py): the evaluation re-created as it was
before batching gives the rows the batched evaluation gives, field for field, on real speech through every judge;
and in a real fit its callback times that path beside the EvalSuite and the epoch table reports it. The benchmark
asserts nothing itself, so without these its default path can break unseen (it once called ``metric_fields`` with
an old signature for a whole round)."""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path

import soundfile as sf
import torch
import yaml

from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.scoring import evaluate_epoch
from qwen_tts_lit.evaluation.settings import EvalSettings, JudgeSettings
from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"
# Fields measured from word time stamps: faster-whisper's batched pipeline and its sequential transcribe align words
# separately, so their stamps may differ by a few ms (the text itself may not).
WORD_TIMED = {"rate_ratio", "units_per_second", "articulated_seconds"}


class RealSpeech(Synthesizer):
    """The real synthesizer (same arguments, same generate call) whose clips are then swapped for the held-out
    sentences' real recordings: the tiny model speaks near-silence, which most judges score without running, so
    real speech is what makes the two paths' ASR, speaker, VAD and DNSMOS figures worth comparing."""

    recordings: dict[str, object] = {}

    def synthesize(self, texts, **options):
        spoken = super().synthesize(texts, **options)
        return [replace(utterance, wav=self.recordings[text]) for text, utterance in zip(texts, spoken, strict=True)]


def test_the_sequential_path_gives_the_batched_rows(tiny_model, tmp_path: Path):
    import eval_cost

    judges = Judges(JudgeSettings())  # DNSMOS on: the re-created rows carry naturalness too
    items = read_heldout(HELDOUT, limit=2)
    real = measure_real(items, judges)
    xvector = torch.randn(64, generator=torch.Generator().manual_seed(0))
    RealSpeech.recordings = {item.text: sf.read(str(item.audio), dtype="float32")[0] for item in items}
    settings = EvalSettings(scales=(1.0,), num_utterances=2, seed=7, max_new_tokens=3)
    batched = evaluate_epoch(RealSpeech(tiny_model, Voice(xvector=xvector)), judges, real, tmp_path / "batched", 0,
                             settings.scales, settings.seed, settings.max_new_tokens, {None: xvector})  # fmt: skip
    sequential = eval_cost.sequential_epoch(RealSpeech(tiny_model, Voice(xvector=xvector)), judges, real,
                                            tmp_path / "sequential", 0, settings, xvector)  # fmt: skip
    assert [list(row) for row in sequential] == [list(row) for row in batched]
    assert [row["hypothesis"] for row in batched] == [row["hypothesis"] for row in sequential]
    heard = [(row["wer"], row["dnsmos_ovrl"], row["rate_judge"]) for row in batched]
    # real speech: heard, timed by its words and scored by DNSMOS (silence scores 1.0 without a model run)
    assert all(wer <= 0.2 and ovrl > 1.5 and judge == "asr+vad" for wer, ovrl, judge in heard), heard
    for before, after in zip(sequential, batched, strict=True):
        for name, value in after.items():
            if name == "seconds":  # wall time
                continue
            if isinstance(value, float) and not isinstance(before[name], bool):
                tolerance = 0.05 if name in WORD_TIMED else 1e-4
                assert math.isclose(before[name], value, rel_tol=tolerance, abs_tol=1e-6), (name, before[name], value)
            else:
                assert before[name] == value, (name, before[name], value)


def test_a_fit_times_the_sequential_path_beside_the_eval_suite(tmp_path: Path, monkeypatch, capsys, run_cache):
    """The default path's fit, in this process through a real Trainer: demo.yaml plus the benchmark's overlay
    (SequentialEvaluation after the EvalSuite), one epoch of one batch and one sentence at one scale. The epoch logs
    time/eval_seconds_sequential beside time/eval_seconds, the table reports both, and the re-created evaluation
    wrote nothing into the run: its rows are the EvalSuite's alone."""
    import eval_cost
    from helpers.runs import main

    from qwen_tts_lit.runs.records import read_rows

    monkeypatch.chdir(tmp_path)
    small = ("--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.enable_progress_bar",
             "false", "--trainer.enable_model_summary", "false")  # fmt: skip
    overlay = eval_cost.demo_overlay(tmp_path, uncapped=False)
    # --trainer.callbacks.* would name the overlay's last callback (SequentialEvaluation): the EvalSuite's own
    # arguments are set in the overlay instead. DNSMOS off: the re-created rows' naturalness is the test above's.
    config = yaml.safe_load(overlay.read_text())
    suite = next(c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("EvalSuite"))
    suite["init_args"] |= {"scales": [1.0], "num_utterances": 1, "baselines": [], "judges": {"dnsmos": False}}
    overlay.write_text(yaml.safe_dump(config))
    raw = eval_cost.HELDOUT / "raw" / "train_raw.jsonl"
    assert main("fit", "--config", REPO / "configs" / "demo.yaml", "--config", overlay, "--data.raw", raw, *small) == 0
    run = tmp_path / "runs" / "demo" / "version_0"
    capsys.readouterr()
    (epoch,) = eval_cost.epoch_costs(run)
    assert epoch["epoch"] == 0 and epoch["eval_s"] > 0 and epoch["before_s"] > 0
    shown = capsys.readouterr().out
    assert "1 scales x 1 sentences" in shown and "nan" not in shown.splitlines()[-2], shown
    assert [(row["epoch"], row["lora_scale"]) for row in read_rows(run)] == [(0, 1.0)]
