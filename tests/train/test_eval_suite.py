"""EvalSuite during the demo fit, the listening report in a real browser, and the evaluation plumbing."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from qwen_tts_lit.evaluation.heldout import measure_real, read_heldout
from qwen_tts_lit.evaluation.judges import Judges
from qwen_tts_lit.evaluation.progress import STEPS, EvalProgress
from qwen_tts_lit.evaluation.scoring import score_utterances
from qwen_tts_lit.runs.records import merge_rows
from qwen_tts_lit.synthesis.synthesizer import Utterance

REPO = Path(__file__).resolve().parents[2]
HELDOUT = REPO / "data" / "demo" / "heldout.jsonl"
ROW_FIELDS = ("epoch", "lora_scale", "utt_id", "text", "seed", "wav", "real_wav", "hypothesis", "wer", "spk_sim",
              "spk_sim_model", "rate_ratio", "words_per_second", "speech_seconds", "real_speech_seconds", "frames",
              "real_frames", "max_new_tokens", "hit_max_tokens")  # fmt: skip


def test_demo_fit_writes_rows_best_json_and_report(demo_run: Path):
    rows = [json.loads(line) for line in (demo_run / "eval" / "rows.jsonl").read_text().splitlines()]
    cells = {(r["epoch"], r["lora_scale"]) for r in rows}
    assert cells == {(0, 0.5), (0, 1.0), (1, 0.5), (1, 1.0)}  # demo: 2 scales, here 2 epochs
    assert len(rows) == 4 * 3  # 3 held-out sentences per cell
    for row in rows:
        missing = [f for f in ROW_FIELDS if row.get(f) is None]
        assert not missing, (row["utt_id"], missing)
        assert (demo_run / row["wav"]).is_file() and (demo_run / row["real_wav"]).is_file()
        assert 0 < row["frames"] <= row["max_new_tokens"]
        assert row["hit_max_tokens"] == (row["frames"] == row["max_new_tokens"])
    assert {r["seed"] for r in rows if r["epoch"] == 0} == {r["seed"] for r in rows if r["epoch"] == 1}

    best = json.loads((demo_run / "best.json").read_text())
    assert (best["epoch"], best["lora_scale"]) in cells
    assert best["candidates"] == 4 and best["rule"]["primary"] == "wer"
    assert all(best["metrics"][m] is not None for m in ("wer", "spk_sim", "rate_ratio", "eos_fail"))

    metrics = list(csv.DictReader((demo_run / "metrics.csv").open()))
    for name in ("val/wer", "val/spk_sim", "val/rate_ratio", "val/eos_fail", "val/score", "val_scale/wer@0.5",
                 "time/eval_seconds"):  # fmt: skip
        assert len([r for r in metrics if r.get(name)]) == 2, name


def test_report_opens_in_headless_chromium_without_console_errors(demo_run: Path, tmp_path: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium package is not installed (CI installs it)")

    def open_page(page: Path) -> tuple[str, list[str]]:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]

    broken = tmp_path / "broken.html"  # the check itself must see a console error when there is one
    broken.write_text("<html><body><script>console.error('control'); missingFunction();</script></body></html>")
    assert len(open_page(broken)[1]) == 2

    dom, console = open_page(demo_run / "report.html")
    assert console == []
    assert "<svg" in dom and "Chosen: epoch" in dom
    sources = re.findall(r'<audio[^>]*\ssrc="([^"]+)"', dom)
    rows = (demo_run / "eval" / "rows.jsonl").read_text().splitlines()
    assert len(sources) >= 2 * len(rows)  # every cell's sentences with their real recordings, plus the chosen cell
    missing = [source for source in sources if not (demo_run / source).is_file()]
    assert not missing


@pytest.fixture(scope="module")
def judges() -> Judges:
    return Judges()


def test_a_real_recording_scored_as_a_synthesis_matches_itself(judges: Judges):
    """The plumbing, end to end on real speech: WER low, rate 1, same speaker, right frame counts; the judges score
    the clips two per call and the progress bar walks through each step."""
    items = read_heldout(HELDOUT, limit=3)
    real = measure_real(items, judges)
    utterances = []
    for item in items:
        wav, rate = sf.read(str(item.audio), dtype="float32")
        assert rate == 24000
        frames = int(np.ceil(len(wav) / 1920))
        utterances.append(Utterance(item.text, 0, wav, torch.zeros(frames, 16), frames, 100, False, 0.0))
    bar = io.StringIO()
    with EvalProgress(1, 1, 3, file=bar) as progress:
        rows = score_utterances(items, utterances, judges, real, progress=progress, batch_size=2)
    for scores, utterance in zip(rows, utterances, strict=True):
        assert scores["wer"] <= 0.2, scores["hypothesis"]
        assert scores["rate_ratio"] == pytest.approx(1.0)
        assert scores["spk_sim"] > 0.8
        assert scores["real_frames"] == utterance.frames and scores["frames"] == utterance.frames
    shown = bar.getvalue()
    assert all(f"evaluating epoch 1: {step}" in shown for step in ("ASR", "speaker", "VAD")), shown
    assert "3/3" in shown and "1 cells x 3 sentences" in shown


def test_an_epoch_is_spoken_in_batches_with_a_progress_bar(tiny_model, judges: Judges, tmp_path: Path, capsys):
    """evaluate_epoch on the tiny model: 3 sentences in generate calls of 2, one row per clip, the bar on stderr."""
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    real = measure_real(read_heldout(HELDOUT, limit=3), judges)
    xvector = torch.randn(64, generator=torch.Generator().manual_seed(0))
    synthesizer = Synthesizer(tiny_model, Voice(xvector=xvector))
    calls = []
    original = synthesizer.synthesize
    synthesizer.synthesize = lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw)
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 3, {None: xvector}, batch_size=2,
                          show_progress=True)  # fmt: skip
    assert calls == [2, 1] and [r["seed"] for r in rows] == [7, 8, 9]
    assert all((tmp_path / r["wav"]).is_file() and r["frames"] <= 3 for r in rows)
    shown = capsys.readouterr().err
    assert all(f"evaluating epoch 0: {step}" in shown for step in STEPS), shown


def test_each_speaker_is_spoken_with_its_own_x_vector_and_judged_against_its_own_voice(
    tiny_model, judges: Judges, prepared_speakers: Path, tmp_path: Path
):
    """Several speakers: each held-out row is spoken with its speaker's x-vector, its spk_sim is to that speaker's
    real recordings, and its row names the speaker; a row naming no known speaker is refused."""
    from qwen_tts_lit.data.dataset import load_voices
    from qwen_tts_lit.evaluation.scoring import evaluate_epoch
    from qwen_tts_lit.synthesis.synthesizer import Synthesizer, Voice

    _, voices = load_voices(prepared_speakers)
    items = read_heldout(prepared_speakers / "val.jsonl", limit=1)  # the first row of each speaker
    assert [item.speaker for item in items] == ["ann", "bob", "cleo"]
    real = measure_real(items, judges)
    assert set(real.voices) == {"ann", "bob", "cleo"}
    synthesizer = Synthesizer(tiny_model, Voice(xvector=voices["ann"]))
    spoken_with = []
    original = synthesizer.synthesize
    synthesizer.synthesize = lambda texts, **kw: spoken_with.append(synthesizer.voice.xvector) or original(texts, **kw)
    rows = evaluate_epoch(synthesizer, judges, real, tmp_path, 0, [1.0], 7, 3, voices, batch_size=8)
    assert [r["speaker"] for r in rows] == ["ann", "bob", "cleo"] and [r["seed"] for r in rows] == [7, 8, 9]
    assert all(torch.equal(x, voices[name]) for x, name in zip(spoken_with, ["ann", "bob", "cleo"], strict=True))
    for row, item in zip(rows, items, strict=True):
        wav, _ = sf.read(str(tmp_path / row["wav"]), dtype="float32")
        assert row["spk_sim"] == pytest.approx(judges.speaker.similarity(wav, 24000, real.voices[item.speaker]),
                                               abs=1e-5)  # fmt: skip
    with pytest.raises(Exception, match="names no speaker"):
        evaluate_epoch(synthesizer, judges, measure_real(read_heldout(HELDOUT, limit=1), judges), tmp_path, 0,
                       [1.0], 7, 3, voices)  # fmt: skip


def test_read_heldout_names_the_line_and_field(tmp_path: Path):
    manifest = tmp_path / "h.jsonl"
    manifest.write_text('{"text": "fine", "audio": "a.wav"}\n')
    with pytest.raises(Exception, match=r"h.jsonl, line 1, field audio: .*a.wav not found"):
        read_heldout(manifest)
    manifest.write_text('{"text": "no audio field"}\n')
    with pytest.raises(Exception, match=r"line 1: needs JSON with 'text' and 'audio'"):
        read_heldout(manifest)


def test_merge_rows_replaces_rescored_cells_only():
    old = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "a", "wer": 1.0}, {"epoch": 1, "lora_scale": 0.5, "utt_id": "a"}]
    new = [{"epoch": 0, "lora_scale": 0.5, "utt_id": "a", "wer": 0.2}]
    merged = merge_rows(old, new)
    assert merged == [new[0], old[1]]


def test_eval_suite_refuses_bad_scales_and_warns_on_an_uncapped_sweep():
    from qwen_tts_lit.callbacks import EvalSuite

    with pytest.raises(ValueError, match="scales"):
        EvalSuite(scales=[0.3, 3.0])
    with pytest.warns(UserWarning, match="above the ceiling"):
        EvalSuite(max_new_tokens=100_000)
