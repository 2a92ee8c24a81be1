"""`evaluate`: re-scoring a finished run reproduces what EvalSuite heard; bad input exits 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qwen_tts_lit.cli import main

# Naturalness is not what these re-scores test (tests/evaluation/test_naturalness.py and the demo fit do): off, each
# evaluate skips loading DNSMOS and re-measuring the real recordings with it (about 1.7 CPU-s for 3 sentences).
NO_DNSMOS = ("--judges.dnsmos", "false")


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "eval" / "rows.jsonl").read_text().splitlines()]


@pytest.fixture
def run_copy(demo_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_run, tmp_path / "run"))


@pytest.mark.parametrize("decoding", [[], ["--decoding", "static"]], ids=["as-run", "static-cache"])
def test_rescoring_a_saved_epoch_reproduces_the_callbacks_audio_exactly(run_copy: Path, capsys, decoding):
    """The callback spoke with upstream's dynamic cache; the static cache (upstream/decoding.py) must give the same
    audio, byte for byte, through the whole evaluation path."""
    before = {(r["epoch"], r["lora_scale"], r["utt_id"]): r for r in _rows(run_copy)}
    audio_before = {r["wav"]: (run_copy / r["wav"]).read_bytes() for r in before.values() if r["epoch"] == 1}
    assert main(["evaluate", "--run", str(run_copy), "--epochs", "1", "--scales", "[0.5, 1.0]", *decoding,
                 *NO_DNSMOS]) == 0  # fmt: skip
    after = {(r["epoch"], r["lora_scale"], r["utt_id"]): r for r in _rows(run_copy)}
    assert after.keys() == before.keys()
    for key, row in after.items():
        for field in ("frames", "hit_max_tokens", "hypothesis", "wer", "seed"):
            assert row[field] == before[key][field], (key, field)
    assert all((run_copy / wav).read_bytes() == data for wav, data in audio_before.items())
    out = capsys.readouterr().out  # progress lines, then best.json's summary
    best = json.loads(out[out.index("{\n") :])
    assert best["epoch"] in (0, 1) and (run_copy / "report.html").is_file()


def test_new_scales_are_added_beside_the_old_rows(run_copy: Path):
    assert main(["evaluate", "--run", str(run_copy), "--epochs", "0", "--scales", "0.3", "--num_utterances", "1",
                 *NO_DNSMOS]) == 0  # fmt: skip
    rows = _rows(run_copy)
    assert len([r for r in rows if r["lora_scale"] == 0.3]) == 1
    assert len(rows) == 12 + 6 + 1  # the demo's cells, its zero-shot baseline rows, the new one
    assert json.loads((run_copy / "best.json").read_text())["candidates"] == 5


def test_evaluate_opens_the_run_once(run_copy: Path):
    """evaluate lists the checkpoints once and reads the config and the epoch once: the run is opened once
    (runs/run.py) and passed on, down to the merge of the new rows into the old."""
    from helpers.reads import counting_reads

    args = ["--epochs", "1", "--scales", "1.0", "--num-utterances", "1", "--no-asr", *NO_DNSMOS]
    with counting_reads(run_copy) as reads:
        assert main(["evaluate", "--run", str(run_copy), *args]) == 0
    assert reads["list", "checkpoints"] == 1
    assert reads["open", "config.yaml"] == 1 and reads["open", "checkpoints/epoch=001.ckpt"] == 1
    # the rows: once when the run is opened, then twice after they are written, as the report's record of what it
    # shows (publish writes it, evaluate's closing lines check it is not stale)
    assert reads["open", "eval/rows.jsonl"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "/no/such/run"], "run folder not found"),
        (["--epochs", "7"], "epoch 7 was not saved (saved epochs: 0, 1)"),
        (["--scales", "3"], "EvalSuite.scales: 3.0: must be in [0, 2]"),
        (["--heldout", "/no/such.jsonl"], "held-out manifest not found"),
        (["--decoding", "fast"], "EvalSuite.decoding 'fast': choose one of dynamic, static, cuda_graphs"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(run_copy: Path, capsys, args, message):
    full = ["evaluate", "--run", str(run_copy), *args] if args[0] != "--run" else ["evaluate", *args]
    assert main(full) == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("run_cache")  # the prepared demo (its first clip: the voice-clone reference) is in that cache
def test_baselines_are_added_to_a_finished_run(run_copy: Path, capsys):
    """`evaluate --baselines` re-scores the zero-shot rows (here for one sentence): xvector, voice_clone; epoch -1."""
    args = ["--epochs", "0", "--scales", "0.5", "--num_utterances", "1", "--baselines", "true", *NO_DNSMOS]
    assert main(["evaluate", "--run", str(run_copy), *args]) == 0
    baselines = [r for r in _rows(run_copy) if r.get("baseline")]
    assert sorted(r["baseline"] for r in baselines) == ["voice_clone", "xvector"]
    assert all(r["epoch"] == -1 and r["lora_scale"] == 0.0 and r["spk_sim"] is not None for r in baselines)
    assert "zero-shot baselines: voice_clone, xvector scored" in capsys.readouterr().out
    assert json.loads((run_copy / "best.json").read_text())["vs_baseline"].startswith("chosen cell vs best zero-shot")


@pytest.mark.usefixtures("run_cache")
def test_baselines_alone_leave_the_epochs_rows_as_they_are(run_copy: Path, capsys):
    """`evaluate --baselines` re-scored every saved epoch too (a full re-evaluation on a real run): it adds the
    zero-shot rows alone unless --epochs asks for more."""
    before = [r for r in _rows(run_copy) if not r.get("baseline")]
    assert main(["evaluate", "--run", str(run_copy), "--num_utterances", "1", "--baselines", "true", *NO_DNSMOS]) == 0
    out = capsys.readouterr().out
    assert "zero-shot baselines: voice_clone, xvector scored" in out and "epoch 0:" not in out and "epoch 1:" not in out
    rows = _rows(run_copy)
    assert [r for r in rows if not r.get("baseline")] == before
    assert sorted(r["baseline"] for r in rows if r.get("baseline")) == ["voice_clone", "xvector"]  # one sentence each
    assert json.loads(out[out.index("{\n") :])["epoch"] in (0, 1)
